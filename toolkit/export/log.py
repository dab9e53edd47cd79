"""The event log every export writes: one row per distinct event in scope, with its case and
activity, read in the same order by the PM4Py frame, XES and OCEL.

A redelivered event (the same ``event_id`` recorded twice in a trace) is one event here: its
first record (earliest ``ts``, then ``seq``, then ``origin``). The duplicates analysis is where
redeliveries are counted; a process-mining tool would count them as two executions.

Events without any time are left out (PM4Py refuses an empty timestamp, OCEL requires one).
Time follows PM4Py's convention for logs with durations: ``time:timestamp`` is when the event
completed (``end_ts``, else ``ts``) and ``start_timestamp`` when it started (``ts``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import duckdb
import pyarrow as pa

from toolkit.db import query, tracer_of

Case = Literal["trace", "session", "agent"]
Activity = Literal["type", "name", "source_type"]

# The case notions: one run of the system (a trace, or the traces of one session), or one agent
# within one trace (what that agent did in that run). An event without a source is agent '?'.
CASES: dict[str, str] = {
    "trace": "trace_id",
    "session": "coalesce(session_id, trace_id)",
    "agent": "trace_id || '|' || coalesce(source, '?')",
}
# The activity: the event type, the record's own name (a span's name) or the agent and the type
# (``flow_edges(by="source_type")``'s nodes).
ACTIVITIES: dict[str, str] = {
    "type": "type",
    "name": "coalesce(name, type)",
    "source_type": "coalesce(source, '?') || ':' || type",
}


def _choice(what: str, value: str, options: dict[str, str]) -> str:
    if value not in options:
        raise ValueError(f"{what} must be one of {', '.join(options)}, not {value!r}")
    return options[value]


def _text(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def scope_sql(
    *, trace_id: str | None = None, system: str | None = None,
    start: datetime | str | None = None, end: datetime | str | None = None,
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """The condition on ``e.trace_id`` for the keyword filters, and its parameters.

    The filters mean what they mean in every analysis (``toolkit.analyze.scope.Filters``):
    one trace, the traces of one system, traces whose first event lies in ``[start, end)``.
    """
    where: list[str] = ["true"]
    params: dict[str, Any] = {}
    if trace_id is not None:
        where.append("e.trace_id = $trace_id")
        params["trace_id"] = trace_id
    if system is not None:
        where.append("e.trace_id IN (SELECT trace_id FROM traces WHERE system = $system)")
        params["system"] = system
    bounds = []
    if start is not None:
        bounds.append("min(ts) >= $start::TIMESTAMPTZ")
        params["start"] = _text(start)
    if end is not None:
        bounds.append("min(ts) < $end::TIMESTAMPTZ")
        params["end"] = _text(end)
    if bounds:
        where.append(
            "e.trace_id IN (SELECT trace_id FROM events GROUP BY trace_id HAVING "
            + " AND ".join(bounds) + ")"
        )  # fmt: skip
    return " AND ".join(where), params


def events_sql(
    *, case: Case = "trace", activity: Activity = "type", **filters: Any
) -> tuple[str, dict[str, Any]]:
    """SQL for the distinct events in scope that have a time, sorted by case, start,
    completion, ``seq``, id (PM4Py's order: its directly-follows discovery sorts by case,
    ``start_timestamp``, ``time:timestamp``, stably) (an event without ``ts`` and ``end_ts`` cannot be placed in a process:
    PM4Py refuses an empty timestamp and OCEL requires one; :func:`count_events` says how
    many were left out).

    Columns: ``case_id``, ``activity``, ``trace_id``, ``event_id``, ``session_id``, ``system``,
    ``task``, ``outcome``, ``kind``, ``type``, ``name``, ``source``, ``target``, ``ts``,
    ``end_ts``, ``time`` (``end_ts`` else ``ts``), ``status``, ``idempotency_key``,
    ``correlation_id``, ``parent_id``, ``parent_span_id``, ``content``, ``seq``.
    """
    case_sql = _choice("case", case, CASES)
    activity_sql = _choice("activity", activity, ACTIVITIES)
    cond, params = scope_sql(**filters)
    sql = f"""
        WITH ev AS (
            SELECT e.trace_id, e.event_id, t.session_id, t.system, t.task, t.outcome, e.kind,
                   e.type, e.name, e.source, e.target, e.ts, e.end_ts, e.status,
                   e.idempotency_key, e.correlation_id, e.parent_id, e.parent_span_id,
                   e.content, e.seq
            FROM events e LEFT JOIN traces t USING (trace_id)
            WHERE {cond}
            QUALIFY row_number() OVER (PARTITION BY e.trace_id, e.event_id
                                       ORDER BY e.ts NULLS LAST, e.seq, e.origin) = 1
        )
        SELECT {case_sql} AS case_id, {activity_sql} AS activity, * REPLACE (
                   coalesce(ts, end_ts) AS ts),
               coalesce(end_ts, ts) AS time
        FROM ev WHERE coalesce(end_ts, ts) IS NOT NULL
        ORDER BY case_id, ts, time, seq, event_id"""
    return sql, params


def count_events(con: duckdb.DuckDBPyConnection, **filters: Any) -> tuple[int, int]:
    """How many distinct events are in scope, and how many of them the exports write (those
    with a time)."""
    cond, params = scope_sql(**filters)
    rows = query(con, f"""
        SELECT count(*) AS events, count(coalesce(end_ts, ts)) AS timed FROM (
            SELECT e.ts, e.end_ts FROM events e WHERE {cond}
            QUALIFY row_number() OVER (PARTITION BY e.trace_id, e.event_id
                                       ORDER BY e.ts NULLS LAST, e.seq, e.origin) = 1)""",
        **params)  # fmt: skip
    return int(rows["events"].iloc[0]), int(rows["timed"].iloc[0])


def stream(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], *, rows: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """Run ``sql`` and yield its result in Arrow batches of about ``rows`` rows.

    The one place the exports read a result incrementally (``toolkit.db.query`` returns a whole
    DataFrame): memory stays bounded by a batch however large the log. The connection's tracer
    (``toolkit.trace_sql``) sees the statement once the result has been read to the end.
    """
    started = time.perf_counter()
    reader = con.sql(sql, params=params).to_arrow_reader(rows)
    yield from reader
    traced = tracer_of(con)
    if traced is not None:
        traced(sql, params, time.perf_counter() - started)


# Characters XML 1.0 cannot carry at all, not even as character references: C0 controls other
# than tab, newline and carriage return, lone surrogates, U+FFFE and U+FFFF. Trace text is LLM
# output and may hold any of them; each becomes U+FFFD, so the file stays well-formed.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def xml_safe(text: str) -> str:
    """``text`` with every character XML 1.0 forbids replaced by U+FFFD (escaping is the
    writer's job: this only removes what no escaping can express)."""
    return _NOT_XML.sub("\ufffd", text)


def json_safe(text: str) -> str:
    """``text`` with lone surrogates (which UTF-8 cannot encode) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)
