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

Origins: ``path#N`` for the N-th span (from 1) of a document, ``path:line`` for JSONL. A line
that is not JSON or has no ``resourceSpans`` is rejected; a document that is not JSON is rejected
whole (``path#0``); a span without trace id, span id or start time is rejected with its record
(the span re-serialised from the fields read); the rest of the file loads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pyarrow as pa

from toolkit.ingest.base import Format, reject, stage_file_lines
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

_MACROS = f"""
CREATE OR REPLACE TEMP MACRO otlp_scalar(v) AS CASE
    WHEN v.stringValue IS NOT NULL THEN to_json(v.stringValue)
    WHEN v.intValue IS NOT NULL
        THEN coalesce(try_cast(v.intValue AS HUGEINT)::VARCHAR::JSON, to_json(v.intValue))
    WHEN v.doubleValue IS NOT NULL THEN CASE WHEN isfinite(try_cast(v.doubleValue AS DOUBLE))
        THEN to_json(v.doubleValue::DOUBLE) ELSE to_json(v.doubleValue) END
    WHEN v.boolValue IS NOT NULL THEN to_json(v.boolValue)
    WHEN v.bytesValue IS NOT NULL THEN to_json(v.bytesValue)
    WHEN v.arrayValue IS NOT NULL THEN v.arrayValue
    WHEN v.kvlistValue IS NOT NULL THEN v.kvlistValue
    ELSE 'null' END;
CREATE OR REPLACE TEMP MACRO otlp_value(v) AS coalesce(CASE
    WHEN v.arrayValue IS NOT NULL THEN '[' || array_to_string(list_transform(
        from_json(v.arrayValue->'values', '[{_VALUE}]'), lambda e: otlp_scalar(e)), ',') || ']'
    WHEN v.kvlistValue IS NOT NULL THEN '{{' || array_to_string(list_transform(
        from_json(v.kvlistValue->'values', '{_KV}'),
        lambda a: to_json(a.key) || ':' || otlp_scalar(a.value)), ',') || '}}'
    ELSE otlp_scalar(v) END, 'null');
CREATE OR REPLACE TEMP MACRO otlp_kv_body(kv, skip) AS nullif(array_to_string(list_transform(
    list_filter(kv, lambda a: a.key IS NOT NULL AND NOT list_contains(skip, a.key)),
    lambda a: to_json(a.key) || ':' || otlp_value(a.value)), ','), '');
CREATE OR REPLACE TEMP MACRO otlp_kv_obj(kv) AS ('{{' || coalesce(otlp_kv_body(kv, []), '') || '}}')::JSON;
CREATE OR REPLACE TEMP MACRO otlp_ts(x) AS CASE WHEN try_cast(x AS BIGINT) > 0
    THEN make_timestamptz(try_cast(x AS BIGINT) // 1000) END;
"""

_KINDS = "['internal', 'server', 'client', 'producer', 'consumer']"


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage the spans of the OTLP/JSON file ``path`` for ``toolkit.ingest``."""
    create_span_table(con)
    for statement in _MACROS.split(";"):
        if statement.strip():
            con.execute(statement)
    if _looks_like_jsonl(path):
        stage_file_lines(con, path)
        prefix, jsonl = f"{path}:", True
    else:
        _stage_document(con, path)
        if not con.execute("SELECT bool_and(json_valid(raw)) FROM raw_records").fetchall()[0][0]:
            stage_file_lines(con, path)
            lines = con.execute("SELECT count(*) FROM raw_records WHERE trim(raw) <> ''").fetchall()
            if lines[0][0] <= 1:
                text = path.read_bytes().decode("utf-8", errors="replace")
                reject(con, f"{path}#0", "file is not valid JSON", text[:10000])
                return
        prefix, jsonl = f"{path}:", True
    _flatten(con, prefix, jsonl)
    stage_spans(con)


def _looks_like_jsonl(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(65536).lstrip(b"\xef\xbb\xbf \t\r\n")
    first, sep, rest = head.partition(b"\n")
    if not sep or not rest.strip():
        return False
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


def _stage_document(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE raw_records AS SELECT 1::BIGINT AS ord, content AS raw "
            "FROM read_text($path)",
            {"path": str(path)},
        )
    except duckdb.InvalidInputException:  # not UTF-8: decode with replacement characters
        text = path.read_bytes().decode("utf-8", errors="replace")
        con.register("_otlp_doc", pa.table({"ord": pa.array([1], pa.int64()), "raw": [text]}))
        try:
            con.execute("CREATE OR REPLACE TEMP TABLE raw_records AS SELECT * FROM _otlp_doc")
        finally:
            con.unregister("_otlp_doc")
