"""OpenInference spans as Phoenix exports them: span JSON and the spans DataFrame as records.

Accepted shapes: a JSON list of spans, ``{"data": [...]}`` (Phoenix's REST
``/v1/projects/{id}/spans``), or one span per line (JSONL). A span is either

* Phoenix span JSON: ``context.trace_id``/``context.span_id`` (nested), ``parent_id``,
  ``name``, ``span_kind``, ``start_time``/``end_time``, ``status_code``/``status_message``,
  ``attributes`` (flat dotted keys or nested objects), ``events``
  (``name``/``timestamp``/``attributes``); or
* a ``get_spans_dataframe()`` row written by ``DataFrame.to_json(orient="records")``: the same
  fields as flat columns ``context.trace_id``, ``context.span_id`` and ``attributes.<key>``.

Mapping (then :mod:`toolkit.ingest.spans`, which documents the events): ids, parent and name as
they are; ``start_time``/``end_time`` as ISO 8601 (no zone = UTC) or epoch numbers (pandas writes
milliseconds; the magnitude decides); ``status_code`` OK/ERROR -> status, ``status_message`` ->
``attrs.otel.status_description``; attributes flattened to dotted keys in ``attrs`` (null
cells dropped); ``span_kind`` -> ``attrs.openinference.span.kind`` when the attributes lack it,
so ``type`` is the OpenInference kind (LLM, TOOL, AGENT, CHAIN...) else the name;
``content`` is ``output.value``, else ``input.value``; ``llm.*``, ``tool.*`` and the rest stay in
``attrs`` (``tool.name`` is the ``target``, ``agent.name`` the ``source``).

Dropped: Phoenix's global ``id`` (not the OpenTelemetry span id), ``conversation``,
``annotations``/``evaluations`` columns, ``context.trace_state``.

Not trace files: a flat span-attribute map (``{"openinference.span.kind": ..., "input.value":
...}`` with no span ids, as in openinference-genai's test fixtures) is not detected; forced with
``format="openinference"`` each item without ids is rejected ("missing trace id").
Origins: ``path#N`` for the N-th span of a document, ``path:line`` for JSONL.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from toolkit.ingest.base import Format
from toolkit.ingest.files import (
    PARSED_RECORDS,
    file_head,
    looks_like_jsonl,
    stage_file_lines,
    stage_json_items,
)
from toolkit.ingest.spans import create_span_table, stage_spans


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage the spans of the Phoenix/OpenInference export ``path`` for ``toolkit.ingest``."""
    create_span_table(con)
    head = file_head(path)
    if looks_like_jsonl(head):
        stage_file_lines(con, path)
        prefix = f"{path}:"
    else:
        data = re.match(rb'\{\s*"data"\s*:\s*\[', head) is not None
        # a list of spans, Phoenix's {"data": [...]}, or one span as a document
        json_path = "$.data[*]" if data else ("$" if head[:1] == b"{" else "$[*]")
        if not stage_json_items(con, path, json_path):
            return
        prefix = f"{path}#"
    # Attributes: ``attributes`` (flat dotted keys or nested objects) and ``attributes.<key>``
    # columns, flattened with json_tree to dotted keys; arrays stay whole, nulls are dropped.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE oi_attrs AS
        SELECT ord, json_group_object(substr(k, 12), v) AS attrs FROM (
            SELECT ord, replace(substr(t.fullkey, 3), '"', '') AS k, t.value AS v
            FROM """
        + PARSED_RECORDS
        + """ r,
                 json_tree(r.j) t
            WHERE json_type(r.j) = 'OBJECT' AND t.type NOT IN ('OBJECT', 'NULL')
              AND NOT contains(t.fullkey, '[')
        ) WHERE k LIKE 'attributes.%'
        GROUP BY ord
    """
    )
    con.execute(
        """
        INSERT INTO otel_spans BY NAME
        SELECT ord AS pos, $p || ord AS origin, raw AS record,
               coalesce(j->>'$."context.trace_id"', j->>'$.context.trace_id', j->>'trace_id') AS trace_id,
               coalesce(j->>'$."context.span_id"', j->>'$.context.span_id', j->>'span_id') AS span_id,
               coalesce(j->>'parent_id', j->>'parent_span_id') AS parent_span_id,
               j->>'name' AS name,
               CASE upper(j->>'status_code') WHEN 'OK' THEN 'ok' WHEN 'ERROR' THEN 'error' END
                   AS status_code,
               j->>'status_message' AS status_message,
               span_json_ts(j->'start_time') AS ts, span_json_ts(j->'end_time') AS end_ts,
               CASE WHEN a.attrs IS NULL AND j->>'span_kind' IS NULL THEN '{}'
                    WHEN (a.attrs->'$."openinference.span.kind"') IS NOT NULL OR j->>'span_kind' IS NULL
                    THEN a.attrs
                    ELSE json_merge_patch(coalesce(a.attrs, '{}'),
                        json_object('openinference.span.kind', j->>'span_kind')) END AS attrs,
               list_transform(try(from_json(j->'events',
                   '[{"name":"VARCHAR","timestamp":"JSON","attributes":"JSON"}]')),
                   lambda e: struct_pack(name := e.name, ts := span_json_ts(e.timestamp),
                                         attrs := e.attributes)) AS events,
               CASE WHEN j IS NULL THEN 'not valid JSON'
                    WHEN json_type(j) <> 'OBJECT' THEN 'not a JSON object' END AS reason
        FROM """
        + PARSED_RECORDS
        + """
        LEFT JOIN oi_attrs a USING (ord)
        """,
        {"p": prefix},
    )
    con.execute("DROP TABLE oi_attrs")
    stage_spans(con)


_PHOENIX = re.compile(rb'"(span_kind|context\.span_id|attributes\.openinference\.span\.kind)"\s*:')
_IDS = re.compile(rb'"(context\.span_id|span_id)"\s*:')


def sniff(head: bytes) -> bool:
    """Phoenix spans: ``span_kind`` or ``context.span_id`` keys, with span ids present."""
    if head[:1] not in (b"{", b"["):
        return False
    return bool(_PHOENIX.search(head)) and bool(_IDS.search(head))


FORMAT = Format(name="openinference", sniff=sniff, read=read)
