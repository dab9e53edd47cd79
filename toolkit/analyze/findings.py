"""All event-flow findings in one long table, and counts of them per trace or system."""

from __future__ import annotations

from typing import Literal, Unpack

import duckdb
import pandas as pd

from toolkit.analyze.delivery import duplicates_query, late_events_query
from toolkit.analyze.failures import errors_query
from toolkit.analyze.flow import (
    escalations_query,
    hangs_query,
    live_defaults,
    unhandled_events_query,
)
from toolkit.analyze.scope import Filters, Query, choice, known_terminal_types, run, scoped

# The vocabulary of the simulator's truth.csv for event-flow findings, with a severity each.
SEVERITY = {
    "unhandled": "error",
    "error": "error",  # a warning when the run recovered
    "hang": "error",
    "missing_terminal": "error",
    "idempotency_violation": "error",
    "duplicate": "warning",
    "late": "warning",
    "out_of_order": "warning",
    "escalation": "info",
}
FINDING_KINDS = tuple(SEVERITY)
FINDING_COLUMNS = ["trace_id", "event_id", "kind", "severity", "detail"]


def findings(
    con: duckdb.DuckDBPyConnection, *, terminal_types: list[str] | None = None,
    **filters: Unpack[Filters],
) -> pd.DataFrame:  # fmt: skip
    """Every finding of the event-flow analyses, one row per (trace, event, kind).

    Runs :func:`unhandled_events`, :func:`duplicates`, :func:`late_events`, :func:`hangs` and
    :func:`escalations` and :func:`errors` with their defaults (``terminal_types`` passed on)
    and stacks their rows. A recovered error is a warning. On a connection a receiver is
    filling, hangs are judged at the present moment and traces still open are left out (see
    :func:`hangs`).

    Returns:
        Columns ``trace_id``, ``event_id``, ``kind`` (one of ``FINDING_KINDS``, the words of
        the simulator's ``truth.csv``), ``severity`` (error, warning, info), ``detail``.
    """
    as_of, grace = live_defaults(con, None, None)
    known = known_terminal_types(con, terminal_types, **filters)  # learnt once for the three
    parts = [
        (unhandled_events_query(terminal_types=known, **filters), "'unhandled'", "reason"),
        (duplicates_query(**filters), "kind", "detail"),
        (late_events_query(terminal_types=known, **filters), "kind", "detail"),
        (hangs_query(terminal_types=known, as_of=as_of, grace=grace, **filters),
         "kind", "detail"),
        (escalations_query(**filters), "'escalation'",
         "'handed to ' || coalesce(target, '?') || ' (' || trigger || ')'"),
        (errors_query(**filters), "'error'", "detail"),
    ]  # fmt: skip
    # One statement per detector over the shared derived tables: at 10M events, one statement
    # for all five held more state at once and ran slower than five.
    severity = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in SEVERITY.items())
    rows = [
        run(con, Query(q.ctes, f"""
            SELECT trace_id, event_id, {kind} AS kind,
                   CASE WHEN {kind} = 'error' AND {detail} LIKE 'recovered%' THEN 'warning'
                        ELSE CASE {kind} {severity} END END AS severity,
                   {detail} AS detail
            FROM ({q.select})""", q.params, FINDING_COLUMNS, q.frames))
        for q, kind, detail in parts
    ]  # fmt: skip
    found = pd.concat(rows, ignore_index=True).drop_duplicates(["trace_id", "event_id", "kind"])
    return found.sort_values(["trace_id", "event_id", "kind"], ignore_index=True)


def summary(
    con: duckdb.DuckDBPyConnection, *, by: Literal["system", "trace", "session"] = "system",
    terminal_types: list[str] | None = None, **filters: Unpack[Filters],
) -> pd.DataFrame:  # fmt: skip
    """Counts of each finding kind per system, per trace or per session (a run over several
    traces: ``traces.session_id``).

    Returns:
        Columns ``system`` (or ``trace_id`` / ``session_id``, and ``system``, when ``by`` is
        ``"trace"`` / ``"session"``), ``traces``,
        ``events``, ``findings``, then one column per kind in ``FINDING_KINDS``. Every trace in
        scope is counted, with zeros where nothing was found.
    """
    found = findings(con, terminal_types=terminal_types, **filters)
    base, params = scoped(**filters)
    keys = choice("by", by, {"system": "system", "trace": "trace_id,system",
                             "session": "session_id,system"}).split(",")  # fmt: skip
    kinds = ", ".join(
        f"coalesce(sum(f.n) FILTER (f.kind = '{k}'), 0)::BIGINT AS {k}" for k in FINDING_KINDS
    )
    ctes = [base, """per_trace AS (
        SELECT trace_id, coalesce(min(t.system), '(unknown)') AS system, count(*) AS events,
               coalesce(min(t.session_id), trace_id) AS session_id
        FROM ev LEFT JOIN traces t USING (trace_id) GROUP BY trace_id)""",
            "found AS (SELECT trace_id, kind, count(*) AS n FROM _found GROUP BY ALL)",
            """counted AS (
        SELECT pt.trace_id, pt.session_id, pt.system, pt.events, coalesce(sum(f.n), 0)::BIGINT AS findings, """ + kinds + """
        FROM per_trace pt LEFT JOIN found f USING (trace_id) GROUP BY ALL)"""]  # fmt: skip
    sums = ", ".join(f"sum({k})::BIGINT AS {k}" for k in ("events", "findings", *FINDING_KINDS))
    select = f"""
        SELECT {", ".join(keys)}, count(*) AS traces, {sums} FROM counted
        GROUP BY {", ".join(keys)} ORDER BY findings DESC, {", ".join(keys)}
    """
    columns = [*keys, "traces", "events", "findings", *FINDING_KINDS]
    return run(con, Query(ctes, select, params, columns, frames={"_found": found}))


def with_event_context(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (with ``trace_id``, ``event_id``: findings, say) plus the trace's ``system``
    and the event's ``ts`` (its first record); ``rows`` itself is not changed.

    Returns:
        The columns of ``rows`` (without any ``system``/``ts`` it had) plus ``system``
        (``(unknown)`` for a trace without one) and ``ts``.
    """
    return run(con, with_event_context_query(rows))


def with_event_context_query(rows: pd.DataFrame) -> Query:
    """The query behind :func:`with_event_context`."""
    given = rows.drop(columns=["system", "ts"], errors="ignore")
    # Only the events named by a row are grouped: the whole events table at 2M events is not.
    select = """
        SELECT r.*, coalesce(t.system, '(unknown)') AS system, e.ts FROM _rows r
        LEFT JOIN traces t USING (trace_id)
        LEFT JOIN (SELECT trace_id, event_id, min(ts) AS ts FROM events
                   SEMI JOIN _rows USING (trace_id, event_id) GROUP BY ALL) e
            USING (trace_id, event_id)"""
    return Query([], select, {}, [*given.columns, "system", "ts"], frames={"_rows": given})
