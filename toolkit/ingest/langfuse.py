"""Langfuse trace exports: ``{"trace": {...}, "observations": [...]}`` or a trace object holding
its own ``observations`` (and ``scores``). The conversion runs inside DuckDB (JSON functions,
``unnest`` and a recursive CTE), not in a Python loop over observations.

Mapping (observation -> ``events``):

=========================  =============================================================
``traceId``                ``trace_id`` (absent: the trace's ``id``)
``id``                     ``event_id``
``parentObservationId``    ``parent_span_id`` (containment: observations nest, none
                           reacts to another)
``type``                   ``type``, lowercased: ``span``, ``generation``, ``event``,
                           ``agent``, ``tool``, ``chain``, ... (types stay a small
                           vocabulary); ``kind`` ``span_event`` for ``EVENT``, else ``span``
``name``                   ``name`` (also in ``attrs.name``); ``source``: the name of the
                           nearest enclosing ``AGENT`` observation (itself when it is one),
                           else its own name; ``target``: the name of a ``TOOL`` observation
``startTime``/``endTime``  ``ts``/``end_ts`` (UTC)
``level``                  ``status`` = ``error`` when ``ERROR``; the level stays in attrs
``output`` / ``input``     ``content``: ``output`` when present, else ``input`` (strings as
                           they are, structured values as JSON text); when ``content`` is
                           the output, a present ``input`` stays in ``attrs.input``
everything else            ``attrs`` (``model``, ``usageDetails``, ``costDetails``,
                           ``metadata``, ``statusMessage``, ``level``, ``name``, ...)
=========================  =============================================================

Trace -> ``traces``: ``system`` = the instrumentation scope from ``metadata.scope.name``
(unless it is the generic ``langfuse-sdk``), else the ``tags`` joined by commas, else the trace
``name``; ``task`` = the trace ``input`` as text (a JSON-encoded string is unwrapped), else the
``name``; ``attrs`` = the trace without ``id``, ``input``, ``observations`` and ``scores``.

``scores[n]`` (in the trace or beside it) -> ``annotations``: ``mode`` = the score ``name``,
``annotator`` = ``langfuse:<source>`` (lowercased, e.g. ``langfuse:eval``), ``confidence`` = the
numeric value when it lies in [0, 1], ``evidence`` = ``{event_ids: [observationId],
reason: comment, score_id, value, string_value, data_type, timestamp}``; origin ``path#score:n``.
Only those fields are kept, so two exports of one score that differ in bookkeeping fields
(``createdAt``, ``executionTraceId``...) are the same annotation.

Dropped: JSON ``null`` fields (absent is the same), the trace's embedded copy of the
observations when they are also given beside it, score bookkeeping fields.

An observation is rejected (origin ``path#n``, the n-th observation) when it is not an object,
lacks ``id``, has no trace id, or has a ``startTime``/``endTime`` that is not a timestamp; a score
without ``name``; the whole file (``path#0``) when it is not JSON.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from toolkit.ingest import span_tree
from toolkit.ingest.base import Format, reject
from toolkit.ingest.files import read_bytes

_PROJECT = re.compile(rb'"projectId"\s*:')
_LANGFUSE = re.compile(rb'"(parentObservationId|bookmarked|observations)"\s*:')
_MAPPED = ["id", "traceId", "parentObservationId", "type", "startTime", "endTime", "output"]


def sniff(head: bytes) -> bool:
    """True when ``head`` looks like a Langfuse export: ``projectId`` with observations or a
    Langfuse trace field."""
    return bool(_PROJECT.search(head) and _LANGFUSE.search(head))


def _text(field: str, obj: str = "o") -> str:
    """SQL for a JSON member as text: strings as they are, other values as JSON text."""
    return f"""CASE WHEN coalesce(json_type({obj}, '$.{field}'), 'NULL') = 'NULL' THEN NULL
        WHEN json_type({obj}, '$.{field}') = 'VARCHAR' THEN {obj}->>'{field}'
        ELSE ({obj}->'{field}')::VARCHAR END"""


def _drop(keys: list[str]) -> str:
    return "{" + ",".join(f'"{k}":null' for k in keys) + "}"


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage one Langfuse trace export for ``toolkit.ingest``."""
    text = read_bytes(path).decode("utf-8", errors="replace")
    if not text.strip(" \t\r\n"):  # an empty file: no records
        return
    valid, kind = con.execute(
        "SELECT json_valid($t), CASE WHEN json_valid($t) THEN json_type($t::JSON) END", {"t": text}
    ).fetchall()[0]
    if not valid:
        reject(con, f"{path}#0", "file is not valid JSON", text[:10000])
        return
    if kind != "OBJECT":
        reject(
            con, f"{path}#0", f"not a Langfuse export (an object) but {kind.lower()}", text[:10000]
        )
        return
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE lf_doc AS
        SELECT trace, coalesce(doc->'observations', trace->'observations') AS obs,
               coalesce(doc->'scores', trace->'scores') AS scores,
               CASE json_type(trace, '$.metadata') WHEN 'VARCHAR' THEN try_cast(trace->>'metadata' AS JSON)
                    ELSE trace->'metadata' END AS meta
        FROM (SELECT doc, CASE WHEN json_type(doc, '$.trace') = 'OBJECT' THEN doc->'trace' ELSE doc END AS trace
              FROM (SELECT $t::JSON AS doc))
        """,
        {"t": text},
    )
    p = f"{path}#"
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE lf_obs AS
        SELECT *, CASE
            WHEN json_type(o) <> 'OBJECT' THEN 'observation is not a JSON object but ' || lower(json_type(o))
            WHEN coalesce(id, '') = '' THEN 'observation lacks id'
            WHEN trace_id IS NULL THEN 'observation has no traceId and the trace no id'
            WHEN o->>'startTime' IS NOT NULL AND ts IS NULL THEN 'startTime is not a timestamp: ' || (o->>'startTime')
            WHEN o->>'endTime' IS NOT NULL AND end_ts IS NULL THEN 'endTime is not a timestamp: ' || (o->>'endTime')
            END AS reason
        FROM (
            SELECT n, o, o->>'id' AS id, o->>'parentObservationId' AS parent, o->>'type' AS otype,
                   o->>'name' AS name, coalesce(o->>'traceId', (SELECT trace->>'id' FROM lf_doc)) AS trace_id,
                   try_cast(o->>'startTime' AS TIMESTAMPTZ) AS ts, try_cast(o->>'endTime' AS TIMESTAMPTZ) AS end_ts
            FROM (SELECT unnest(items) AS o, generate_subscripts(items, 1) AS n
                  FROM (SELECT json_extract(obs, '$[*]') AS items FROM lf_doc WHERE json_type(obs) = 'ARRAY'))
        )
        """
    )
    con.execute(
        "INSERT INTO stage_rejects SELECT $p || n, reason, o::VARCHAR FROM lf_obs WHERE reason IS NOT NULL",
        {"p": p},
    )
    con.execute(
        f"""
        INSERT INTO stage_events BY NAME
        WITH RECURSIVE good AS (SELECT * FROM lf_obs WHERE reason IS NULL),
        agent(id, agent) AS (
            SELECT id, CASE WHEN otype = 'AGENT' THEN name END FROM good
            WHERE parent IS NULL OR parent NOT IN (SELECT id FROM good)
            UNION
            SELECT c.id, CASE WHEN c.otype = 'AGENT' THEN c.name ELSE a.agent END
            FROM good c JOIN agent a ON c.parent = a.id
        ),
        agents AS (SELECT id, min(agent) AS agent FROM agent GROUP BY id)
        SELECT trace_id, g.id AS event_id, parent AS parent_span_id,
               CASE WHEN otype = 'EVENT' THEN 'span_event' ELSE 'span' END AS kind, name,
               coalesce(lower(otype), 'observation') AS type,
               coalesce(agents.agent, name) AS source,
               CASE WHEN otype = 'TOOL' THEN name END AS target, ts, end_ts,
               CASE WHEN o->>'level' = 'ERROR' THEN 'error' END AS status,
               coalesce({_text("output")}, {_text("input")}) AS content,
               nullif(json_merge_patch('{{}}', o, CASE WHEN {_text("output")} IS NULL
                   THEN '{_drop([*_MAPPED, "input"])}' ELSE '{_drop(_MAPPED)}' END), '{{}}') AS attrs,
               n AS ord, n AS seq, $p || n AS origin
        FROM good g LEFT JOIN agents USING (id)
        """,
        {"p": p},
    )
    con.execute(
        f"""
        INSERT INTO stage_traces BY NAME
        SELECT trace->>'id' AS trace_id,
               coalesce(nullif(meta->'scope'->>'name', 'langfuse-sdk'),
                        nullif(array_to_string(try_cast(trace->'tags' AS VARCHAR[]), ','), ''),
                        trace->>'name') AS system,
               coalesce(CASE WHEN json_valid(input) AND json_type(input::JSON) = 'VARCHAR'
                             THEN input::JSON->>'$' ELSE input END, trace->>'name') AS task,
               nullif(json_merge_patch('{{}}', trace, '{_drop(["id", "input", "observations", "scores"])}'),
                      '{{}}') AS attrs
        FROM (SELECT *, {_text("input", "trace")} AS input FROM lf_doc)
        WHERE trace->>'id' IS NOT NULL
        """
    )
    span_tree.derive(con)
    _stage_scores(con, p)
    con.execute("DROP TABLE lf_obs")
    con.execute("DROP TABLE lf_doc")


def _stage_scores(con: duckdb.DuckDBPyConnection, p: str) -> None:
    con.execute("""
        CREATE OR REPLACE TEMP TABLE lf_scores AS
        SELECT n, s, coalesce(s->>'traceId', (SELECT trace->>'id' FROM lf_doc)) AS trace_id
        FROM (SELECT unnest(items) AS s, generate_subscripts(items, 1) AS n
              FROM (SELECT json_extract(scores, '$[*]') AS items FROM lf_doc WHERE json_type(scores) = 'ARRAY'))
    """)
    con.execute(
        """
        INSERT INTO stage_rejects SELECT $p || 'score:' || n,
            CASE WHEN coalesce(s->>'name', '') = '' THEN 'score lacks name' ELSE 'score has no trace id' END,
            s::VARCHAR
        FROM lf_scores WHERE coalesce(s->>'name', '') = '' OR trace_id IS NULL
        """,
        {"p": p},
    )
    con.execute(
        """
        INSERT INTO stage_annotations BY NAME
        SELECT trace_id, s->>'name' AS mode, 'langfuse:' || lower(coalesce(s->>'source', 'unknown')) AS annotator,
               CASE WHEN json_type(s, '$.value') IN ('DOUBLE', 'BIGINT', 'UBIGINT')
                         AND (s->>'value')::DOUBLE BETWEEN 0 AND 1 THEN (s->>'value')::DOUBLE END AS confidence,
               json_object(
                   'event_ids', CASE WHEN s->>'observationId' IS NULL THEN '[]'::JSON
                                     ELSE json_array(s->>'observationId') END,
                   'reason', s->>'comment', 'score_id', s->>'id', 'value', s->'value',
                   'string_value', s->>'stringValue', 'data_type', s->>'dataType',
                   'timestamp', s->>'timestamp') AS evidence,
               $p || 'score:' || n AS origin
        FROM lf_scores WHERE coalesce(s->>'name', '') <> '' AND trace_id IS NOT NULL
        """,
        {"p": p},
    )
    con.execute("DROP TABLE lf_scores")


FORMAT = Format("langfuse", sniff, read)
