"""OpenAI Agents SDK native trace export: the trace and span items of ``agents.tracing``.

Accepted containers: one item per line (JSONL: what a processor writing ``Trace.export()`` /
``Span.export()`` produces), or the exporter's HTTP payload ``{"data": [item, ...]}`` (the body
``BackendSpanExporter`` in ``agents/tracing/processors.py`` posts), or a JSON list of items. An
item is a trace record ``{"object": "trace", "id", "workflow_name", "group_id", "metadata"}``
or a span record ``{"object": "trace.span", "id", "trace_id", "parent_id", "started_at",
"ended_at", "span_data": {"type", ...}, "error": null | {"message", "data"}}`` (fields as in
``agents/tracing/spans.py`` and ``span_data.py``). A trace record may come before its spans
(the SDK writes it when the run starts), after them, or not at all.

Mapping of a span (then :mod:`toolkit.ingest.spans`, which documents the events):

=====================  ==================================================================
span field             ``otel_spans``
=====================  ==================================================================
``trace_id``, ``id``,  trace id, span id, parent span id (the SDK's ``trace_...`` /
``parent_id``          ``span_...`` ids, kept as they are)
``started_at`` /       start / end (ISO 8601; no zone = UTC)
``ended_at``
name                   ``handoff to <to_agent>`` for a handoff; else ``span_data.name``
                       (agent, function, guardrail, custom); else ``span_data.model``
                       (generation); else the span type (``response``, ``generation``...)
``error``              status ``error``; ``error.message: <error.data as JSON>`` ->
                       ``attrs.otel.status_description``. No ``error``: status unset (the SDK
                       records no OK status)
=====================  ==================================================================

Attributes, so that the shared mapping and :mod:`toolkit.ingest.span_tree` name types, agents
and targets as they do for OpenInference (the OTLP export of the same runs):

=========================  ==============================================================
attribute                  from
=========================  ==============================================================
openinference.span.kind    ``agent`` -> AGENT; ``function``, ``handoff``, ``mcp_tools`` ->
                           TOOL (the SDK runs a handoff as the tool call
                           ``transfer_to_<agent>``, and OpenInference's processor kinds it
                           TOOL too); ``generation``, ``response``, ``transcription``,
                           ``speech`` -> LLM; ``guardrail`` -> GUARDRAIL; ``custom``,
                           ``speech_group`` -> CHAIN; other types: unset (the type is then
                           the span name)
gen_ai.agent.name          ``span_data.name`` of an agent span; ``span_data.data.agent_name``
                           of a custom span (the SDK's per-turn ``turn`` spans name their
                           agent so)
tool.name,                 ``span_data.name`` of a function span (the event's ``target``)
gen_ai.tool.name
handoff.from_agent,        a handoff's ``from_agent`` / ``to_agent`` (``to_agent`` is the
handoff.to_agent           event's ``target``, by :data:`span_tree.TARGET_RULES`)
input.value, output.value  ``span_data.input`` / ``output``: text as it is, anything else
                           (a generation's message list) as JSON text
gen_ai.request.model,      a model span's ``model``, ``response_id`` and
gen_ai.response.id,        ``usage.input_tokens`` / ``output_tokens`` (a custom span's usage,
gen_ai.usage.*             a run or turn total, stays under ``openai_agents.`` so that
                           tokens are not counted twice)
session.id                 the trace record's ``group_id`` (the conversation the SDK groups
                           runs under)
openai_agents.<path>       every other field of ``span_data`` and the span's ``metadata``
                           (``metadata.<key>``), flattened to dotted keys (lists kept
                           whole, nulls dropped), ``openai_agents.type`` included
=========================  ==============================================================

**Traces**: ``system`` is the trace record's ``workflow_name`` (else the root ``task`` span's
``data.name``, which the SDK copies from it): the name the application gives its workflow, not
what the run was asked; ``task`` is the first user message of the earliest model span whose
``input`` has one (a message's ``content`` text, or its first part's ``text``), i.e. the first
agent's first input, and NULL when no model span recorded its input (the SDK's own
``ScriptedModel``, and ``response`` spans, which export no input); ``session_id`` the
``group_id``; ``attrs`` ``openai_agents.workflow_name`` / ``group_id`` / ``metadata``;
``outcome`` as :mod:`toolkit.ingest.span_tree` derives it (the root ``task`` span never
carries the error: a failed agent span, the last step, fails the run). A trace record with
no spans in the file still gives its ``traces`` row.

Rejected, with their origin (``path:line``; ``path#N`` for the N-th item of a document) and
text: a line that is not JSON or not an object, an item whose ``object`` is neither ``trace``
nor ``trace.span``, a trace record without ``id``, a span whose ``span_data`` is not an object,
and (by the shared mapping) a span without ``id``, ``trace_id`` or a readable ``started_at``.
Dropped: nothing but null fields and empty objects; text the exporter already truncated
(``_sanitize_for_openai_tracing_api``) stays truncated.
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

_MACROS = r"""
CREATE OR REPLACE TEMP MACRO oa_text(j) AS CASE
    WHEN j IS NULL OR json_type(j) = 'NULL' THEN NULL
    WHEN json_type(j) = 'VARCHAR' THEN j->>'$' ELSE j::VARCHAR END;
CREATE OR REPLACE TEMP MACRO oa_msg_text(msg) AS CASE
    WHEN json_type(msg, '$.content') = 'VARCHAR' THEN json_extract_string(msg, '$.content')
    WHEN json_type(msg, '$.content') = 'ARRAY' THEN coalesce(
        json_extract_string(msg, '$.content[0].text'), json_extract_string(msg, '$.content[0].content')) END
"""
_KIND = """CASE t
    WHEN 'agent' THEN 'AGENT'
    WHEN 'function' THEN 'TOOL' WHEN 'handoff' THEN 'TOOL' WHEN 'mcp_tools' THEN 'TOOL'
    WHEN 'generation' THEN 'LLM' WHEN 'response' THEN 'LLM'
    WHEN 'transcription' THEN 'LLM' WHEN 'speech' THEN 'LLM'
    WHEN 'guardrail' THEN 'GUARDRAIL'
    WHEN 'custom' THEN 'CHAIN' WHEN 'speech_group' THEN 'CHAIN' END"""
_MODEL_TYPES = "('generation', 'response', 'transcription', 'speech')"


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage the traces and spans of the OpenAI Agents SDK export ``path`` for ``toolkit.ingest``."""
    create_span_table(con)
    con.execute(_MACROS)
    head = file_head(path)
    if looks_like_jsonl(head) or head[:1] not in (b"{", b"["):
        stage_file_lines(con, path)
        prefix = f"{path}:"
    else:
        data = re.match(rb'\{\s*"data"\s*:\s*\[', head) is not None
        if not data and head[:1] == b"{":  # one item on one line, or unreadable: line by line
            stage_file_lines(con, path)
            prefix = f"{path}:"
        else:
            if not stage_json_items(con, path, "$.data[*]" if data else "$[*]"):
                return
            prefix = f"{path}#"
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE oa_items AS
        SELECT ord, raw, j, object, sd, sd->>'type' AS t,
               coalesce(object = 'trace' AND nullif(trim(j->>'id'), '') IS NOT NULL, false) AS trace_record
        FROM (SELECT ord, raw, j, CASE WHEN json_type(j) = 'OBJECT' THEN j->>'object' END AS object,
                     CASE WHEN json_type(j->'span_data') = 'OBJECT' THEN j->'span_data' END AS sd
              FROM """
        + PARSED_RECORDS
        + """)
    """
    )
    # The first record of each trace (a repeated trace record adds nothing).
    con.execute("""
        CREATE OR REPLACE TEMP TABLE oa_traces AS
        SELECT trim(j->>'id') AS id, first(j ORDER BY ord) AS tr FROM oa_items
        WHERE trace_record GROUP BY ALL
    """)
    # span_data (less input/output) and the span's metadata, flattened to dotted keys.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE oa_flat AS
        SELECT ord, json_group_object('openai_agents.' || k, v) AS flat FROM (
            SELECT ord, replace(substr(x.fullkey, 3), '"', '') AS k, x.value AS v
            FROM (SELECT ord, sd FROM oa_items WHERE object = 'trace.span' AND sd IS NOT NULL) s,
                 json_tree(s.sd) x
            WHERE x.type NOT IN ('OBJECT', 'NULL') AND NOT contains(x.fullkey, '[')
              AND NOT regexp_matches(x.fullkey, '^\\$\\.(input|output)($|\\.)')
            UNION ALL
            SELECT ord, 'metadata.' || replace(substr(x.fullkey, 3), '"', ''), x.value
            FROM (SELECT ord, j->'metadata' AS m FROM oa_items
                  WHERE object = 'trace.span' AND json_type(j->'metadata') = 'OBJECT') s,
                 json_tree(s.m) x
            WHERE x.type NOT IN ('OBJECT', 'NULL') AND NOT contains(x.fullkey, '[')
        ) GROUP BY ord
    """)
    # The run facts of each trace: its record's fields and the first agent's first input.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE oa_run AS
        WITH spans AS (
            SELECT trim(j->>'trace_id') AS id, ord, span_json_ts(j->'started_at') AS ts, t, sd,
                   j->>'parent_id' IS NULL AS root
            FROM oa_items WHERE object = 'trace.span' AND nullif(trim(j->>'trace_id'), '') IS NOT NULL
        ),
        asked AS (
            SELECT id, first(text ORDER BY ts, ord) AS task FROM (
                SELECT id, ts, ord, CASE
                    WHEN json_type(sd->'input') = 'VARCHAR' THEN sd->>'input'
                    WHEN json_type(sd->'input') = 'ARRAY' THEN oa_msg_text(list_filter(
                        try(from_json(sd->'input', '["JSON"]')), lambda x: json_extract_string(x, '$.role') = 'user')[1])
                    END AS text
                FROM spans WHERE t IN {_MODEL_TYPES})
            WHERE nullif(trim(text), '') IS NOT NULL GROUP BY id
        ),
        named AS (
            SELECT id, first(sd->'data'->>'name' ORDER BY ts, ord) AS workflow FROM spans
            WHERE root AND t = 'custom' AND sd->'data'->>'sdk_span_type' = 'task' GROUP BY id
        )
        SELECT span_norm_id(id) AS trace_id, coalesce(tr->>'workflow_name', n.workflow) AS system,
               a.task, nullif(tr->>'group_id', '') AS session_id,
               json_merge_patch('{{}}', json_object(
                   'openai_agents.workflow_name', tr->>'workflow_name',
                   'openai_agents.group_id', tr->>'group_id',
                   'openai_agents.metadata', CASE WHEN json_type(tr->'metadata') <> 'NULL'
                                                  THEN tr->'metadata' END)) AS attrs
        FROM (SELECT DISTINCT id FROM spans UNION SELECT id FROM oa_traces)
        LEFT JOIN oa_traces USING (id) LEFT JOIN asked a USING (id) LEFT JOIN named n USING (id)
    """)
    con.execute(
        f"""
        INSERT INTO otel_spans BY NAME
        SELECT ord AS pos, $p || ord AS origin, raw AS record,
               j->>'trace_id' AS trace_id, j->>'id' AS span_id, j->>'parent_id' AS parent_span_id,
               coalesce(CASE WHEN t = 'handoff' THEN 'handoff to ' || (sd->>'to_agent') END,
                        sd->>'name', CASE WHEN t IN {_MODEL_TYPES} THEN sd->>'model' END, t) AS name,
               span_json_ts(j->'started_at') AS ts, span_json_ts(j->'ended_at') AS end_ts,
               CASE WHEN coalesce(json_type(j->'error'), 'NULL') <> 'NULL' THEN 'error' END
                   AS status_code,
               CASE WHEN json_type(j->'error') = 'OBJECT' THEN concat_ws(': ', j->'error'->>'message',
                        CASE WHEN coalesce(json_type(j->'error'->'data'), 'NULL') <> 'NULL'
                             THEN (j->'error'->'data')::VARCHAR END)
                    ELSE oa_text(j->'error') END AS status_message,
               json_merge_patch(coalesce(f.flat, '{{}}'), json_object(
                   'openinference.span.kind', {_KIND},
                   'gen_ai.agent.name', CASE WHEN t = 'agent' THEN sd->>'name'
                                             WHEN t = 'custom' THEN sd->'data'->>'agent_name' END,
                   'tool.name', CASE WHEN t = 'function' THEN sd->>'name' END,
                   'gen_ai.tool.name', CASE WHEN t = 'function' THEN sd->>'name' END,
                   'handoff.from_agent', CASE WHEN t = 'handoff' THEN sd->>'from_agent' END,
                   'handoff.to_agent', CASE WHEN t = 'handoff' THEN sd->>'to_agent' END,
                   'input.value', oa_text(sd->'input'),
                   'output.value', oa_text(sd->'output'),
                   'gen_ai.request.model', CASE WHEN t IN {_MODEL_TYPES} THEN sd->>'model' END,
                   'gen_ai.response.id', CASE WHEN t IN {_MODEL_TYPES} THEN sd->>'response_id' END,
                   'gen_ai.usage.input_tokens', CASE WHEN t IN {_MODEL_TYPES}
                       AND json_type(sd->'usage'->'input_tokens') <> 'NULL' THEN sd->'usage'->'input_tokens' END,
                   'gen_ai.usage.output_tokens', CASE WHEN t IN {_MODEL_TYPES}
                       AND json_type(sd->'usage'->'output_tokens') <> 'NULL' THEN sd->'usage'->'output_tokens' END,
                   'session.id', r.session_id)) AS attrs,
               CASE WHEN j IS NULL THEN 'not valid JSON'
                    WHEN json_type(j) <> 'OBJECT' THEN 'not a JSON object'
                    WHEN object IS NULL THEN 'no "object" field: neither a trace nor a span record'
                    WHEN object = 'trace' THEN 'trace record without id'
                    WHEN object <> 'trace.span' THEN 'unknown object ' || to_json(object)
                    WHEN sd IS NULL AND coalesce(json_type(j->'span_data'), 'NULL') <> 'NULL'
                        THEN 'span_data is not an object' END AS reason
        FROM oa_items LEFT JOIN oa_flat f USING (ord)
        LEFT JOIN oa_run r ON r.trace_id = span_norm_id(j->>'trace_id')
        WHERE NOT trace_record
        """,
        {"p": prefix},
    )
    stage_spans(con)
    con.execute("""
        UPDATE stage_traces s SET system = coalesce(r.system, s.system), task = r.task,
            session_id = coalesce(r.session_id, s.session_id), attrs = r.attrs
        FROM oa_run r WHERE r.trace_id = s.trace_id
    """)
    con.execute("""
        INSERT INTO stage_traces BY NAME
        SELECT trace_id, system, task, session_id, attrs FROM oa_run
        WHERE trace_id IS NOT NULL AND trace_id NOT IN (SELECT trace_id FROM stage_traces)
    """)
    for table in ("oa_run", "oa_flat", "oa_traces", "oa_items"):
        con.execute(f"DROP TABLE {table}")


_OBJECT = re.compile(rb'"object"\s*:\s*"trace(\.span)?"')
_FIELDS = re.compile(rb'"(workflow_name|span_data|trace_id)"\s*:')


def sniff(head: bytes) -> bool:
    """Agents SDK items: an ``"object": "trace"`` or ``"trace.span"`` record with its fields."""
    if head[:1] not in (b"{", b"["):
        return False
    return bool(_OBJECT.search(head)) and bool(_FIELDS.search(head))


FORMAT = Format(name="openai_agents", sniff=sniff, read=read)
