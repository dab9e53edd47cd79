"""OTLP/JSON traces: an ``ExportTraceServiceRequest`` document, or one request per line (JSONL).

The Collector's file exporter writes one request per line; ``opentelemetry-proto``'s examples
and Jaeger's fixtures are single (pretty-printed) documents. The file is read once by DuckDB,
parsed once per request into typed structs (``json_transform``), unnested to one row per span
and mapped by :mod:`toolkit.ingest.spans` (which documents the span -> event mapping).

Fields kept (OTLP -> ``otel_spans``):

====================================  ============================================================
``traceId`` / ``spanId``              ids (hex, any case; base64 per the proto3 mapping decoded)
``parentSpanId``                      parent span id
``name``, ``kind``                    name; kind (1-5 or ``SPAN_KIND_*``) -> ``attrs.span.kind``
``startTimeUnixNano`` / ``end...``    ``ts`` / ``end_ts`` (nanoseconds as string or number; 0 =
                                      unset; truncated to microseconds)
``status.code`` / ``.message``        status (1/``STATUS_CODE_OK`` ok, 2/``..._ERROR`` error) /
                                      ``attrs.otel.status_description``
``attributes`` (span, scope, resource)  one flat ``attrs`` object; AnyValue becomes its JSON
                                      value (int64 as number, bytes as base64 text, one level of
                                      array / kvlist; deeper nesting stays OTLP JSON)
``scope.name`` / ``scope.version``    ``attrs.otel.scope.name`` / ``attrs.otel.scope.version``
``events[]``                          events of their own (``name``, ``timeUnixNano``,
                                      ``attributes``)
``links[]``                           causation and ``attrs.links`` (``traceId``, ``spanId``,
                                      ``attributes``)
====================================  ============================================================

Dropped: ``traceState``, ``flags``, ``dropped*Count``, ``schemaUrl``, ``resource`` /
``scope`` dropped counts, link ``traceState``/``flags``; the pre-1.0
``instrumentationLibrarySpans`` shape is not read.

A protobuf request (the live receiver's) is flattened by :func:`flatten_request` in Python into
the same rows, without text to parse; a span with no attributes keeps its scope's fields on
both paths.

Origins: ``path#N`` for the N-th span (from 1) of a document, ``path:line`` for JSONL;
requests received over the wire (:func:`read_requests`, the live receiver) ``<prefix><n>#<k>``
for the k-th span of request n and ``<prefix><n>#0`` for the request as a whole. A line
that is not JSON or has no ``resourceSpans`` is rejected; a document that is not JSON is rejected
whole (``path#0``); a span without trace id, span id or start time is rejected with its record
(the span re-serialised from the fields read); the rest of the file loads.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from google.protobuf import json_format

from toolkit.ingest.base import Format, stage_rows
from toolkit.ingest.files import (
    document_is_json,
    file_head,
    json_kind,
    line_blocks,
    looks_like_jsonl,
    not_blank,
    parse_json,
    stage_document,
    stage_json_stream,
    stage_raw_records,
    starts_with_object,
)
from toolkit.ingest.spans import create_span_table, stage_spans

_VALUE = (
    '{"stringValue":"VARCHAR","intValue":"VARCHAR","doubleValue":"VARCHAR",'
    '"boolValue":"BOOLEAN","bytesValue":"VARCHAR","arrayValue":"JSON","kvlistValue":"JSON"}'
)
_KV = '[{"key":"VARCHAR","value":' + _VALUE + "}]"
_SPAN = (
    '{"traceId":"VARCHAR","spanId":"VARCHAR","parentSpanId":"VARCHAR","name":"VARCHAR",'
    '"kind":"VARCHAR","startTimeUnixNano":"VARCHAR","endTimeUnixNano":"VARCHAR",'
    f'"attributes":{_KV},"status":{{"code":"VARCHAR","message":"VARCHAR"}},'
    f'"events":[{{"timeUnixNano":"VARCHAR","name":"VARCHAR","attributes":{_KV}}}],'
    f'"links":[{{"traceId":"VARCHAR","spanId":"VARCHAR","attributes":{_KV}}}]}}'
)
_REQUEST = (
    f'{{"resourceSpans":[{{"resource":{{"attributes":{_KV}}},"scopeSpans":[{{'
    f'"scope":{{"name":"VARCHAR","version":"VARCHAR","attributes":{_KV}}},"spans":[{_SPAN}]}}]}}]}}'
)

# ``otlp_kv_body``: a member without a key is NULL, which ``array_to_string`` leaves out (no
# filtered copy of the list); NULL for no keyed members without ``nullif``, which would repeat the
# whole expression (planning one ``otlp_kv_body`` took 28 ms, now 6-9)
_MACROS = f"""
CREATE OR REPLACE TEMP MACRO otlp_scalar(v) AS CASE
    WHEN v['stringValue'] IS NOT NULL THEN to_json(v['stringValue'])
    WHEN v['intValue'] IS NOT NULL
        THEN coalesce(try_cast(v['intValue'] AS HUGEINT)::VARCHAR::JSON, to_json(v['intValue']))
    WHEN v['doubleValue'] IS NOT NULL THEN CASE WHEN isfinite(try_cast(v['doubleValue'] AS DOUBLE))
        THEN to_json(v['doubleValue']::DOUBLE) ELSE to_json(v['doubleValue']) END
    WHEN v['boolValue'] IS NOT NULL THEN to_json(v['boolValue'])
    WHEN v['bytesValue'] IS NOT NULL THEN to_json(v['bytesValue'])
    WHEN v['arrayValue'] IS NOT NULL THEN v['arrayValue']
    WHEN v['kvlistValue'] IS NOT NULL THEN v['kvlistValue']
    ELSE 'null' END;
CREATE OR REPLACE TEMP MACRO otlp_value(v) AS coalesce(CASE
    WHEN v['arrayValue'] IS NOT NULL THEN '[' || array_to_string(list_transform(
        from_json(v['arrayValue']->'values', '[{_VALUE}]'), lambda e: otlp_scalar(e)), ',') || ']'
    WHEN v['kvlistValue'] IS NOT NULL THEN '{{' || array_to_string(list_transform(
        from_json(v['kvlistValue']->'values', '{_KV}'),
        lambda a: to_json(a.key) || ':' || otlp_scalar(a.value)), ',') || '}}'
    ELSE otlp_scalar(v) END, 'null');
CREATE OR REPLACE TEMP MACRO otlp_kv_body(kv) AS CASE
    WHEN list_bool_or(list_transform(kv, lambda a: a.key IS NOT NULL)) THEN array_to_string(
    list_transform(kv, lambda a: to_json(a.key) || ':' || otlp_value(a.value)), ',') END;
CREATE OR REPLACE TEMP MACRO otlp_kv_members(kv, skip) AS list_transform(
    list_filter(kv, lambda a: a.key IS NOT NULL AND NOT list_contains(skip, a.key)),
    lambda a: {{'key': a.key, 'text': to_json(a.key) || ':' || otlp_value(a.value)}});
CREATE OR REPLACE TEMP MACRO otlp_kv_obj(kv) AS ('{{' || coalesce(otlp_kv_body(kv), '') || '}}')::JSON;
CREATE OR REPLACE TEMP MACRO otlp_ts(x) AS CASE WHEN try_cast(x AS BIGINT) > 0
    THEN make_timestamptz(try_cast(x AS BIGINT) // 1000) END;
"""

_KINDS = "['internal', 'server', 'client', 'producer', 'consumer']"


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage the spans of the OTLP/JSON file ``path`` for ``toolkit.ingest``."""
    create_span_table(con)
    con.execute(_MACROS)
    if looks_like_jsonl(file_head(path)):
        _stage_lines(con, path)
        mode = "lines"
    else:
        stage_document(con, path)
        valid = document_is_json(con)
        if valid is None:  # nothing but white space: no records
            stage_spans(con)
            return
        mode = "document"
        if not valid:  # concatenated documents (MessageToJson appended), or JSONL after all
            if not stage_json_stream(con, path):
                return
            mode = "lines"
        _parse(con)
    prefix = f"{path}#" if mode == "document" else f"{path}:"
    if mode == "document":
        con.execute(
            "INSERT INTO stage_rejects SELECT $o, 'file: ' || why, left(raw, 10000) "
            "FROM otlp_req JOIN raw_records USING (ord) WHERE why IS NOT NULL",
            {"o": f"{path}#0"},
        )
    else:
        con.execute(
            """INSERT INTO stage_rejects SELECT $p || ord, why, raw
               FROM otlp_req JOIN raw_records USING (ord) WHERE why IS NOT NULL""",
            {"p": prefix},
        )
    lines = mode == "lines"
    _reject_malformed_items(con, lambda o: f"{prefix}{o}" if lines else f"{path}#0")
    _flatten(con, prefix, "$p || ord" if lines else "$p || pos")
    con.execute("DROP TABLE otlp_req")
    stage_spans(con)


def read_requests(
    con: duckdb.DuckDBPyConnection, requests: Sequence[tuple[int, str]], prefix: str
) -> None:
    """Parse OTLP/JSON ``ExportTraceServiceRequest`` bodies received over the wire into
    ``otel_spans`` (created anew) and their request-level rejects into ``stage_rejects``.

    ``requests`` are ``(n, body text)``; span origins are ``<prefix><n>#<k>`` (k from 1 within
    the request), a request rejected whole is ``<prefix><n>#0``. The caller runs
    :func:`toolkit.ingest.spans.stage_spans` (after adding rows of its own, if it wants).
    """
    create_span_table(con)
    con.execute(_MACROS)
    stage_raw_records(con, list(requests))
    _parse(con)
    con.execute(
        """INSERT INTO stage_rejects SELECT $p || ord || '#0', why, left(raw, 10000)
           FROM otlp_req JOIN raw_records USING (ord) WHERE why IS NOT NULL""",
        {"p": prefix},
    )
    _reject_malformed_items(con, lambda o: f"{prefix}{o}#0")
    _flatten(con, prefix, "$p || ord || '#' || q")
    con.execute("DROP TABLE otlp_req")
    con.execute("DROP TABLE raw_records")


def _reject_malformed_items(
    con: duckdb.DuckDBPyConnection, origin_of: Callable[[int], str]
) -> None:
    """Reject the ``resourceSpans``/``scopeSpans`` items that are not objects, and the
    ``scopeSpans``/``spans`` that are not lists (the typed parse reads them as absent, which
    would drop their spans in silence). Only requests where the parse found such a gap are
    looked at again, in Python."""
    suspects = con.execute("""
        SELECT ord, raw FROM otlp_req JOIN raw_records USING (ord)
        WHERE why IS NULL AND list_bool_or(list_transform(r.resourceSpans,
            lambda x: x IS NULL OR x.scopeSpans IS NULL OR list_bool_or(list_transform(x.scopeSpans,
                lambda y: y IS NULL OR y.spans IS NULL))))
    """).fetchall()
    rows = []
    for ord_, raw in suspects:
        origin = origin_of(ord_)
        try:
            request = parse_json(raw)
        except ValueError:
            continue
        for where, item, reason in _malformed(request):
            rows.append(
                {"origin": origin, "reason": f"{where} {reason}", "record": _dump_item(item)}
            )
    stage_rows(con, "rejects", rows)


def _dump_item(item: object) -> str:
    try:
        return json.dumps(item, ensure_ascii=False)[:10000]
    except (ValueError, RecursionError):
        return repr(item)[:10000]


def _malformed(request: dict) -> list[tuple[str, object, str]]:
    """``(where, item, reason)`` for each container item of a request that is not the shape
    OTLP gives it."""
    out: list[tuple[str, object, str]] = []
    for i, rs in enumerate(request.get("resourceSpans") or []):
        where = f"resourceSpans[{i}]"
        if not isinstance(rs, dict):
            out.append((where, rs, f"is not an object but {json_kind(rs)}"))
            continue
        scopes = rs.get("scopeSpans")
        if scopes is not None and not isinstance(scopes, list):
            out.append((where, rs, f".scopeSpans is not a list but {json_kind(scopes)}"))
            continue
        for j, ss in enumerate(scopes or []):
            at = f"{where}.scopeSpans[{j}]"
            if not isinstance(ss, dict):
                out.append((at, ss, f"is not an object but {json_kind(ss)}"))
            elif ss.get("spans") is not None and not isinstance(ss["spans"], list):
                out.append((at, ss, f".spans is not a list but {json_kind(ss['spans'])}"))
    return out


# requests a batch of the Arrow table a JSON Lines block is parsed from (requests run to
# megabytes: DuckDB's threads share the batches)
_PARSE_BATCH = 256


def _stage_lines(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """``raw_records`` (as :func:`toolkit.ingest.files.stage_file_lines` makes it) and
    ``otlp_req`` of a JSON Lines file, each block parsed from its Arrow table: a parse of
    ``raw_records`` (one row group up to 122,880 lines) would run on one thread."""
    con.execute("CREATE OR REPLACE TEMP TABLE raw_records (raw VARCHAR, ord BIGINT)")
    _parse(con)  # no rows yet: the table's columns
    for table in line_blocks(con, path):
        batches = table.to_batches(max_chunksize=_PARSE_BATCH)
        con.register("_raw_lines", pa.Table.from_batches(batches, schema=table.schema))
        try:
            con.execute("INSERT INTO raw_records SELECT raw, ord FROM _raw_lines")
            _parse(con, "_raw_lines")
        finally:
            con.unregister("_raw_lines")


def _parse(con: duckdb.DuckDBPyConnection, lines: str | None = None) -> None:
    """Parse each request of ``raw_records`` once into ``otlp_req(ord, r, why)`` (or add
    those of ``lines``, a table of the same columns)."""
    head = "INSERT INTO otlp_req" if lines else "CREATE OR REPLACE TEMP TABLE otlp_req AS"
    con.execute(f"""
        {head}
        SELECT ord, r, CASE
                WHEN r IS NULL AND NOT json_valid(raw) THEN 'not valid JSON'
                WHEN r IS NULL THEN 'not a JSON object'
                WHEN r.resourceSpans IS NULL THEN 'no resourceSpans: not an ExportTraceServiceRequest'
            END AS why
        FROM (SELECT ord, raw, CASE WHEN {starts_with_object("raw")}
                                    THEN try(json_transform(raw, '{_REQUEST}')) END AS r
              FROM {lines or "raw_records"} WHERE {not_blank("raw")})
    """)


def _flatten(con: duckdb.DuckDBPyConnection, prefix: str, origin: str) -> None:
    """One row of ``otel_spans`` per span of the parsed requests; ``origin`` is its SQL (over
    ``$p`` the prefix, ``ord`` the request, ``pos`` the span's position, ``q`` its position in
    its request)."""
    # Positions are counted from the requests' span counts, not numbered by a window over the
    # unnested spans (which holds every span's struct: 0.6 CPU s per 200k spans). What a span
    # inherits (its scope's name, version and attributes, then its resource's attributes) is
    # written once per scope (``tail``) and filtered per span only when the span sets one of
    # those keys itself.
    con.execute(
        f"""
        INSERT INTO otel_spans BY NAME
        WITH req AS (
            SELECT ord, n_rs, coalesce(sum(coalesce(list_sum(n_rs), 0)) OVER (
                       ORDER BY ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
            FROM (SELECT ord, list_transform(r.resourceSpans, lambda x: coalesce(list_sum(
                             list_transform(x.scopeSpans, lambda y: len(y.spans))), 0)) AS n_rs
                  FROM otlp_req WHERE why IS NULL)),
        rs AS (
            SELECT ord, before, n_rs, unnest(r.resourceSpans) AS x,
                   generate_subscripts(r.resourceSpans, 1) AS i
            FROM otlp_req JOIN req USING (ord) WHERE why IS NULL),
        ss AS (
            SELECT ord, before, coalesce(list_sum(n_rs[1:i - 1]), 0) AS off,
                   list_transform(x.scopeSpans, lambda y: len(y.spans)) AS n_ss,
                   x.resource.attributes AS ra, unnest(x.scopeSpans) AS y,
                   generate_subscripts(x.scopeSpans, 1) AS j FROM rs),
        sc AS (
            SELECT ord, before, off + coalesce(list_sum(n_ss[1:j - 1]), 0) AS off, y.spans AS spans,
                   tail, list_transform(tail, lambda t: t.key) AS tail_keys,
                   nullif(array_to_string(list_transform(tail, lambda t: t.text), ','), '') AS tail_text
            FROM (SELECT *, list_concat(
                    CASE WHEN nullif(y.scope.name, '') IS NOT NULL THEN [{{'key': 'otel.scope.name',
                        'text': '"otel.scope.name":' || to_json(y.scope.name)}}] END,
                    CASE WHEN nullif(y.scope.version, '') IS NOT NULL THEN [{{'key': 'otel.scope.version',
                        'text': '"otel.scope.version":' || to_json(y.scope.version)}}] END,
                    otlp_kv_members(y.scope.attributes, []),
                    otlp_kv_members(ra, list_concat(list_transform(y.scope.attributes, lambda a: a.key),
                                                    ['otel.scope.name', 'otel.scope.version']))) AS tail
                  FROM ss)),
        sp AS (
            SELECT *, before + q AS pos, list_transform(s.attributes, lambda a: a.key) AS span_keys
            FROM (SELECT ord, before, tail, tail_keys, tail_text, unnest(spans) AS s,
                         off + generate_subscripts(spans, 1) AS q FROM sc))
        SELECT pos, {origin} AS origin,
               CASE WHEN nullif(s.traceId, '') IS NULL OR nullif(s.spanId, '') IS NULL
                         OR otlp_ts(s.startTimeUnixNano) IS NULL THEN to_json(s)::VARCHAR END AS record,
               s.traceId AS trace_id, s.spanId AS span_id, s.parentSpanId AS parent_span_id,
               s.name AS name,
               CASE WHEN regexp_full_match(s.kind, '[1-5]') THEN {_KINDS}[s.kind::INT]
                    WHEN upper(s.kind) IN ('SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER',
                         'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER')
                    THEN lower(s.kind[11:]) END AS kind,
               otlp_ts(s.startTimeUnixNano) AS ts, otlp_ts(s.endTimeUnixNano) AS end_ts,
               CASE WHEN s.status.code IN ('1', 'STATUS_CODE_OK') THEN 'ok'
                    WHEN s.status.code IN ('2', 'STATUS_CODE_ERROR') THEN 'error' END AS status_code,
               s.status.message AS status_message,
               '{{' || concat_ws(',', otlp_kv_body(s.attributes), CASE
                   WHEN list_has_any(span_keys, tail_keys) THEN nullif(array_to_string(list_transform(
                       list_filter(tail, lambda t: NOT list_contains(span_keys, t.key)),
                       lambda t: t.text), ','), '')
                   ELSE tail_text END) || '}}' AS attrs,
               -- the attributes' nested lambdas cost per chunk of spans even where no span has
               -- events or links (0.1 CPU s per 200k spans): a chunk without any skips them
               CASE WHEN len(s.events) > 0 THEN list_transform(s.events, lambda e: struct_pack(
                        name := e.name, ts := otlp_ts(e.timeUnixNano),
                        attrs := otlp_kv_obj(e.attributes)))
                    ELSE list_transform(s.events, lambda e: struct_pack(name := e.name,
                        ts := NULL::TIMESTAMPTZ, attrs := NULL::JSON)) END AS events,
               CASE WHEN len(s.links) > 0 THEN list_transform(s.links, lambda l: struct_pack(
                        trace_id := l.traceId, span_id := l.spanId,
                        attrs := otlp_kv_obj(l.attributes)))
                    ELSE list_transform(s.links, lambda l: struct_pack(trace_id := l.traceId,
                        span_id := l.spanId, attrs := NULL::JSON)) END AS links
        FROM sp
        """,
        {"p": prefix},
    )


# ------------------------------------------------------------------ protobuf, without SQL
#
# The live receiver gets protobuf requests, many small ones: parsing them again as JSON text
# costs more than the spans they carry (planning the statement above alone takes about
# 0.1 s). So a protobuf request is flattened here, in Python, straight into the rows of
# ``otel_spans`` that :func:`_flatten` would make from its OTLP/JSON form: the same attribute
# text byte for byte (DuckDB's ``to_json`` spelling of strings and doubles), the same NULLs.
# tests/receive checks the two against each other over generated requests.

SPAN_ARROW = pa.schema(
    [
        ("k", pa.int64()),  # the span's position in its request, from 1
        ("record", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("ts", pa.timestamp("us", "UTC")),
        ("end_ts", pa.timestamp("us", "UTC")),
        ("status_code", pa.string()),
        ("status_message", pa.string()),
        ("attrs", pa.string()),
        (
            "events",
            pa.list_(
                pa.struct(
                    [
                        ("name", pa.string()),
                        ("ts", pa.timestamp("us", "UTC")),
                        ("attrs", pa.string()),
                    ]
                )
            ),
        ),
        (
            "links",
            pa.list_(
                pa.struct(
                    [("trace_id", pa.string()), ("span_id", pa.string()), ("attrs", pa.string())]
                )
            ),
        ),
    ]
)
_KIND_NAMES = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS_NAMES = {1: "ok", 2: "error"}
_MAX_NS = 2**63 - 1  # ``try_cast(x AS BIGINT)``: a larger fixed64 is no time
_LOWER_ESCAPE = re.compile(r"(\\\\)|\\u00([0-9a-f]{2})")
# json.dumps(ensure_ascii=False) of a str without building an encoder per call
_encode_string: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _json_text(value: str) -> str:
    """``value`` as DuckDB's ``to_json`` writes a string (yyjson: ``\\u001F``, upper case)."""
    out = _encode_string(value)
    if "\\u00" in out:
        out = _LOWER_ESCAPE.sub(lambda m: m.group(1) or "\\u00" + m.group(2).upper(), out)
    return out


def _json_double(x: float) -> str:
    """``x`` as DuckDB's ``to_json`` writes a DOUBLE: the shortest digits, positional from
    1e-6 up to 1e21 (``100000000000000000000.0``), else ``1e21`` / ``-2.5e-8``; not finite: the
    proto3 JSON text (``"NaN"``), as ``otlp_scalar`` keeps a value that is no number."""
    if x != x or x in (math.inf, -math.inf):
        return _json_text("NaN" if x != x else "Infinity" if x > 0 else "-Infinity")
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign, digit_tuple, exp = Decimal(repr(x)).as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exp += len(digit_tuple) - len(digits)  # trailing zeros moved into the exponent
    lead = len(digits) + exp - 1  # the decimal exponent of the first digit
    minus = "-" if sign else ""
    if -6 <= lead < 21:
        if exp >= 0:
            return f"{minus}{digits}{'0' * exp}.0"
        point = len(digits) + exp
        if point > 0:
            return f"{minus}{digits[:point]}.{digits[point:]}"
        return f"{minus}0.{'0' * -point}{digits}"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{minus}{mantissa}e{lead}"


def _scalar(v: Any) -> str:
    """An ``AnyValue`` as ``otlp_scalar`` writes it (a nested array or list: its OTLP JSON)."""
    which = v.WhichOneof("value")
    if which == "int_value":  # a bare number; OTLP/JSON quotes 64-bit integers
        return str(v.int_value)
    if which is None:
        return "null"
    return _otlp_member(v, which)


def _otlp_member(v: Any, which: str) -> str:
    """The member of an ``AnyValue`` in OTLP/JSON, minified as DuckDB keeps a JSON value."""
    if which == "string_value":
        return _json_text(v.string_value)
    if which == "int_value":
        return '"' + str(v.int_value) + '"'
    if which == "bool_value":
        return "true" if v.bool_value else "false"
    if which == "double_value":
        return _json_double(v.double_value)
    if which == "bytes_value":
        return '"' + base64.b64encode(v.bytes_value).decode("ascii") + '"'
    if which == "array_value":
        inner = ",".join(_otlp_json(e) for e in v.array_value.values)
    else:
        inner = ",".join(
            '{"key":' + _json_text(kv.key) + ',"value":' + _otlp_json(kv.value) + "}"
            for kv in v.kvlist_value.values
        )
    return '{"values":[' + inner + "]}"


_MEMBER_NAMES = {
    "string_value": "stringValue",
    "int_value": "intValue",
    "bool_value": "boolValue",
    "double_value": "doubleValue",
    "bytes_value": "bytesValue",
    "array_value": "arrayValue",
    "kvlist_value": "kvlistValue",
}


def _otlp_json(v: Any) -> str:
    """An ``AnyValue`` in its OTLP/JSON form (``{"intValue":"5"}``), minified."""
    which = v.WhichOneof("value")
    if which is None:
        return "{}"
    return '{"' + _MEMBER_NAMES[which] + '":' + _otlp_member(v, which) + "}"


def _value(v: Any) -> str:
    """An attribute's value as ``otlp_value`` writes it: arrays and lists one level deep."""
    which = v.WhichOneof("value")
    if which == "string_value":  # most values: tested first
        out: str = _encode_string(v.string_value)
        return out if "\\u00" not in out else _json_text(v.string_value)
    if which == "int_value":
        return str(v.int_value)
    if which == "array_value":
        return "[" + ",".join(_scalar(e) for e in v.array_value.values) + "]"
    if which == "kvlist_value":
        return (
            "{"
            + ",".join(_json_text(kv.key) + ":" + _scalar(kv.value) for kv in v.kvlist_value.values)
            + "}"
        )
    if which is None:
        return "null"
    return _otlp_member(v, which)


# attribute keys repeat from span to span: their JSON text is kept (only short keys, and at
# most _KEYS_KEPT of them, so that a sender's unique keys cannot pile up in memory)
_KEY_TEXT: dict[str, str] = {}
_KEYS_KEPT = 4096


def _key_text(key: str) -> str:
    text = _KEY_TEXT.get(key)
    if text is None:
        text = _json_text(key) + ":"
        if len(key) <= 256 and len(_KEY_TEXT) < _KEYS_KEPT:
            _KEY_TEXT[key] = text
    return text


def _members(kvs: Any) -> list[tuple[str, str]]:
    out = []
    for kv in kvs:
        key = kv.key
        text = _KEY_TEXT.get(key) or _key_text(key)
        out.append((key, text + _value(kv.value)))
    return out


def _micros(ns: int) -> int | None:
    return ns // 1000 if 0 < ns <= _MAX_NS else None


def _hex(b: bytes) -> str | None:
    return b.hex() if b else None


def _object(kvs: Any) -> str:
    """Attributes as one JSON object's text (an event's, a link's)."""
    return "{" + ",".join([t for _, t in _members(kvs)]) + "}" if kvs else "{}"


def flatten_request(request: Any) -> pa.Table:
    """The rows of ``otel_spans`` (less ``pos``, ``origin``, ``reason``; ``k`` numbers the spans
    of the request from 1) for a protobuf ``ExportTraceServiceRequest``: what :func:`_flatten`
    makes of the request's OTLP/JSON form, without parsing any text.

    A span without trace id, span id or start time keeps its proto3 JSON form in ``record``
    (ids in base64; it becomes a reject in :func:`toolkit.ingest.spans.stage_spans`).
    """
    # one list per column, appended to without a lookup per value
    records: list[str | None] = []
    trace_ids: list[str | None] = []
    span_ids: list[str | None] = []
    parents: list[str | None] = []
    names: list[str | None] = []
    kinds: list[str | None] = []
    starts: list[int | None] = []
    ends: list[int | None] = []
    codes: list[str | None] = []
    messages: list[str | None] = []
    attrs: list[str] = []
    events: list[list[dict[str, Any]] | None] = []
    links: list[list[dict[str, Any]] | None] = []
    kind_of, status_of = _KIND_NAMES.get, _STATUS_NAMES.get
    for rs in request.resource_spans:
        resource = _members(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope = ss.scope
            scope_members = _members(scope.attributes)
            own = [("otel.scope.name", scope.name), ("otel.scope.version", scope.version)]
            skip = {key for key, _ in scope_members} | {"otel.scope.name", "otel.scope.version"}
            # after a span's own attributes, in this order, those it does not set itself: the
            # scope's name and version, the scope's attributes, the resource's
            tail = [(key, _json_text(key) + ":" + _json_text(v)) for key, v in own if v]
            tail += scope_members
            tail += [(key, text) for key, text in resource if key not in skip]
            tail_text = ",".join([text for _, text in tail])
            for s in ss.spans:
                if s.attributes:
                    members = _members(s.attributes)
                    keys = {key for key, _ in members}
                    parts = [text for _, text in members]
                    parts += [text for key, text in tail if key not in keys]
                    attrs.append("{" + ",".join(parts) + "}")
                else:
                    attrs.append("{" + tail_text + "}")
                trace_id, span_id = s.trace_id.hex() or None, s.span_id.hex() or None
                ns = s.start_time_unix_nano
                start = ns // 1000 if 0 < ns <= _MAX_NS else None
                ns = s.end_time_unix_nano
                records.append(
                    json_format.MessageToJson(s, indent=None)
                    if trace_id is None or span_id is None or start is None
                    else None
                )
                trace_ids.append(trace_id)
                span_ids.append(span_id)
                parents.append(s.parent_span_id.hex() or None)
                names.append(s.name or None)
                kinds.append(kind_of(s.kind))
                starts.append(start)
                ends.append(ns // 1000 if 0 < ns <= _MAX_NS else None)
                status = s.status
                codes.append(status_of(status.code))
                messages.append(status.message or None)
                events.append(
                    [
                        {
                            "name": e.name or None,
                            "ts": _micros(e.time_unix_nano),
                            "attrs": _object(e.attributes),
                        }
                        for e in s.events
                    ]
                    if s.events
                    else None
                )
                links.append(
                    [
                        {
                            "trace_id": _hex(link.trace_id),
                            "span_id": _hex(link.span_id),
                            "attrs": _object(link.attributes),
                        }
                        for link in s.links
                    ]
                    if s.links
                    else None
                )
    columns = [
        list(range(1, len(attrs) + 1)), records, trace_ids, span_ids, parents, names, kinds,
        starts, ends, codes, messages, attrs, events, links,
    ]  # fmt: skip
    return pa.Table.from_arrays(
        [pa.array(c, f.type) for c, f in zip(columns, SPAN_ARROW, strict=True)], schema=SPAN_ARROW
    )


_SNIFF = re.compile(rb'"resourceSpans"\s*:')


def sniff(head: bytes) -> bool:
    """OTLP/JSON: a JSON object (or JSONL of them) carrying ``resourceSpans``."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{" and bool(_SNIFF.search(head))


FORMAT = Format(name="otlp", sniff=sniff, read=read)
