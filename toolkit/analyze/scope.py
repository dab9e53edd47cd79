"""The shared pieces of the event-flow analyses: filters, handled-ness, terminal types.

Each analysis wraps its query around the scoped events (``ev``), so filters mean the same
everywhere: ``trace_id``, ``system`` and a time range on the trace's first event.

Time spans are written ``epoch_us(b) - epoch_us(a)`` (microseconds, BIGINT), never
``date_diff('microsecond', a, b)``: the same number, but DuckDB computes ``date_diff`` on
``TIMESTAMPTZ`` through the ICU calendar, 0.28 CPU s per million rows against 0.004.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias, TypedDict, Unpack

import duckdb
import pandas as pd

from toolkit.analyze import derived
from toolkit.db import query


class Filters(TypedDict, total=False):
    """The keyword-only filters every analysis takes."""

    trace_id: str | None  # one trace
    system: str | None  # traces of one system (``traces.system``)
    start: datetime | str | None  # traces whose first event is at or after this time
    end: datetime | str | None  # ... and before this time


def prepare_base(con: duckdb.DuckDBPyConnection) -> None:
    """Make sure the analyses' derived tables are current (see :mod:`toolkit.analyze.derived`)."""
    derived.ensure(con)


def scoped(
    *, trace_id: str | None = None, system: str | None = None,
    start: datetime | str | None = None, end: datetime | str | None = None,
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """SQL for the common CTEs and their parameters (run :func:`prepare_base` first).

    Defines ``ev`` (the event records in scope, with ``sys``: the trace's system or ''),
    ``uev`` (one row per distinct event in scope, with ``k``/``pk`` keys, ``records`` counting
    its copies, the attributes the analyses read: ``timeout_ms``, ``parent_trace_id``,
    ``sequence``, ``reason``, ``is_handled``: some event, in any trace, reacts to it, and
    ``after``: how many of its trace's events come after it),
    ``node`` (the same), ``edge`` (child -> parent edges for children in scope, ``relation``
    ``causes`` or ``contains``, with the child's ``c_type``, ``c_source``, ``c_ts`` and the
    parent's ``p_kind``, ``p_type``, ``p_source``, ``p_ts``), ``pedge`` (the edges whose parent
    is recorded and in scope: what a join of ``edge`` to ``uev`` on both ends keeps) and
    ``cause`` (its causation edges: what the event-flow
    detectors read). Each event has a ``kind``: ``span``, ``span_event``, ``message`` or
    ``event``; ``sk`` is the key of its enclosing span.
    ``start`` and ``end`` keep traces whose first event lies in ``[start, end)``.
    """
    # Only the filters given enter the SQL (their values as parameters): a filter on a NULL
    # parameter would still cost a join per event.
    where = ["true"]
    if trace_id is not None:
        where.append("{t} = $trace_id")
    if system is not None:
        where.append("{t} IN (SELECT trace_id FROM traces WHERE system = $system)")
    if start is not None or end is not None:
        bounds = [b for b, v in (("min(ts) >= $start::TIMESTAMPTZ", start),
                                 ("min(ts) < $end::TIMESTAMPTZ", end)) if v is not None]  # fmt: skip
        where.append(
            "{t} IN (SELECT trace_id FROM events GROUP BY trace_id HAVING "
            + " AND ".join(bounds) + ")"
        )  # fmt: skip
    cond = " AND ".join(where)
    # NOT MATERIALIZED: these are views of stored tables that each analysis reads several
    # times; DuckDB would otherwise copy every column of them once per statement
    sql = f"""
        ev AS NOT MATERIALIZED (
            SELECT e.*, coalesce(t.system, '') AS sys
            FROM events e LEFT JOIN traces t USING (trace_id) WHERE {cond.format(t="e.trace_id")}
        ),
        uev AS NOT MATERIALIZED (SELECT * FROM _toolkit_uev WHERE {cond.format(t="trace_id")}),
        node AS NOT MATERIALIZED (SELECT * FROM uev),
        edge AS NOT MATERIALIZED (SELECT * FROM _toolkit_edge WHERE {cond.format(t="c_trace")}),
        pedge AS NOT MATERIALIZED (
            SELECT * FROM edge WHERE p_kind IS NOT NULL AND {cond.format(t="p_trace")}),
        cause AS NOT MATERIALIZED (SELECT * FROM edge WHERE relation = 'causes')"""
    params = {"trace_id": trace_id, "system": system, "start": _text(start), "end": _text(end)}
    params = {k: v for k, v in params.items() if v is not None}
    return sql, params


def _text(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


# Terminal types as the detectors take them: declared (a list, the same for every system), learnt
# already (a DataFrame ``sys``, ``type``: :func:`known_terminal_types`), or ``None``: learnt in
# the statement itself.
TerminalTypes: TypeAlias = list[str] | pd.DataFrame | None


def terminal_types_sql(terminal_types: TerminalTypes) -> str:
    """CTEs ``last_event`` (each trace's last event) and ``terminal_type(sys, type)``.

    Terminal types are declared (the same for every system), or learnt per system from the
    event-log records (kind ``event``; a span tree ends when its root span ends, and spans,
    span events and messages never make a type terminal): a type is terminal when no event ever reacts to it (a sink), it occurs in at least
    two traces, it is the last event (latest ``ts``) of more than half of them, and on average
    fewer than half an event is recorded after it. The last condition keeps a sink that is last
    only because many runs broke off after it (a human's reply, say: in the runs that go on,
    several events follow it) from passing as terminal. A system with no such type (chat logs
    whose last speaker varies, span trees) has none, and the analyses that need a terminal
    event report nothing for it. When most runs never reach their real end, declare the types.

    A DataFrame is the types learnt already (:func:`known_terminal_types`), read from the frame
    ``_terminal_types`` (the query's frames: :func:`terminal_frames`).
    """
    last = "last_event AS (SELECT * FROM uev WHERE after = 0),"
    if isinstance(terminal_types, pd.DataFrame):
        # the casts: an empty frame's columns have no type
        return last + """
    terminal_type AS (
        SELECT CAST(sys AS VARCHAR) AS sys, CAST(type AS VARCHAR) AS type FROM _terminal_types
    )"""  # fmt: skip
    if terminal_types is not None:
        return (
            last
            + """
    terminal_type AS (
        SELECT s.sys, t.type FROM (SELECT DISTINCT sys FROM uev) s,
               (SELECT unnest($terminal_types::VARCHAR[]) AS type) t
    )"""
        )
    # last_in: a trace has one last event (after = 0), so its rows need no DISTINCT; the traces
    # of a type (the costly count) are counted only for the sinks that end traces: a few types
    return (
        last
        + """
    type_end AS (
        SELECT sys, type, bool_or(is_handled) AS handled, count(*) FILTER (after = 0) AS last_in,
               avg(after) AS mean_after
        FROM node WHERE kind = 'event' GROUP BY sys, type
    ),
    terminal_type AS (
        SELECT sys, type FROM (
            SELECT t.sys, t.type, min(t.last_in) AS last_in, count(DISTINCT n.trace_id) AS traces
            FROM type_end t JOIN node n ON n.sys = t.sys AND n.type IS NOT DISTINCT FROM t.type
            WHERE n.kind = 'event' AND NOT t.handled AND t.mean_after < 0.5 AND t.last_in > 0
            GROUP BY t.sys, t.type
        ) WHERE traces >= 2 AND last_in * 2 > traces
    )"""
    )


def terminal_frames(terminal_types: TerminalTypes) -> dict[str, pd.DataFrame]:
    """The frames a query with :func:`terminal_types_sql` reads: the learnt types, if given."""
    if isinstance(terminal_types, pd.DataFrame):
        return {"_terminal_types": terminal_types[["sys", "type"]]}
    return {}


TERMINAL_TYPE_COLUMNS = ["sys", "type"]


def terminal_types_query(**filters: Unpack[Filters]) -> Query:
    """The terminal types learnt from the events in scope, per system (``sys``, ``type``)."""
    base, params = scoped(**filters)
    select = "SELECT sys, type FROM terminal_type ORDER BY sys, type"
    return Query([base, terminal_types_sql(None)], select, params, TERMINAL_TYPE_COLUMNS)


def known_terminal_types(
    con: Any, terminal_types: list[str] | None, **filters: Unpack[Filters]
) -> list[str] | pd.DataFrame:
    """``terminal_types`` when declared, else the types learnt from the events in scope.

    Learnt once, in a statement of their own, for the detectors that read them (``findings``
    runs three): each statement then reads a table of known size, so its engine joins the
    events to it, not it to the events.
    """
    if terminal_types is not None:
        return terminal_types
    return run(con, terminal_types_query(**filters))


# The first terminal event of each trace (the first of a terminal type), when it ended, when
# it started: what "after the trace ended" is measured against.
TERMINAL_SQL = """terminal AS (
    SELECT trace_id, arg_min(event_id, (ts, seq)) AS term_id,
           arg_min(coalesce(end_ts, ts), (ts, seq)) AS term_end, min(ts) AS term_ts
    FROM uev u SEMI JOIN terminal_type t ON t.sys = u.sys AND t.type = u.type
    GROUP BY trace_id
)"""

# One row per recorded event id with its text (``msg``), and each trace's first message: what
# the content rules read. Redeliveries are one message (its first time, any copy's text).
MESSAGES_SQL = """msg AS (
    SELECT trace_id, event_id, min(type) AS type, min(source) AS source,
           min(ts) AS ts, min(seq) AS seq, min(status) AS status,
           min(content) AS content, min(kind) AS kind,
           min(parent_span_id) AS parent_span_id
    FROM ev GROUP BY trace_id, event_id
),
first_msg AS (SELECT trace_id, arg_min(event_id, (ts, seq)) AS first_id FROM msg GROUP BY trace_id)"""


@dataclass(frozen=True)
class Query:
    """An analysis as data: its CTEs, final SELECT, parameters and result columns.

    Every analysis is one (or, for the combined ones, a few) of these, run by :func:`run`, so
    the same definition runs on DuckDB and, transpiled, on Spark (``toolkit.spark``).
    ``frames`` are DataFrames the statement reads as tables (registered for its run only).
    """

    ctes: list[str]
    select: str
    params: dict[str, Any]
    columns: list[str]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    def sql(self) -> str:
        """The statement: ``WITH RECURSIVE <ctes> <select>`` (RECURSIVE allows any CTE to be
        recursive and changes nothing for the others)."""
        if not self.ctes:
            return self.select
        return "WITH RECURSIVE " + ",\n".join(self.ctes) + "\n" + self.select

    def used_params(self) -> dict[str, Any]:
        """The parameters the statement names (DuckDB rejects unused ones)."""
        sql = self.sql()
        return {k: v for k, v in self.params.items() if re.search(rf"\${k}\b", sql)}


def choice(name: str, value: str, options: dict[str, str]) -> str:
    """``options[value]``, or a ValueError naming the valid values of argument ``name``."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, not {value!r}")
    return options[value]


def run(con: Any, q: Query) -> pd.DataFrame:
    """Run an analysis's query and return its rows with the query's columns, in that order.

    ``con`` is a DuckDB connection from :func:`toolkit.connect`, or any backend with a
    ``run(query)`` method returning the same (``toolkit.spark.connect``).
    """
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return con.run(q)
    prepare_base(con)
    for name, frame in q.frames.items():
        con.register(name, frame)
    try:
        return query(con, q.sql(), **q.used_params())[q.columns]
    finally:
        for name in q.frames:
            con.unregister(name)
