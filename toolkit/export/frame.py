"""The event log as a pandas DataFrame in PM4Py's column convention (without importing PM4Py)."""

from __future__ import annotations

from typing import Unpack

import duckdb
import pandas as pd

from toolkit.analyze.scope import Filters
from toolkit.db import query
from toolkit.export.log import Activity, Case, events_sql

PM4PY_COLUMNS = [
    "case:concept:name", "concept:name", "time:timestamp", "start_timestamp", "org:resource",
    "lifecycle:transition", "trace_id", "event_id", "kind", "type", "name", "target", "status",
    "idempotency_key", "correlation_id", "parent_id", "parent_span_id", "session_id", "system",
    "seq",
]  # fmt: skip


def to_pm4py(
    con: duckdb.DuckDBPyConnection, *, case: Case = "trace", activity: Activity = "type",
    **filters: Unpack[Filters],
) -> pd.DataFrame:  # fmt: skip
    """The events as a PM4Py event log: a DataFrame PM4Py's functions take as it is.

    One row per distinct event (a redelivery counts once), sorted by case, then start, then
    completion, then ``seq``: the order in which PM4Py's discovery sorts (stably) a frame with
    a ``start_timestamp`` column, so the directly-follows pairs PM4Py counts are the frame's
    consecutive rows (and a span starts before the spans inside it). ``time:timestamp`` is when the event completed and ``start_timestamp``
    when it started (PM4Py's convention for interval logs: a span's end and start; equal for a
    point event). Events with neither ``ts`` nor ``end_ts`` are left out: PM4Py refuses an
    empty timestamp (``toolkit.export.log.count_events`` counts them).

    Args:
        con: the connection.
        case: the case notion: ``"trace"`` (one trace), ``"session"`` (the traces of one run:
            ``traces.session_id``, else the trace), ``"agent"`` (one agent within one trace:
            ``"<trace_id>|<agent>"``; an event without a source belongs to agent ``?``).
        activity: ``"type"``, ``"name"`` (a span's own name, else the type) or
            ``"source_type"`` (``"<agent>:<type>"``, the nodes of
            ``flow_edges(by="source_type")``).
        **filters: ``trace_id``, ``system``, ``start``, ``end`` (as in every analysis).

    Returns:
        Columns ``case:concept:name``, ``concept:name`` (the activity), ``time:timestamp``,
        ``start_timestamp`` (UTC), ``org:resource`` (the agent: ``source``),
        ``lifecycle:transition`` (``complete``), then the event's own ``trace_id``,
        ``event_id``, ``kind``, ``type``, ``name``, ``target``, ``status``,
        ``idempotency_key``, ``correlation_id``, ``parent_id``, ``parent_span_id``,
        ``session_id``, ``system``, ``seq``.
    """
    sql, params = events_sql(case=case, activity=activity, **filters)
    select = f"""
        SELECT case_id AS "case:concept:name", activity AS "concept:name",
               time AS "time:timestamp", ts AS "start_timestamp", source AS "org:resource",
               'complete' AS "lifecycle:transition", trace_id, event_id, kind, type, name,
               target, status, idempotency_key, correlation_id, parent_id, parent_span_id,
               session_id, system, seq
        FROM ({sql})"""
    # The subquery's ORDER BY is not guaranteed to survive the outer SELECT: sort again.
    select += ' ORDER BY "case:concept:name", start_timestamp, "time:timestamp", seq, event_id'
    df = query(con, select, **params)
    return df.reset_index(drop=True)
