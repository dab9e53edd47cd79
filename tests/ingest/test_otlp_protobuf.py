"""The protobuf flattener (``otlp.flatten_request``) against the SQL flattening of the same
request's OTLP/JSON form: the same ``otel_spans`` rows, byte for byte, for any request."""

from __future__ import annotations

import math

import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

import toolkit
from toolkit.ingest import otlp
from toolkit.ingest.base import create_stage
from toolkit.ingest.spans import create_span_table
from toolkit.receive.protocol import request_to_json

COLUMNS = [c for c in otlp.SPAN_ARROW.names if c not in ("k", "record")]

# strings with control characters, escapes that look like escapes, quotes, non-BMP text
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=8) | st.sampled_from(
    ["", "\\u001f", '"', "\\", "\x00\x1f\x7f", "é😀", "service.name", "otel.scope.name", "k"]
)
KEYS = st.sampled_from(["k", "a", "service.name", "otel.scope.name", "otel.scope.version", ""])
DOUBLES = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 123456789.123456789, 5e-324, 0.1 + 0.2]
)


def _set(v: AnyValue, kind: str, x: object) -> None:
    if kind == "array":
        for e in x:  # type: ignore[attr-defined]
            v.array_value.values.add().CopyFrom(e)
    elif kind == "kvlist":
        for key, e in x:  # type: ignore[attr-defined]
            kv = v.kvlist_value.values.add()
            kv.key = key
            kv.value.CopyFrom(e)
    elif kind != "empty":
        setattr(v, kind, x)


def _value(kind: str, x: object) -> AnyValue:
    v = AnyValue()
    _set(v, kind, x)
    return v


SCALARS = st.one_of(
    st.tuples(st.just("string_value"), TEXT),
    st.tuples(st.just("int_value"), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just("double_value"), DOUBLES),
    st.tuples(st.just("bool_value"), st.booleans()),
    st.tuples(st.just("bytes_value"), st.binary(max_size=6)),
    st.tuples(st.just("empty"), st.none()),
).map(lambda t: _value(*t))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: _value("array", xs)),
        st.lists(st.tuples(KEYS, inner), max_size=3).map(lambda xs: _value("kvlist", xs)),
    ),
    max_leaves=6,
)
ATTRIBUTES = st.lists(st.tuples(KEYS, VALUES), max_size=4)
IDS = st.sampled_from([b"", b"\x01" * 16, b"\xab\xcd" * 8])
TIMES = st.sampled_from([0, 1, 1_700_000_000_123_456_789, 2**63 - 1, 2**63, 2**64 - 1])


def _fill(kvs, pairs) -> None:  # type: ignore[no-untyped-def]
    for key, value in pairs:
        kv = kvs.add()
        kv.key = key
        kv.value.CopyFrom(value)


@st.composite
def requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        rs = request.resource_spans.add()
        _fill(rs.resource.attributes, draw(ATTRIBUTES))
        for _ in range(draw(st.integers(0, 2))):
            ss = rs.scope_spans.add()
            ss.scope.name = draw(st.sampled_from(["", "lib"]))
            ss.scope.version = draw(st.sampled_from(["", "1.0"]))
            _fill(ss.scope.attributes, draw(ATTRIBUTES))
            for _ in range(draw(st.integers(0, 3))):
                s = ss.spans.add()
                s.trace_id = draw(IDS)
                s.span_id = draw(IDS)[:8]
                s.parent_span_id = draw(IDS)[:8]
                s.name = draw(TEXT)
                s.kind = draw(st.integers(0, 7))  # 6, 7: values this proto version does not name
                s.start_time_unix_nano = draw(TIMES)
                s.end_time_unix_nano = draw(TIMES)
                s.status.code = draw(st.integers(0, 2))
                s.status.message = draw(TEXT)
                _fill(s.attributes, draw(ATTRIBUTES))
                for _ in range(draw(st.integers(0, 2))):
                    e = s.events.add()
                    e.name = draw(TEXT)
                    e.time_unix_nano = draw(TIMES)
                    _fill(e.attributes, draw(ATTRIBUTES))
                for _ in range(draw(st.integers(0, 2))):
                    link = s.links.add()
                    link.trace_id = draw(IDS)
                    link.span_id = draw(IDS)[:8]
                    _fill(link.attributes, draw(ATTRIBUTES))
    return request


def _by_sql(con, request: ExportTraceServiceRequest) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    create_stage(con)
    otlp.read_requests(con, [(1, request_to_json(request)[0])], "x:")
    return _rows(con)


def _by_python(con, request: ExportTraceServiceRequest) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    table = otlp.flatten_request(request)
    create_span_table(con)
    con.register("_flat", table)
    try:
        con.execute(
            f"INSERT INTO otel_spans BY NAME SELECT {', '.join(COLUMNS)}, k AS pos FROM _flat"
        )
    finally:
        con.unregister("_flat")
    return _rows(con)


def _rows(con) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return con.execute(
        f"SELECT {', '.join(c for c in COLUMNS if c not in ('attrs', 'events', 'links'))}, "
        "attrs::VARCHAR AS attrs, "
        "list_transform(events, lambda e: struct_pack(name := e.name, ts := e.ts, "
        "attrs := e.attrs::VARCHAR)) AS events, "
        "list_transform(links, lambda l: struct_pack(trace_id := l.trace_id, "
        "span_id := l.span_id, attrs := l.attrs::VARCHAR)) AS links FROM otel_spans ORDER BY pos"
    ).df()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_the_protobuf_flattener_equals_the_sql_flattening(request):
    con = toolkit.connect()
    try:
        expected = _by_sql(con, request)
        got = _by_python(con, request)
    finally:
        con.close()
    pd.testing.assert_frame_equal(got, expected)


def test_a_span_without_ids_keeps_its_record():
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.name = "no ids"
    table = otlp.flatten_request(request)
    assert table.column("record").to_pylist() == ['{"name": "no ids"}']
    assert table.schema == otlp.SPAN_ARROW and isinstance(table, pa.Table)


def test_doubles_are_spelt_as_duckdb_spells_them():
    con = toolkit.connect()
    xs = [0.0, -0.0, 1.5, 1e16, 1e20, 1e21, 1e-6, 1e-7, 2.5e-8, 123456789.123456789, 5e-324]
    [(spelt,)] = con.execute(
        "SELECT list_transform($x::DOUBLE[], lambda v: to_json(v)::VARCHAR)", {"x": xs}
    ).fetchall()
    assert [otlp._json_double(x) for x in xs] == spelt
    assert otlp._json_double(math.nan) == '"NaN"'
