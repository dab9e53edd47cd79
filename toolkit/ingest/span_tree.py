"""What a span tree says beyond each span: who did the work, and how each run ended.

Every span reader (OTLP, OTel SDK dumps, OpenInference, Jaeger, Zipkin, Langfuse, the OpenAI
Agents SDK export) stages its spans with ``kind`` (``span``, ``span_event``, ``message``),
``parent_span_id`` (containment) and the service as ``source``, then calls :func:`derive`,
which works in SQL over the staged rows of the file:

**Who did it** (``source``): the span's own agent, by the first rule of :data:`AGENT_RULES`
that names one (each rule says which framework's convention it reads), else the agent of the
nearest enclosing span that has one, else the staged ``source`` (the service). The walk up the
containment tree stops at consumer-side spans (``span.kind`` consumer, or a receive / process /
deliver / settle messaging operation): the consumer's work belongs to the consumer, not to
whoever sent the message. A span event belongs to its span's agent.

**Whom it addressed** (``target``): the staged target (tool, destination, peer), else the
first rule of :data:`TARGET_RULES` (a handoff's agent, a message's recipient).

**Step limits**: a smolagents run span whose ``Step <n>`` children reached its declared
``smolagents.max_steps`` gave up (smolagents records the error only in the agent's memory and
answers with a fallback), so its status is set to ``error`` with a status description saying so.

**Runs** (``traces``): ``system`` is the service of the trace's root span (the earliest span
without an enclosing span), unless the reader set one; ``session_id`` is the first
``session.id``, ``gen_ai.conversation.id``, ``conversation.id`` or ``thread_id`` any span of
the trace carries (traces connected by span links are joined into one session after the merge:
:func:`link_sessions`); ``outcome`` (unless the reader set one):

* ``failure`` when the root span failed, or when the trace's last agent or LLM step (the one
  that ended last among spans whose type is an agent or model call: :data:`STEP_TYPES`) failed;
* ``success`` when the root span is there, ended and neither of the above holds;
* else NULL (the file holds no root span: a fragment, or a root that never ended).
"""

from __future__ import annotations

import duckdb

_AUTOGEN_NAME = "regexp_replace({x}, '_[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$', '')"

# One rule per framework convention: (where it comes from, SQL over the staged row). ``a`` is
# the attributes parsed once (see _ATTR_KEYS), ``name`` the span name, ``type`` the mapped type.
AGENT_RULES: list[tuple[str, str]] = [
    ("OpenTelemetry GenAI: gen_ai.agent.name", "a['gen_ai.agent.name']"),
    ("OpenInference: agent.name", "a['agent.name']"),
    ("OpenInference (CrewAI, AutoGen AgentChat, OpenAI Agents): graph.node.id",
     "a['graph.node.id']"),
    # AutoGen agent types are '<name>_<team uuid>' inside a team: the name is the agent
    ("AutoGen core runtime: the agent that processes a message",
     "CASE WHEN lower(a['messaging.operation']) = 'process' OR a['span.kind'] = 'consumer' "
     "THEN " + _AUTOGEN_NAME.format(x="a['recipient_agent_type']") + " END"),
    ("AutoGen core runtime: the agent that publishes or sends a message",
     _AUTOGEN_NAME.format(x="a['sender_agent_type']")),
    ("LangGraph (OpenInference LangChain): metadata.langgraph_node",
     "nullif(json_extract_string(a['metadata'], '$.langgraph_node'), '__start__')"),
    ("smolagents (OpenInference): an AGENT span named <agent>.run",
     "CASE WHEN a['openinference.span.kind'] = 'AGENT' "
     "THEN nullif(regexp_extract(name, '^(.+)\\.run$', 1), '') END"),
    # (not a root: OpenInference's OpenAI Agents root is an AGENT span named after the workflow)
    ("OpenInference / Langfuse: an AGENT span below the root is named after its agent",
     "CASE WHEN upper(coalesce(a['openinference.span.kind'], type)) = 'AGENT' "
     "AND parent_span_id IS NOT NULL THEN name END"),
]  # fmt: skip

TARGET_RULES: list[tuple[str, str]] = [
    ("OpenAI Agents SDK: the agent handed off to", "a['handoff.to_agent']"),
    ("OpenInference / OpenAI Agents: a span named 'handoff to <agent>'",
     "nullif(regexp_extract(name, '^handoff to (.+)$', 1), '')"),
    ("AutoGen core runtime: the recipient of a message sent directly",
     "CASE WHEN lower(a['messaging.operation']) IN ('publish', 'send', 'create') "
     "THEN coalesce(a['recipient_agent_type'], a['messaging.destination']) END"),
]  # fmt: skip

# Types of the steps whose failure, when it is the last one, fails the run: agent invocations
# and model calls, in the GenAI, OpenInference and Langfuse vocabularies (lowercased).
STEP_TYPES = ["invoke_agent", "create_agent", "chat", "text_completion", "generate_content",
              "agent", "llm", "generation"]  # fmt: skip

_ATTR_KEYS = [
    "gen_ai.agent.name", "agent.name", "messaging.operation", "messaging.operation.type",
    "span.kind", "recipient_agent_type", "sender_agent_type", "messaging.destination",
    "metadata", "openinference.span.kind", "handoff.to_agent", "session.id",
    "gen_ai.conversation.id", "conversation.id", "thread_id", "service.name", "graph.node.id",
    "smolagents.max_steps",
]  # fmt: skip
_ATTR_STRUCT = "{" + ",".join(f'"{k}":"VARCHAR"' for k in _ATTR_KEYS) + "}"


def _rule_columns(rules: list[tuple[str, str]], name: str) -> str:
    """Each rule's value, trimmed, as a column ``<name><i>``: ``nullif`` repeats its argument
    (DuckDB expands it), so it applies to these columns rather than to the rules' SQL."""
    return ", ".join(f"trim({sql}) AS {name}{i}" for i, (_, sql) in enumerate(rules))


def _first_rule(rules: list[tuple[str, str]], name: str) -> str:
    return "coalesce(" + ", ".join(f"nullif({name}{i}, '')" for i in range(len(rules))) + ")"


def derive(con: duckdb.DuckDBPyConnection) -> None:
    """Name agents and targets of the staged spans and stage their traces' run facts."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE st_span AS
        SELECT trace_id, event_id, parent_span_id, kind, type, name, source, target, ts, end_ts,
               status, ord, {_first_rule(AGENT_RULES, "agent_")} AS own_agent,
               {_first_rule(TARGET_RULES, "target_")} AS rule_target,
               coalesce(a['span.kind'] = 'consumer', false)
                   OR lower(coalesce(a['messaging.operation.type'], a['messaging.operation'], ''))
                      IN ('receive', 'process', 'deliver', 'settle') AS consumer_side,
               coalesce(a['session.id'], a['gen_ai.conversation.id'], a['conversation.id'],
                        a['thread_id']) AS session_id,
               coalesce(attrs->>'$.parent_trace_id', trace_id) AS cause_trace, parent_id,
               try_cast(a['smolagents.max_steps'] AS BIGINT) AS max_steps
        FROM (SELECT *, {_rule_columns(AGENT_RULES, "agent_")},
                     {_rule_columns(TARGET_RULES, "target_")}
              FROM (SELECT *, CASE WHEN attrs IS NOT NULL
                                   THEN try(json_transform(attrs, '{_ATTR_STRUCT}')) END AS a
                    FROM stage_events WHERE kind IN ('span', 'span_event', 'message')))
    """)
    # Agents flow down the containment tree, and from a message to its later stages (AutoGen
    # publishes a created message from a new root span linked to it). UNION (not ALL) keeps a
    # cycle in hostile input from looping: each (span, agent) pair is visited once.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE st_agent AS
        WITH RECURSIVE heir AS (
            SELECT trace_id AS p_trace, parent_span_id AS p_id, trace_id, event_id FROM st_span
            WHERE parent_span_id IS NOT NULL AND own_agent IS NULL AND NOT consumer_side
            UNION ALL
            SELECT cause_trace, parent_id, trace_id, event_id FROM st_span
            WHERE parent_span_id IS NULL AND kind = 'message' AND parent_id IS NOT NULL
              AND own_agent IS NULL
        ),
        walk(trace_id, event_id, agent) AS (
            SELECT trace_id, event_id, own_agent FROM st_span WHERE own_agent IS NOT NULL
            UNION
            SELECT h.trace_id, h.event_id, w.agent
            FROM walk w JOIN heir h ON h.p_trace = w.trace_id AND h.p_id = w.event_id
        )
        SELECT trace_id, event_id, min(agent) AS agent FROM walk GROUP BY ALL
    """)
    _mark_step_limits(con)
    # the agent (every row of st_agent has one) and, where the reader found none, the target
    con.execute("""
        UPDATE stage_events s SET source = coalesce(u.agent, s.source),
            target = coalesce(s.target, u.rule_target)
        FROM (SELECT t.trace_id, t.event_id, t.rule_target, g.agent
              FROM st_span t LEFT JOIN st_agent g USING (trace_id, event_id)
              WHERE g.agent IS NOT NULL OR t.rule_target IS NOT NULL) u
        WHERE u.trace_id = s.trace_id AND u.event_id = s.event_id
          AND s.kind IN ('span', 'span_event', 'message')
    """)
    _stage_runs(con)
    con.execute("DROP TABLE st_agent")
    con.execute("DROP TABLE st_span")


def _mark_step_limits(con: duckdb.DuckDBPyConnection) -> None:
    """A smolagents run that used all its steps (``smolagents.max_steps`` children named
    ``Step <n>``) gave up: smolagents records AgentMaxStepsError in the agent's memory and
    returns a fallback answer without failing the span, so the span is marked failed here."""
    if not con.execute("SELECT count(*) FROM st_span WHERE max_steps > 0").fetchall()[0][0]:
        return  # no span declares a step limit (all but smolagents runs)
    con.execute("""
        UPDATE stage_events s SET status = 'error',
            attrs = json_merge_patch(coalesce(s.attrs, '{}'), json_object(
                'otel.status_description', 'reached its step limit (smolagents.max_steps = '
                    || r.max_steps || ') without a final answer of its own'))
        FROM (SELECT r.trace_id, r.event_id, any_value(r.max_steps) AS max_steps
              FROM st_span r JOIN st_span c
                ON c.trace_id = r.trace_id AND c.parent_span_id = r.event_id
              WHERE r.max_steps > 0 AND regexp_full_match(c.name, 'Step \\d+')
              GROUP BY ALL HAVING count(*) >= any_value(r.max_steps)) r
        WHERE s.trace_id = r.trace_id AND s.event_id = r.event_id
          AND s.status IS DISTINCT FROM 'error'
    """)
    con.execute("""
        UPDATE st_span s SET status = 'error' FROM stage_events e
        WHERE e.trace_id = s.trace_id AND e.event_id = s.event_id AND e.status = 'error'
          AND s.status IS DISTINCT FROM 'error'
    """)


def _stage_runs(con: duckdb.DuckDBPyConnection) -> None:
    # stage_traces made again, in one statement: a staged trace keeps what its reader set and
    # gets the rest from its spans; a trace only the spans name is added
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE stage_traces AS
        WITH root AS (
            SELECT trace_id, arg_min(source, (ts, ord)) AS service,
                   arg_min(status, (ts, ord)) AS status, arg_min(end_ts, (ts, ord)) AS end_ts
            FROM st_span
            WHERE kind <> 'span_event' AND parent_span_id IS NULL GROUP BY trace_id
        ),
        last_step AS (
            SELECT trace_id, arg_max(status, (coalesce(end_ts, ts), ord)) AS status FROM st_span
            WHERE kind = 'span' AND list_contains($steps, lower(type))
              AND parent_span_id IS NOT NULL GROUP BY trace_id
        ),
        session AS (
            SELECT trace_id, arg_min(session_id, (ts, ord)) AS session_id FROM st_span
            WHERE session_id IS NOT NULL GROUP BY trace_id
        ),
        run AS (
            SELECT trace_id, r.service AS system, ss.session_id,
                   CASE WHEN r.status = 'error' OR l.status = 'error' THEN 'failure'
                        WHEN r.end_ts IS NOT NULL THEN 'success' END AS outcome
            FROM (SELECT DISTINCT trace_id FROM st_span) t
            LEFT JOIN root r USING (trace_id) LEFT JOIN last_step l USING (trace_id)
            LEFT JOIN session ss USING (trace_id)
        )
        SELECT coalesce(t.trace_id, r.trace_id) AS trace_id,
               coalesce(t.system, r.system) AS system, t.task,
               coalesce(t.outcome, r.outcome) AS outcome, t.attrs,
               coalesce(t.session_id, r.session_id) AS session_id
        FROM (SELECT rowid AS n, * FROM stage_traces) t FULL JOIN run r ON r.trace_id = t.trace_id
        ORDER BY t.n NULLS LAST, r.trace_id  -- the staged rows in their order, then the new ones
        """,
        {"steps": STEP_TYPES},
    )


def link_sessions(con: duckdb.DuckDBPyConnection) -> None:
    """Give traces connected by span links one session, when no explicit one joins them.

    A trace without ``session_id`` that links to (or is linked from) another trace shares its
    session: the explicit session id of a trace in the connected group when there is one, else
    the group's smallest trace id. Traces with no links keep their own (NULL) session, which
    readers of the table treat as the trace itself (``coalesce(session_id, trace_id)``).
    """
    con.execute("""
        CREATE OR REPLACE TEMP TABLE st_links AS
        SELECT DISTINCT trace_id AS a, attrs->>'$.parent_trace_id' AS b FROM events
        WHERE kind IN ('span', 'message') AND attrs->>'$.parent_trace_id' IS NOT NULL
          AND attrs->>'$.parent_trace_id' <> trace_id
    """)
    if not con.execute("SELECT count(*) FROM st_links").fetchall()[0][0]:
        con.execute("DROP TABLE st_links")
        return
    con.execute("""
        UPDATE traces t SET session_id = g.session_id FROM (
            WITH RECURSIVE und AS (SELECT a, b FROM st_links UNION SELECT b, a FROM st_links),
            comp(t, root) USING KEY (t) AS (
                SELECT a, a FROM und GROUP BY a
                UNION
                -- the smallest label offered to each trace in this round, if it lowers its own
                SELECT u.b, min(c.root) FROM comp c JOIN und u ON u.a = c.t
                LEFT JOIN recurring.comp k ON k.t = u.b
                GROUP BY u.b, k.root HAVING min(c.root) < coalesce(k.root, u.b)
            )
            SELECT c.t AS trace_id,
                   coalesce(min(x.session_id) OVER (PARTITION BY c.root), c.root) AS session_id
            FROM comp c LEFT JOIN traces x ON x.trace_id = c.t
        ) g
        WHERE g.trace_id = t.trace_id AND t.session_id IS DISTINCT FROM g.session_id
          AND (t.session_id IS NULL OR t.session_id = t.trace_id
               OR t.session_id IN (SELECT trace_id FROM traces))
    """)
    con.execute("DROP TABLE st_links")
