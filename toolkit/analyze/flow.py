"""Where the flow stops: unhandled events, hangs and missing terminal events, escalations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Unpack

import duckdb
import pandas as pd

from toolkit.analyze.delivery import KEYED_SQL, LATE_RESPONSE_SQL
from toolkit.analyze.scope import (
    Filters,
    Query,
    TerminalTypes,
    known_terminal_types,
    run,
    scoped,
    terminal_frames,
    terminal_types_sql,
)
from toolkit.db import is_live

UNHANDLED_COLUMNS = ["trace_id", "event_id", "type", "source", "target", "ts", "reason"]
HANG_COLUMNS = ["trace_id", "event_id", "kind", "type", "source", "target", "ts", "waited_s",
                "detail"]  # fmt: skip
ESCALATION_COLUMNS = ["trace_id", "event_id", "type", "source", "target", "ts", "trigger",
                      "resolved_by", "resolved_ts", "time_to_resolve_s"]  # fmt: skip


def _subscriptions(subscriptions: dict[str, str | list[str]] | pd.DataFrame | None) -> list[dict]:
    """Normalise declared subscriptions to rows ``{"type": ..., "handler": ...}``."""
    if subscriptions is None:
        return []
    if isinstance(subscriptions, pd.DataFrame):
        return subscriptions[["type", "handler"]].to_dict("records")
    rows = []
    for event_type, handlers in subscriptions.items():
        for handler in [handlers] if isinstance(handlers, str) else handlers:
            rows.append({"type": event_type, "handler": handler})
    return rows


def unhandled_events_query(
    *,
    subscriptions: dict[str, str | list[str]] | pd.DataFrame | None = None,
    threshold: float = 0.5,
    min_occurrences: int = 3,
    terminal_types: TerminalTypes = None,
    **filters: Unpack[Filters],
) -> Query:
    """The query behind :func:`unhandled_events`."""
    base, params = scoped(**filters)
    params |= {
        "threshold": threshold,
        "min_n": min_occurrences,
        "terminal_types": terminal_types,
        "sub_types": [r["type"] for r in _subscriptions(subscriptions)] or None,
        "sub_handlers": [r["handler"] for r in _subscriptions(subscriptions)] or None,
    }
    expected = """
        declared AS (
            SELECT unnest($sub_types::VARCHAR[]) AS type, unnest($sub_handlers::VARCHAR[]) AS handler
        ),
        type_stats AS (
            SELECT sys, type, count(*) AS n, avg(is_handled::INT) AS share FROM node
            WHERE kind = 'event' GROUP BY ALL
        ),
        expected AS (
            SELECT s.sys, d.type, d.why FROM (SELECT DISTINCT sys FROM uev) s, (
                SELECT type, 'declared: ' || string_agg(DISTINCT handler, ', ' ORDER BY handler)
                             || ' subscribe to ' || type AS why
                FROM declared GROUP BY type) d
            UNION ALL
            SELECT sys, type, 'handled in ' || round(100 * share)::INT || '% of ' || n || ' '
                              || type || ' events' || CASE WHEN sys <> '' THEN ' of ' || sys ELSE '' END
            FROM type_stats ts
            WHERE n >= $min_n AND share >= $threshold AND type NOT IN (SELECT type FROM declared)
              AND NOT EXISTS (SELECT 1 FROM terminal_type tt WHERE tt.sys = ts.sys AND tt.type = ts.type)
        ),
        -- messages (producer-side spans); a message sent in stages (created, then published:
        -- a later stage reacts to the earlier) has the first stage's sender and destination
        message AS (
            SELECT m.*, CASE WHEN p.kind = 'message' THEN p.source ELSE m.source END AS sender,
                   coalesce(m.target, CASE WHEN p.kind = 'message' THEN p.target END) AS dest
            FROM node m LEFT JOIN uev p ON p.k = m.pk WHERE m.kind = 'message'
        ),
        -- consumed: a span (not another message) reacts to it or runs inside it; carried on:
        -- a later stage of the same message took it further
        carried_on AS (  -- (only the edges from messages: most data has none, or few)
            SELECT DISTINCT pk AS k FROM edge
            WHERE pk IN (SELECT k FROM message) AND (c_kind <> 'message' OR relation = 'causes')
        ),
        consumer AS (
            SELECT DISTINCT m.sys, m.dest, e.c_source AS who
            FROM message m JOIN edge e ON e.pk = m.k WHERE e.c_kind <> 'message'
        )"""
    select = """
        SELECT n.trace_id, n.event_id, n.type, n.source, n.target, n.ts,
               'no event reacts to it; ' || x.why AS reason
        FROM node n JOIN expected x USING (sys, type)
        WHERE n.kind = 'event' AND NOT n.is_handled AND n.timeout_ms IS NULL
          -- where a system has no terminal type, a trace's last event is simply where the
          -- record ends (a chat log's last message): nothing in the trace could react to it
          -- (after = 0: n is its trace's last event; an IN here is a nested loop on Spark)
          AND NOT (n.after = 0
                   AND NOT EXISTS (SELECT 1 FROM terminal_type tt WHERE tt.sys = n.sys))
          AND n.k NOT IN (SELECT k FROM late_response_found)
          AND n.k NOT IN (SELECT k FROM keyed_repeat WHERE is_effect AND n > 1)
        UNION ALL
        SELECT trace_id, event_id, type, source, target, ts,
               'no consumer processed this message' || coalesce(' (to ' || dest || ')', '')
        FROM message m
        WHERE k NOT IN (SELECT k FROM carried_on)
          -- only where the data shows the system's consumers at work: a consumer that is not
          -- traced leaves no span, and silence there says nothing
          AND EXISTS (SELECT 1 FROM consumer c WHERE c.sys = m.sys)
          -- a destination that only the sender itself consumes: a runtime does not deliver a
          -- publish back to its sender (AutoGen's group chat manager and its output topic)
          AND NOT (EXISTS (SELECT 1 FROM consumer c WHERE c.sys = m.sys AND c.dest = m.dest)
                   AND NOT EXISTS (SELECT 1 FROM consumer c WHERE c.sys = m.sys
                                   AND c.dest = m.dest AND c.who IS DISTINCT FROM m.sender))
        ORDER BY trace_id, ts, event_id
    """
    ctes = [base, terminal_types_sql(terminal_types), LATE_RESPONSE_SQL, KEYED_SQL, expected]
    return Query(ctes, select, params, UNHANDLED_COLUMNS, terminal_frames(terminal_types))


def unhandled_events(
    con: duckdb.DuckDBPyConnection, *,
    subscriptions: dict[str, str | list[str]] | pd.DataFrame | None = None,
    threshold: float = 0.5, min_occurrences: int = 3, terminal_types: list[str] | None = None,
    **filters: Unpack[Filters],
) -> pd.DataFrame:  # fmt: skip
    """Events that nothing reacted to although their type is expected to be handled.

    An event is *handled* when another event names it as its parent (in its trace, or across
    traces through a link). A type is *expected to be handled* when declared in
    ``subscriptions`` (event type -> handler or handlers, or a DataFrame with ``type`` and
    ``handler`` columns); without a declaration, when the data shows it handled in at least
    ``threshold`` of its ``min_occurrences`` or more occurrences (default: half of at least 3).
    Sink and terminal types are never handled in the data, so they are not expected to be.

    Reported elsewhere, not here: events that declare a timeout (``attrs.timeoutms``: a request
    without a response is a hang), responses that came after their requester gave up (late) and
    the extra effects of an idempotency violation (duplicates).

    Args:
        con: the connection.
        subscriptions: declared handlers per event type; declared types use the declaration,
            other types the data.
        threshold: the handled share from which a type is expected to be handled.
        min_occurrences: the fewest events of a type for the data to decide.
        terminal_types: event types that end a trace (never expected to be handled).
        **filters: ``trace_id``, ``system``, ``start``, ``end``.

    Returns:
        Columns ``trace_id``, ``event_id``, ``type``, ``source``, ``target``, ``ts``,
        ``reason`` (why it counts as unhandled).
    """
    return run(
        con,
        unhandled_events_query(
            subscriptions=subscriptions,
            threshold=threshold,
            min_occurrences=min_occurrences,
            terminal_types=known_terminal_types(con, terminal_types, **filters),
            **filters,
        ),
    )


def _at(as_of: datetime | str | None) -> str | None:
    return as_of.isoformat() if isinstance(as_of, datetime) else as_of


# When each system was last observed: ``as_of`` if given, else the latest event of that system
# (a hang in one system is not measured against another system's later data).
OBSERVED_SQL = """observed AS (
    SELECT sys, coalesce($as_of::TIMESTAMPTZ, max(ts)) AS at FROM _toolkit_uev GROUP BY sys)"""

# Traces that may still be running at ``observed``: activity (an event, a span's start or end)
# less than ``grace`` seconds before it and no ended root span.
OPEN_SQL = """open_trace AS (
    SELECT u.trace_id, nullif(min(u.sys), '') AS system, sum(u.records) AS events,
           min(u.ts) AS first_ts, max(coalesce(u.end_ts, u.ts)) AS last_ts,
           (epoch_us(min(o.at)) - epoch_us(max(coalesce(u.end_ts, u.ts)))) / 1e6 AS idle_s,
           bool_or(u.kind IN ('span', 'message') AND u.parent_span_id IS NULL) AS has_root,
           bool_or(u.kind IN ('span', 'message')) AS has_spans
    FROM uev u JOIN observed o ON o.sys = u.sys
    GROUP BY u.trace_id
    HAVING NOT bool_or(u.kind IN ('span', 'message') AND u.parent_span_id IS NULL
                       AND u.end_ts IS NOT NULL)
       AND (epoch_us(min(o.at)) - epoch_us(max(coalesce(u.end_ts, u.ts)))) / 1e6 < $grace)"""


def live_defaults(
    con: duckdb.DuckDBPyConnection, as_of: datetime | str | None, grace: float | None
) -> tuple[datetime | str | None, float]:
    """``as_of`` and ``grace`` as the analyses read them: on a connection that a receiver is
    filling (``toolkit.receive``), now and 120 s; otherwise the data's end and 0."""
    live = is_live(con)
    if as_of is None and live:
        as_of = datetime.now(UTC)
    return as_of, (120.0 if live else 0.0) if grace is None else grace


# An answer: a reaction from someone other than the requester (an edge carries both sources).
ANSWER = "relation = 'causes' AND c_source IS DISTINCT FROM p_source"

# The types whose events are answered at least half of the time (of 3 or more).
USUALLY_ANSWERED_SQL = f"""usually_answered AS (
    SELECT u.type FROM (SELECT type, count(*) AS n FROM uev GROUP BY type) u
    LEFT JOIN (SELECT p_type, count(DISTINCT pk) AS n FROM pedge WHERE {ANSWER} GROUP BY p_type) a
        ON a.p_type = u.type
    WHERE coalesce(a.n, 0) * 2 >= u.n AND u.n >= 3)"""


def hangs_query(
    *,
    timeout: float | None = None,
    as_of: datetime | str | None = None,
    grace: float = 0.0,
    terminal_types: TerminalTypes = None,
    **filters: Unpack[Filters],
) -> Query:
    """The query behind :func:`hangs`."""
    base, params = scoped(**filters)
    params |= {
        "timeout_s": timeout,
        "terminal_types": terminal_types,
        "as_of": _at(as_of),
        "grace": grace,
    }
    ctes = [
        base, terminal_types_sql(terminal_types), OBSERVED_SQL,
        *([OPEN_SQL] if grace > 0 else []),  # with grace 0 no trace is open
        # only requests without a timeout of their own need the types usually answered
        *([USUALLY_ANSWERED_SQL] if timeout is not None else []),
        f"""request AS (
            SELECT *, coalesce(timeout_ms / 1e3, $timeout_s) AS limit_s FROM uev
            WHERE timeout_ms IS NOT NULL
                  {"OR type IN (SELECT type FROM usually_answered)" if timeout is not None else ""})""",
    ]  # fmt: skip
    # an open trace has not missed its terminal event yet
    still_open = "AND l.trace_id NOT IN (SELECT trace_id FROM open_trace)" if grace > 0 else ""
    waited = "(epoch_us(o.at) - epoch_us({t})) / 1e6"
    select = f"""
        SELECT r.trace_id, r.event_id, 'hang' AS kind, r.type, r.source, r.target, r.ts,
               {waited.format(t="r.ts")} AS waited_s,
               'no response; waited ' || round({waited.format(t="r.ts")}, 3)::DOUBLE::VARCHAR
                   || ' s, timeout ' || r.limit_s::DOUBLE::VARCHAR || ' s' AS detail
        FROM request r JOIN observed o ON o.sys = r.sys
        WHERE NOT EXISTS (SELECT 1 FROM pedge a WHERE a.pk = r.k AND {ANSWER})
          AND {waited.format(t="r.ts")} > r.limit_s
        UNION ALL
        SELECT l.trace_id, l.event_id, 'missing_terminal', l.type, l.source, l.target, l.ts,
               {waited.format(t="l.ts")},
               'never reached ' || (SELECT string_agg(type, ' / ' ORDER BY type) FROM terminal_type tt
                                    WHERE tt.sys = l.sys) || '; the last event is ' || l.type
        FROM last_event l JOIN observed o ON o.sys = l.sys
        WHERE EXISTS (SELECT 1 FROM terminal_type tt WHERE tt.sys = l.sys) AND l.trace_id NOT IN (
            SELECT trace_id FROM uev u SEMI JOIN terminal_type tt ON tt.sys = u.sys AND tt.type = u.type)
            {still_open}
        ORDER BY trace_id, ts, event_id, kind
    """
    return Query(ctes, select, params, HANG_COLUMNS, terminal_frames(terminal_types))


def hangs(
    con: duckdb.DuckDBPyConnection, *, timeout: float | None = None,
    as_of: datetime | str | None = None, grace: float | None = None,
    terminal_types: list[str] | None = None, **filters: Unpack[Filters],
) -> pd.DataFrame:  # fmt: skip
    """Requests that got no response, and traces that never reached a terminal event.

    * ``hang``: a request (an event declaring ``attrs.timeoutms``, or with ``timeout`` given,
      any event whose type is usually answered by someone else) that no one other than its
      requester ever answered, and that had waited longer than its timeout by ``as_of``.
    * ``missing_terminal``: a trace without an event of a terminal type (declared in
      ``terminal_types`` or learnt: see ``terminal_types_sql``), unless it is still open (see
      :func:`open_traces`); the row points at the trace's last recorded event (latest ``ts``,
      then source order). Data without terminal types yields no such rows.

    Waits are measured to ``as_of``, or, without it, to the latest event of the trace's own
    system: a run is never judged against another system's later data.

    Args:
        con: the connection.
        timeout: seconds a request may wait, for requests that declare no timeout; ``None``
            checks only requests that declare one.
        as_of: the time of observation; ``None`` is now on a connection a receiver is
            filling (live data), else the latest event of each system (files).
        grace: seconds of quiet before a trace without an ended root span counts as over;
            ``None`` is 120 on a live connection, else 0 (every trace is over).
        terminal_types: event types that end a trace; ``None`` learns them.
        **filters: ``trace_id``, ``system``, ``start``, ``end``.

    Returns:
        Columns ``trace_id``, ``event_id``, ``kind`` (``hang`` or ``missing_terminal``),
        ``type``, ``source``, ``target``, ``ts``, ``waited_s`` (seconds from the event to
        the time of observation), ``detail``.
    """
    as_of, grace = live_defaults(con, as_of, grace)
    known = known_terminal_types(con, terminal_types, **filters)
    query = hangs_query(timeout=timeout, as_of=as_of, grace=grace, terminal_types=known, **filters)
    return run(con, query)


OPEN_COLUMNS = ["trace_id", "system", "events", "first_ts", "last_ts", "idle_s", "has_root", "why"]


def open_traces_query(
    *, as_of: datetime | str | None = None, grace: float = 120.0, **filters: Unpack[Filters]
) -> Query:
    """The query behind :func:`open_traces`."""
    base, params = scoped(**filters)
    params |= {"as_of": _at(as_of), "grace": grace}
    select = """
        SELECT trace_id, system, events, first_ts, last_ts, idle_s, has_root,
               CASE WHEN has_root THEN 'its root span has not ended'
                    WHEN has_spans THEN 'its root span has not arrived'
                    ELSE 'active within the grace period' END AS why
        FROM open_trace ORDER BY last_ts DESC, trace_id"""
    return Query([base, OBSERVED_SQL, OPEN_SQL], select, params, OPEN_COLUMNS)


def open_traces(
    con: duckdb.DuckDBPyConnection, *, as_of: datetime | str | None = None,
    grace: float = 120.0, **filters: Unpack[Filters],
) -> pd.DataFrame:  # fmt: skip
    """Traces that may still be running at ``as_of``: findings on them may be premature.

    A trace is open when something happened in it (an event, or a span start or end) less than
    ``grace`` seconds before ``as_of``, and it has no ended root span (a span without an
    enclosing span, with an end time): a span tree is complete when its root ends, an event
    log when it goes quiet. Exporters send spans when they end, so a long model call shows
    nothing until it returns: choose ``grace`` above the longest step.

    Args:
        con: the connection.
        as_of: the time of observation; ``None`` is now (live data). For files, pass the
            data's end.
        grace: seconds of silence after which a trace without an ended root counts as over.
        **filters: ``trace_id``, ``system``, ``start``, ``end``.

    Returns:
        Columns ``trace_id``, ``system``, ``events``, ``first_ts``, ``last_ts`` (its latest
        start or end), ``idle_s`` (seconds from ``last_ts`` to ``as_of``), ``has_root`` (a
        root span has arrived, not yet ended), ``why``; the most recently active first.
    """
    at = datetime.now(UTC) if as_of is None else as_of
    return run(con, open_traces_query(as_of=at, grace=grace, **filters))


# A handoff between agents is routine; one to a human target is an escalation (human_targets).
DEFAULT_ESCALATION_TYPES = r"escalat|human"
DEFAULT_HUMAN_TARGETS = ("human", "operator", "supervisor", "reviewer")


def escalations_query(
    *,
    type_pattern: str = DEFAULT_ESCALATION_TYPES,
    human_targets: tuple[str, ...] = DEFAULT_HUMAN_TARGETS,
    **filters: Unpack[Filters],
) -> Query:
    """The query behind :func:`escalations`."""
    base, params = scoped(**filters)
    params |= {"pattern": type_pattern, "humans": list(human_targets)}
    # The pattern and the names are matched against each distinct type and name once, not
    # against every event (a few dozen values, millions of events): on a group's min(), which
    # an engine cannot push below the grouping. (The pattern again on the few events addressed
    # to a human: a CTE read twice is computed apart on Spark.)
    candidates = """escalation_type AS (
        SELECT min(type) AS type FROM uev GROUP BY type
        HAVING regexp_matches(min(type), $pattern, 'i')
    ),
    human_target AS (
        SELECT min(target) AS target FROM uev GROUP BY target
        HAVING list_contains($humans, lower(min(target)))
    ),
    human_source AS (
        SELECT min(coalesce(source, '')) AS who FROM uev GROUP BY source
        HAVING list_contains($humans, lower(min(coalesce(source, ''))))
    ),
    escalating AS (  -- two semi joins (an OR of the two would read every event)
        SELECT * FROM (
            SELECT * FROM uev WHERE type IN (SELECT type FROM escalation_type)
            UNION ALL
            SELECT * FROM uev WHERE target IN (SELECT target FROM human_target)
                AND NOT coalesce(regexp_matches(type, $pattern, 'i'), false))
        WHERE coalesce(source, '') NOT IN (SELECT who FROM human_source)
    ),
    candidate AS (
        SELECT u.*, p.status AS parent_status,
               (SELECT min(content) FROM ev WHERE ev.trace_id = u.trace_id
                AND ev.event_id = u.event_id) AS content
        FROM escalating u LEFT JOIN uev p ON p.trace_id = u.trace_id AND p.event_id = u.parent_id
        WHERE NOT coalesce(regexp_matches(p.type, $pattern, 'i')
                           OR list_contains($humans, lower(p.target)), false)
    )"""
    select = """
        SELECT c.trace_id, c.event_id, c.type, c.source, c.target, c.ts,
               coalesce(c.reason,
                   CASE WHEN c.status = 'timeout' OR c.parent_status = 'timeout' THEN 'timeout'
                        WHEN regexp_matches(c.content, 'confiden|unsure|not sure|uncertain', 'i')
                            THEN 'low_confidence'
                        WHEN regexp_matches(c.content, 'contradict|conflict|inconsistent', 'i')
                            THEN 'contradiction'
                        ELSE 'unknown' END) AS trigger,
               arg_min(e.c_id, e.c_ts) AS resolved_by, min(e.c_ts) AS resolved_ts,
               (epoch_us(min(e.c_ts)) - epoch_us(c.ts)) / 1e6 AS time_to_resolve_s
        FROM candidate c LEFT JOIN cause e ON e.pk = c.k  -- its first reaction
        GROUP BY c.k, c.trace_id, c.event_id, c.type, c.source, c.target, c.ts, c.reason,
                 c.status, c.parent_status, c.content
        ORDER BY c.trace_id, c.ts, c.event_id
    """
    return Query([base, candidates], select, params, ESCALATION_COLUMNS)


def escalations(
    con: duckdb.DuckDBPyConnection, *, type_pattern: str = DEFAULT_ESCALATION_TYPES,
    human_targets: tuple[str, ...] = DEFAULT_HUMAN_TARGETS, **filters: Unpack[Filters],
) -> pd.DataFrame:  # fmt: skip
    """Handoffs to a human: what triggered them and how long until resolved.

    An escalation is an event whose type matches ``type_pattern`` (case-insensitive regular
    expression) or whose target is one of ``human_targets``, and that is not itself a reply
    from the human side (an event reacting to an escalation, or sent by a human target).

    Trigger: the event's ``attrs.reason`` when present; else ``timeout`` when it or its parent
    has status timeout; else ``low_confidence`` / ``contradiction`` from cues in its content
    ("confidence", "unsure", "not sure" / "contradict", "conflict"); else ``unknown``.
    Resolution: the first event reacting to the escalation.

    Returns:
        Columns ``trace_id``, ``event_id``, ``type``, ``source``, ``target``, ``ts``,
        ``trigger``, ``resolved_by`` (event id or NULL), ``resolved_ts``,
        ``time_to_resolve_s``.
    """
    return run(
        con, escalations_query(type_pattern=type_pattern, human_targets=human_targets, **filters)
    )
