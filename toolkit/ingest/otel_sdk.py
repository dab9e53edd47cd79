"""OpenTelemetry SDK span dumps: ``ReadableSpan`` objects serialised by the Python or JS SDK.

Accepted containers: a JSON list of spans, an object with a ``spans`` list (any-agent's
``AgentTrace``), an object of span lists (``{"<operation>": [span, ...]}``, as in the
openinference-vercel fixtures), or one span per line (JSONL).

Accepted span dresses (mapped by :mod:`toolkit.ingest.spans`, which documents the events):

===================  ===================================  ===================================
field                Python SDK ``to_json`` / any-agent    JS SDK ``ReadableSpan``
===================  ===================================  ===================================
ids                  ``context.trace_id``/``span_id``:    ``spanContext.traceId``/``spanId``
                     ``0x`` hex, or integers (any-agent)
                     -> lowercase hex (32/16 digits)
parent               ``parent_id``, or ``parent.span_id``  ``parentSpanId``, or
                                                          ``parentSpanContext.spanId``
name, kind           ``name``; ``kind`` ``SpanKind.X`` or  ``name``; ``kind`` 0-4
                     ``x`` -> ``attrs.span.kind``          (INTERNAL...CONSUMER)
start / end          ``start_time``/``end_time``: ISO      ``startTime``/``endTime``:
                     8601 or integer nanoseconds           ``[seconds, nanoseconds]``
status               ``status.status_code`` OK / ERROR,    ``status.code`` 1 OK, 2 ERROR,
                     ``status.description``                ``status.message``
attributes           ``attributes`` + ``resource.attributes`` (span wins) in ``attrs``
scope                (not serialised)                      ``instrumentationScope`` or
                                                          ``instrumentationLibrary`` name ->
                                                          ``attrs.otel.scope.name``
events               ``events[]``: ``name``, ``timestamp``, ``attributes``  (JS: ``time``)
links                ``links[]``: ``context`` ids, ``attributes``
===================  ===================================  ===================================

Dropped: ``trace_state``/``traceFlags``/``is_remote``, ``resource.schema_url``, the
``dropped*Count`` fields, ``duration``/``ended`` (derived), any-agent's ``final_output`` (not a
span). Origins: ``path#N`` for the N-th span of a document, ``path:line`` for JSONL. An item that
is not an object, or lacks ids or start time, is rejected with its text.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from toolkit.ingest.base import Format
from toolkit.ingest.files import (
    PARSED_RECORDS,
    document_is_json,
    file_head,
    looks_like_jsonl,
    stage_document,
    stage_file_lines,
    stage_json_items,
    stage_json_stream,
)
from toolkit.ingest.spans import create_span_table, stage_spans

_MACROS = r"""
CREATE OR REPLACE TEMP MACRO sdk_id(j, width) AS CASE
    WHEN j IS NULL OR json_type(j) = 'NULL' THEN NULL
    WHEN json_type(j) <> 'VARCHAR' AND regexp_full_match(j::VARCHAR, '\d+')
        THEN lpad(lower(to_hex(try_cast(j::VARCHAR AS UHUGEINT))), width, '0')
    ELSE j->>'$' END;
CREATE OR REPLACE TEMP MACRO sdk_obj(j) AS CASE WHEN json_type(j) = 'OBJECT' THEN j END
"""
_EVENTS = '[{"name":"VARCHAR","timestamp":"JSON","time":"JSON","attributes":"JSON"}]'
_LINKS = (
    '[{"context":{"trace_id":"JSON","span_id":"JSON","traceId":"JSON","spanId":"JSON"},'
    '"attributes":"JSON"}]'
)


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage the spans of the OTel SDK dump ``path`` for ``toolkit.ingest``."""
    create_span_table(con)
    con.execute(_MACROS)
    head = file_head(path)
    if looks_like_jsonl(head):
        stage_file_lines(con, path)
        prefix = f"{path}:"
    else:
        stage_document(con, path)
        valid = document_is_json(con)
        if valid is None:  # nothing but white space: no records
            con.execute("DELETE FROM raw_records")
            prefix = f"{path}#"
        elif valid:
            json_path = _container_path(con) if head[:1] == b"{" else "$[*]"
            if not stage_json_items(con, path, json_path):
                return
            prefix = f"{path}#"
        else:  # concatenated documents: ConsoleSpanExporter prints one pretty span after another
            if not stage_json_stream(con, path):
                return
            prefix = f"{path}:"
    con.execute(
        f"""
        INSERT INTO otel_spans BY NAME
        SELECT ord AS pos, $p || ord AS origin, raw AS record,
               coalesce(sdk_id(j->'context'->'trace_id', 32), sdk_id(j->'spanContext'->'traceId', 32))
                   AS trace_id,
               coalesce(sdk_id(j->'context'->'span_id', 16), sdk_id(j->'spanContext'->'spanId', 16))
                   AS span_id,
               coalesce(sdk_id(j->'parent_id', 16), sdk_id(j->'parent'->'span_id', 16),
                        sdk_id(j->'parentSpanId', 16), sdk_id(j->'parentSpanContext'->'spanId', 16))
                   AS parent_span_id,
               j->>'name' AS name,
               CASE WHEN json_type(j->'kind') IN ('UBIGINT', 'BIGINT') AND (j->>'kind')::INT BETWEEN 0 AND 4
                    THEN ['internal', 'server', 'client', 'producer', 'consumer'][(j->>'kind')::INT + 1]
                    WHEN lower(regexp_replace(j->>'kind', '^SpanKind\\.', '')) IN
                         ('internal', 'server', 'client', 'producer', 'consumer')
                    THEN lower(regexp_replace(j->>'kind', '^SpanKind\\.', '')) END AS kind,
               span_json_ts(coalesce(j->'start_time', j->'startTime')) AS ts,
               span_json_ts(coalesce(j->'end_time', j->'endTime')) AS end_ts,
               CASE WHEN upper(j->'status'->>'status_code') = 'OK' OR j->'status'->>'code' = '1' THEN 'ok'
                    WHEN upper(j->'status'->>'status_code') = 'ERROR' OR j->'status'->>'code' = '2'
                    THEN 'error' END AS status_code,
               coalesce(j->'status'->>'description', j->'status'->>'message') AS status_message,
               json_merge_patch(coalesce(sdk_obj(j->'resource'->'attributes'), '{{}}'),
                   json_object('otel.scope.name', coalesce(j->'instrumentationScope'->>'name',
                                                           j->'instrumentationLibrary'->>'name')),
                   coalesce(sdk_obj(j->'attributes'), '{{}}')) AS attrs,
               list_transform(try(from_json(j->'events', '{_EVENTS}')), lambda e: struct_pack(
                   name := e.name, ts := span_json_ts(coalesce(e.timestamp, e.time)),
                   attrs := sdk_obj(e.attributes))) AS events,
               list_transform(try(from_json(j->'links', '{_LINKS}')), lambda l: struct_pack(
                   trace_id := coalesce(sdk_id(l.context.trace_id, 32), sdk_id(l.context.traceId, 32)),
                   span_id := coalesce(sdk_id(l.context.span_id, 16), sdk_id(l.context.spanId, 16)),
                   attrs := sdk_obj(l.attributes))) AS links,
               CASE WHEN j IS NULL THEN 'not valid JSON'
                    WHEN json_type(j) <> 'OBJECT' THEN 'not a JSON object' END AS reason
        FROM {PARSED_RECORDS}
        """,
        {"p": prefix},
    )
    stage_spans(con)


def _container_path(con: duckdb.DuckDBPyConnection) -> str:
    """For the document staged in ``raw_records``: ``$.spans[*]`` when the top-level object has
    a ``spans`` list, ``$[*]`` when it is one span (a ``context`` object, an ids dress), else
    ``$.*[*]`` (an object of span lists). Decided by DuckDB: no recursion on deep documents."""
    spans, one = con.execute(
        "SELECT json_type(raw, '$.spans') = 'ARRAY', "
        "json_type(raw, '$.context') = 'OBJECT' OR json_type(raw, '$.spanContext') = 'OBJECT' "
        "FROM raw_records"
    ).fetchall()[0]
    if spans:
        return "$.spans[*]"
    return "$" if one else "$.*[*]"


_JS = re.compile(rb'"spanContext"\s*:\s*\{')
_PY = re.compile(rb'"context"\s*:\s*\{\s*"trace_id"\s*:')
_PY_SPAN = re.compile(rb'"(parent|parent_id|start_time|kind)"\s*:')
_NOT = re.compile(rb'"(span_kind|resourceSpans|context\.span_id)"\s*:')


def sniff(head: bytes) -> bool:
    """OTel SDK spans: JS ``spanContext`` objects, or Python ``context.trace_id`` + ``parent``."""
    if head[:1] not in (b"{", b"["):
        return False
    if _NOT.search(head):
        return False
    return bool(_JS.search(head)) or (bool(_PY.search(head)) and bool(_PY_SPAN.search(head)))


FORMAT = Format(name="otel_sdk", sniff=sniff, read=read)
