"""The mapping shared by the span formats (OTLP/JSON, OTel SDK dumps, OpenInference/Phoenix).

A span reader parses its file into the temp table ``otel_spans`` (see :data:`SPAN_COLUMNS`: one
row per span, attributes already flattened into one JSON object) and calls :func:`stage_spans`,
which validates, maps and stages events and traces in SQL. The mapping (one span -> one event,
each span event -> one more event) is documented once here; each reader documents its own fields.

=========================  ===============================================================
span field                 ``events`` column
=========================  ===============================================================
trace id                   ``trace_id`` (lowercase hex; base64 ids decoded; other ids kept)
span id                    ``event_id``
parent span id             ``parent_span_id`` (containment; empty or all-zero: none)
causation                  ``parent_id``: the first link of a consumer-side span (below), else
                           a consumer-side span's parent (the producer's propagated context),
                           else the first link of a span with no parent; else NULL
kind                       ``message`` for a producer-side messaging span (span kind PRODUCER
                           or operation publish / send / create), else ``span``
start / end                ``ts`` / ``end_ts`` (UTC, microseconds)
name                       ``name``
source                     the agent (:mod:`toolkit.ingest.span_tree`), else the resource's
                           ``service.name``
type precedence            ``gen_ai.operation.name``, else ``openinference.span.kind``, else the
                           messaging operation (``messaging.operation.type``, legacy
                           ``messaging.operation``; lowercased), else the span name
target                     ``gen_ai.tool.name``, else ``tool.name``, else
                           ``messaging.destination.name``, else ``peer.service``
status                     ``error`` when the status code is ERROR, ``error.type`` is set or an
                           ``exception`` event exists; ``ok`` when the code is OK; else NULL
``messaging.message.id``   ``idempotency_key`` on consumer-side spans only (operation
                           receive / process / settle / deliver, or kind CONSUMER without an
                           operation); never on publish / create / send spans, so a message
                           processed twice shows as two events sharing a key
content                    output first, else input: ``gen_ai.output.messages``,
                           ``output.value``, ``gen_ai.completion``, ``ai.response.text``,
                           ``ai.response.object``, ``gen_ai.tool.call.result``,
                           ``gen_ai.output``; then ``gen_ai.input.messages``, ``input.value``,
                           ``gen_ai.prompt``, ``ai.prompt.messages``, ``ai.prompt``,
                           ``gen_ai.tool.call.arguments``, ``gen_ai.tool.args`` (the output is
                           what the span added; its input mostly repeats earlier events)
attributes                 ``attrs``: resource, scope and span attributes in one flat object
                           (span wins over scope over resource), plus ``span.kind``
                           (internal/server/client/producer/consumer),
                           ``otel.status_description``, ``links`` and the two below
=========================  ===============================================================

**Containment is not causation.** A child span is part of its parent's work, not a reaction to
it, so it has a ``parent_span_id`` and no ``parent_id``. **Links are causation**: a span with
links whose kind is CONSUMER, whose messaging operation is consumer-side, or that has no parent,
takes the first link's span id as ``parent_id``; when the linked span is in another trace its
trace id goes to ``attrs.parent_trace_id`` (the traces become one session). A consumer-side span
without links reacts to its parent, the producer's message. All links stay in ``attrs.links``
(``[{trace_id, span_id, attributes}]``); a batch consumer linked to several messages points at
the first one only.

**Span events** become events of their own (``kind`` ``span_event``): ``event_id``
``<span_id>:event:<n>`` (n from 1, in the order the span lists them), ``parent_span_id`` the span, ``type`` the event name (``event`` when
unnamed), ``ts`` its time, ``source`` the span's, ``status`` ``error`` for ``exception``,
``content`` its ``exception.message`` (else ``gen_ai.output.messages``, ``gen_ai.completion``,
``gen_ai.input.messages``, ``gen_ai.prompt``, ``message``), ``attrs`` its attributes; origin
the span's.

**Traces**: ``system`` is the root span's (the earliest span's when the root is not in the file)
``service.name``, unless that is ``unknown_service...``: then ``gen_ai.system``,
``gen_ai.provider.name`` or ``gen_ai.agent.name``; ``task`` is the text of the first user
message of the earliest span carrying ``gen_ai.input.messages`` (OTel GenAI message JSON: a
``content`` string or the first ``parts`` text), else the root span's ``input.value``
(OpenInference), else the root span's name; ``session_id`` and ``outcome``: see
:mod:`toolkit.ingest.span_tree`.

A span is rejected (with its origin and record) when its trace id, span id or start time is
missing or unreadable, or the reader found another reason. Parents outside the file (orphans)
are not errors.
"""

from __future__ import annotations

import duckdb

from toolkit.ingest import span_tree

SPAN_COLUMNS: dict[str, str] = {
    "pos": "BIGINT",  # 1-based position of the span in its file
    "origin": "VARCHAR",
    "record": "VARCHAR",  # the span's text, kept only for rejects (may be NULL otherwise)
    "trace_id": "VARCHAR",
    "span_id": "VARCHAR",
    "parent_span_id": "VARCHAR",
    "name": "VARCHAR",
    "kind": "VARCHAR",  # internal / server / client / producer / consumer / NULL
    "ts": "TIMESTAMPTZ",
    "end_ts": "TIMESTAMPTZ",
    "status_code": "VARCHAR",  # ok / error / NULL (unset)
    "status_message": "VARCHAR",
    "attrs": "JSON",  # one flat object: resource, scope and span attributes
    "events": "STRUCT(name VARCHAR, ts TIMESTAMPTZ, attrs JSON)[]",
    "links": "STRUCT(trace_id VARCHAR, span_id VARCHAR, attrs JSON)[]",
    "reason": "VARCHAR",  # a problem the reader found; NULL when none
}
SPAN_DDL = ", ".join(f"{k} {v}" for k, v in SPAN_COLUMNS.items())

_OUTPUT_KEYS = [
    "gen_ai.output.messages",
    "output.value",
    "gen_ai.completion",
    "ai.response.text",
    "ai.response.object",
    "gen_ai.tool.call.result",
    "gen_ai.output",
]
_INPUT_KEYS = [
    "gen_ai.input.messages",
    "input.value",
    "gen_ai.prompt",
    "ai.prompt.messages",
    "ai.prompt",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.args",
]
_EVENT_CONTENT_KEYS = [
    "exception.message",
    "gen_ai.output.messages",
    "gen_ai.completion",
    "gen_ai.input.messages",
    "gen_ai.prompt",
    "message",
]


_KEYS = [
    *_OUTPUT_KEYS,
    *_INPUT_KEYS,
    "gen_ai.agent.name",
    "service.name",
    "gen_ai.operation.name",
    "openinference.span.kind",
    "messaging.operation.type",
    "messaging.operation",
    "gen_ai.tool.name",
    "tool.name",
    "messaging.destination.name",
    "peer.service",
    "messaging.message.id",
    "error.type",
    "gen_ai.system",
    "gen_ai.provider.name",
]
# The attributes the mapping reads, extracted in one parse of ``attrs`` into the struct ``a``.
_KEY_STRUCT = "{" + ",".join(f'"{k}":"VARCHAR"' for k in dict.fromkeys(_KEYS)) + "}"


def attr(key: str, obj: str = "a") -> str:
    """SQL for the text of attribute ``key``: from the struct ``a`` (span attributes parsed
    once), or from the JSON object ``obj`` (NULL when absent)."""
    if obj == "a":
        assert key in _KEYS, key
        return f"a['{key}']"
    return f"""nullif({obj}->>'$."{key}"', 'null')"""


def _first(keys: list[str], obj: str = "a") -> str:
    return "coalesce(" + ", ".join(attr(k, obj) for k in keys) + ")"


# Trace/span ids: hex (any case, optional 0x) -> lowercase; base64 of 8 or 16 bytes -> hex.
_NORM_ID = """CASE
    WHEN nullif(trim(x), '') IS NULL THEN NULL
    WHEN regexp_full_match(trim(x), '(0[xX])?[0-9a-fA-F]+')
        THEN lower(regexp_replace(trim(x), '^0[xX]', ''))
    WHEN regexp_full_match(trim(x), '[A-Za-z0-9+/]{11}=|[A-Za-z0-9+/]{22}==')
        THEN coalesce(lower(hex(try(from_base64(trim(x))))), trim(x))
    ELSE trim(x) END"""


# A span's ids in their normal form: the parent none when it is all zeros.
_IDS = """span_norm_id(trace_id) AS tid, span_norm_id(span_id) AS sid,
    CASE WHEN NOT regexp_full_match(coalesce(trim(parent_span_id), ''), '0*')
         THEN span_norm_id(parent_span_id) END AS pid"""


def normal_ids(prefix: str = "") -> str:
    """SQL for the id columns of :data:`SPAN_COLUMNS` in their normal form (``trace_id``,
    ``span_id``, ``parent_span_id`` none when all zeros, ``links``), for a ``SELECT * REPLACE``
    over span rows (``prefix``: their table's alias and a dot): what :func:`stage_spans` makes
    of them, done once for rows mapped again later with ``normalized=True``."""
    p = prefix
    return f"""span_norm_id({p}trace_id) AS trace_id, span_norm_id({p}span_id) AS span_id,
        CASE WHEN NOT regexp_full_match(coalesce(trim({p}parent_span_id), ''), '0*')
             THEN span_norm_id({p}parent_span_id) END AS parent_span_id,
        list_transform({p}links, lambda l: struct_pack(trace_id := span_norm_id(l.trace_id),
            span_id := span_norm_id(l.span_id), attrs := l.attrs)) AS links"""


def create_span_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create (or empty) ``otel_spans`` and the helper macros the readers use."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE otel_spans ({SPAN_DDL})")
    con.execute(f"CREATE OR REPLACE TEMP MACRO span_norm_id(x) AS {_NORM_ID}")
    # Add the members ``extra`` (JSON text without braces) to the object text ``obj``. An
    # object that ends in its brace needs no rtrim (which costs 0.3 CPU s per 200k objects).
    con.execute("""CREATE OR REPLACE TEMP MACRO span_splice(obj, extra) AS CASE
        WHEN extra = '' THEN coalesce(obj, '{}')
        WHEN obj IS NULL OR regexp_full_match(obj::VARCHAR, '\\{\\s*\\}') THEN '{' || extra || '}'
        WHEN ends_with(obj::VARCHAR, '}') THEN left(obj::VARCHAR, -1) || ',' || extra || '}'
        ELSE left(rtrim(obj::VARCHAR), -1) || ',' || extra || '}' END""")
    # Nanoseconds (or, by magnitude, micro/milli/seconds) since the epoch -> TIMESTAMPTZ.
    # No subquery, so that readers may call it inside lambdas.
    con.execute("""CREATE OR REPLACE TEMP MACRO span_epoch_ts(x) AS CASE
        WHEN NOT coalesce(try_cast(x AS DOUBLE) > 0, false) THEN NULL
        WHEN try_cast(x AS DOUBLE) >= 1e17 THEN make_timestamptz(try_cast(try_cast(x AS HUGEINT) // 1000 AS BIGINT))
        WHEN try_cast(x AS DOUBLE) >= 1e14 THEN make_timestamptz(try_cast(x AS DOUBLE)::BIGINT)
        WHEN try_cast(x AS DOUBLE) >= 1e11 THEN make_timestamptz((try_cast(x AS DOUBLE) * 1e3)::BIGINT)
        ELSE make_timestamptz((try_cast(x AS DOUBLE) * 1e6)::BIGINT) END""")
    # A time as the JSON readers find it: RFC 3339 text, epoch numbers (or their text) by
    # magnitude, or OTel JS's high-resolution [seconds, nanoseconds]; JSON null is none.
    con.execute("""CREATE OR REPLACE TEMP MACRO span_json_ts(j) AS CASE
        WHEN j IS NULL OR json_type(j) = 'NULL' THEN NULL
        WHEN json_type(j) = 'ARRAY' THEN make_timestamptz(try_cast(
            try_cast(j->>0 AS HUGEINT) * 1000000 + try_cast(j->>1 AS HUGEINT) // 1000 AS BIGINT))
        WHEN json_type(j) = 'VARCHAR'
            THEN coalesce(try_cast(j->>'$' AS TIMESTAMPTZ), span_epoch_ts(j->>'$'))
        ELSE span_epoch_ts(j::VARCHAR) END""")


def stage_spans(
    con: duckdb.DuckDBPyConnection, spans: str = "otel_spans", *, normalized: bool = False
) -> None:
    """Validate and map ``otel_spans`` into ``stage_events``/``stage_traces``/``stage_rejects``.

    ``spans``: where the rows are, when not in ``otel_spans`` (a table, a view or a
    parenthesised query with its columns, :data:`SPAN_COLUMNS`); ``otel_spans`` is dropped
    after, any other source is left as it is. ``normalized``: its ids are in their normal form
    already (:func:`normal_ids`), so none is looked at again.
    """
    out_keys, in_keys = _first(_OUTPUT_KEYS), _first(_INPUT_KEYS)
    if normalized:
        ids, link_id = "trace_id AS tid, span_id AS sid, parent_span_id AS pid", "l.{}"
    else:
        ids, link_id = _IDS, "span_norm_id(l.{})"
    # one table for the checked and the mapped span (``why``: its reject reason), so the
    # batch is copied once: the mapping of a rejected span is computed, never used
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE span_mapped AS
        SELECT *, CASE WHEN use_link THEN link.span_id WHEN consumer_side THEN pid END AS parent_id,
               CASE WHEN kind = 'producer' OR op IN ('publish', 'send', 'create') THEN 'message'
                    ELSE 'span' END AS record_kind,
               CASE WHEN status_code = 'error' OR {attr("error.type")} IS NOT NULL
                         OR list_contains(list_transform(events, lambda e: e.name), 'exception')
                    THEN 'error' WHEN status_code = 'ok' THEN 'ok' END AS status,
{attr("service.name")} AS source  -- span_tree names the agents
        FROM (SELECT *, links[1] AS link,
                     len(links) > 0 AND (kind = 'consumer' OR pid IS NULL OR consumer_side) AS use_link
              FROM (SELECT c.* EXCLUDE (links),
                           list_filter(list_transform(links, lambda l: struct_pack(
                               trace_id := {link_id.format("trace_id")},
                               span_id := {link_id.format("span_id")},
                               attributes := l.attrs)), lambda l: l.span_id IS NOT NULL) AS links,
                           op IN ('receive', 'process', 'settle', 'deliver')
                               OR (op IS NULL AND kind = 'consumer') AS consumer_side
                    FROM (SELECT *, lower({_first(["messaging.operation.type", "messaging.operation"])}) AS op
                          FROM (SELECT *, CASE
                                    WHEN reason IS NOT NULL THEN reason
                                    WHEN tid IS NULL THEN 'missing trace id'
                                    WHEN sid IS NULL THEN 'missing span id'
                                    WHEN ts IS NULL THEN 'missing or unreadable start time'
                                END AS why
                                FROM (SELECT s.* EXCLUDE (trace_id, span_id, parent_span_id), {ids},
                                             try(json_transform(attrs, '{_KEY_STRUCT}')) AS a
                                      FROM {spans} s))) c))
    """)
    con.execute("""
        INSERT INTO stage_rejects SELECT origin, why, record FROM span_mapped WHERE why IS NOT NULL
    """)
    con.execute(f"""
        INSERT INTO stage_events BY NAME
        SELECT trace_id, event_id, parent_id, parent_span_id, kind, name, type, source, target,
               ts, end_ts, status, idempotency_key, content, attrs, origin,
               row_number() OVER (ORDER BY pos, n) AS ord
        FROM (
            SELECT tid AS trace_id, sid AS event_id, parent_id, pid AS parent_span_id,
                   record_kind AS kind, name, source, ts, end_ts, status, origin, pos, 0 AS n,
                   coalesce({_first(["gen_ai.operation.name", "openinference.span.kind"])}, op,
                            nullif(name, ''), 'span') AS type,
                   {_first(["gen_ai.tool.name", "tool.name", "messaging.destination.name", "peer.service"])}
                       AS target,
                   CASE WHEN consumer_side THEN {attr("messaging.message.id")} END AS idempotency_key,
                   coalesce({out_keys}, {in_keys}) AS content,
                   span_splice(attrs, concat_ws(',',
                       '"span.kind":' || to_json(kind),
                       '"otel.status_description":' || to_json(nullif(status_message, '')),
                       CASE WHEN len(links) > 0 THEN '"links":' || to_json(links) END,
                       CASE WHEN use_link AND link.trace_id <> tid
                            THEN '"parent_trace_id":' || to_json(link.trace_id) END)) AS attrs
            FROM span_mapped WHERE why IS NULL
            UNION ALL
            SELECT tid, sid || ':event:' || n, NULL, sid, 'span_event', e.name, source, e.ts, NULL,
                   CASE WHEN e.name = 'exception' THEN 'error' END, origin, pos, n,
                   coalesce(nullif(e.name, ''), 'event'), NULL, NULL,
                   {_first(_EVENT_CONTENT_KEYS, "e.attrs")}, e.attrs
            FROM (SELECT tid, sid, source, origin, pos, unnest(events) AS e,
                         generate_subscripts(events, 1) AS n
                  FROM span_mapped WHERE why IS NULL AND len(events) > 0)
        )
    """)
    _stage_traces(con)
    span_tree.derive(con)
    con.execute("DROP TABLE span_mapped")
    if spans == "otel_spans":
        con.execute("DROP TABLE otel_spans")


def _stage_traces(con: duckdb.DuckDBPyConnection) -> None:
    service = attr("service.name")
    system = f"""coalesce(CASE WHEN {service} NOT LIKE 'unknown_service%' THEN {service} END,
        {_first(["gen_ai.system", "gen_ai.provider.name", "gen_ai.agent.name"])}, {service})"""
    msgs = attr("gen_ai.input.messages")
    first_user = f"""list_filter(try(from_json({msgs},
        '[{{"role":"VARCHAR","content":"JSON","parts":[{{"content":"VARCHAR","text":"VARCHAR"}}]}}]')),
        lambda x: x.role = 'user')[1]"""
    con.execute(f"""
        INSERT INTO stage_traces BY NAME
        SELECT trace_id, first(system ORDER BY is_child, ts, pos) AS system,
               coalesce(first(user_text ORDER BY user_text IS NULL, ts, pos),
                        first(root_input ORDER BY is_child, ts, pos),
                        first(name ORDER BY is_child, ts, pos)) AS task
        FROM (SELECT *, CASE WHEN json_type(m.content) = 'VARCHAR' THEN m.content->>'$'
                             ELSE coalesce(m.parts[1].content, m.parts[1].text) END AS user_text
              FROM (SELECT tid AS trace_id, {system} AS system, pid IS NOT NULL AS is_child, ts,
                           pos, name, CASE WHEN pid IS NULL THEN {attr("input.value")} END AS root_input,
                           CASE WHEN {msgs} IS NOT NULL THEN {first_user} END AS m
                    FROM span_mapped WHERE why IS NULL))
        GROUP BY trace_id
    """)
