"""Runs and traces: one row per trace, and per session (the traces one run spread over)."""

from __future__ import annotations

from typing import Unpack

import duckdb
import pandas as pd

from toolkit.analyze.scope import Filters, Query, run, scoped

TRACE_COLUMNS = ["trace_id", "session_id", "system", "outcome", "task", "start", "end",
                 "duration_s", "events", "agents"]  # fmt: skip
SESSION_COLUMNS = ["session_id", "system", "traces", "events", "agents", "start", "end",
                   "duration_s", "outcome", "task"]  # fmt: skip


def sessions(con: duckdb.DuckDBPyConnection, **filters: Unpack[Filters]) -> pd.DataFrame:
    """One row per run: the traces sharing a session (``traces.session_id``; a trace without
    one is a run of its own).

    A run's ``outcome`` is ``failure`` when its first trace (the one that started it) or its
    last trace to end failed, else the last trace's outcome that is known: a run whose tool
    failed in a middle trace and went on to finish is a ``success``. ``system`` and ``task``
    are the first trace's.

    Returns:
        Columns ``session_id``, ``system``, ``traces``, ``events``, ``agents`` (distinct
        sources), ``start``, ``end``, ``duration_s``, ``outcome``, ``task``.
    """
    return run(con, sessions_query(**filters))


def sessions_query(**filters: Unpack[Filters]) -> Query:
    """The query behind :func:`sessions`."""
    base, params = scoped(**filters)
    per_trace = """per_trace AS (
        SELECT u.session, u.trace_id, count(*) AS events, min(u.ts) AS start,
               max(coalesce(u.end_ts, u.ts)) AS "end", min(t.system) AS system,
               min(t.outcome) AS outcome, min(t.task) AS task
        FROM uev u LEFT JOIN traces t USING (trace_id) GROUP BY u.session, u.trace_id)"""
    select = """
        SELECT p.session AS session_id, arg_min(system, start) AS system,
               count(*) AS traces, sum(events)::BIGINT AS events, min(a.agents) AS agents,
               min(start) AS start, max("end") AS "end",
               (epoch_us(max("end")) - epoch_us(min(start))) / 1e6 AS duration_s,
               CASE WHEN arg_min(outcome, start) = 'failure' OR arg_max(outcome, "end") = 'failure'
                    THEN 'failure'
                    ELSE arg_max(outcome, "end") FILTER (outcome IS NOT NULL) END AS outcome,
               arg_min(task, start) AS task
        FROM per_trace p LEFT JOIN (
            SELECT session, count(DISTINCT source) AS agents FROM uev GROUP BY session
        ) a USING (session)
        GROUP BY p.session ORDER BY start, session_id
    """
    return Query([base, per_trace], select, params, SESSION_COLUMNS)


def traces(con: duckdb.DuckDBPyConnection, **filters: Unpack[Filters]) -> pd.DataFrame:
    """One row per trace: the trace list of a report or notebook.

    Returns:
        Columns ``trace_id``, ``session_id`` (the trace's own id when it has no session),
        ``system`` (``(unknown)`` when not known), ``outcome``, ``task``, ``start``, ``end``,
        ``duration_s``, ``events`` (distinct events), ``agents`` (distinct sources).
    """
    return run(con, traces_query(**filters))


def traces_query(**filters: Unpack[Filters]) -> Query:
    """The query behind :func:`traces`."""
    base, params = scoped(**filters)
    select = """
        SELECT u.trace_id, min(u.session) AS session_id,
               coalesce(min(t.system), '(unknown)') AS system,
               min(t.outcome) AS outcome, min(t.task) AS task,
               min(u.ts) AS start, max(coalesce(u.end_ts, u.ts)) AS "end",
               (epoch_us(max(coalesce(u.end_ts, u.ts))) - epoch_us(min(u.ts))) / 1e6
                   AS duration_s,
               count(*) AS events, count(DISTINCT u.source) AS agents
        FROM uev u LEFT JOIN traces t USING (trace_id)
        GROUP BY u.trace_id ORDER BY start, u.trace_id
    """
    return Query([base], select, params, TRACE_COLUMNS)
