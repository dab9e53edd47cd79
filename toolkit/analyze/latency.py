"""Latency: percentiles of durations, reaction times and trace durations; critical paths."""

from __future__ import annotations

from typing import Literal, Unpack

import duckdb
import pandas as pd

from toolkit.analyze.graphs import event_graph
from toolkit.analyze.scope import Filters, Query, choice, run, scoped

LATENCY_COLUMNS = ["measure", "key", "count", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"]
CRITICAL_PATH_COLUMNS = ["step", "event_id", "type", "source", "ts", "end", "contribution_ms",
                         "cumulative_ms"]  # fmt: skip


Measure = Literal["reaction", "duration", "end_to_end"]
DISTRIBUTION_COLUMNS = ["key", "n", "nonpos", "q05", "q25", "q50", "q75", "q95", "mx"]
SAMPLE_COLUMNS = ["key", "trace_id", "ms"]


def _sample_sql(by: str) -> str:
    """CTE ``sample(measure, key, trace_id, ms)``: every latency measurement, the one
    definition behind the percentile table and the charts' distributions."""
    own = choice("by", by, {"type": "u.type", "source": "u.source", "handler": "u.source",
                            "trace": "u.trace_id"})  # fmt: skip
    reaction = {"type": "c_type", "source": "p_source", "handler": "c_source",
                "trace": "c_trace"}[by]  # fmt: skip
    trace_key = "t.trace_id" if by == "trace" else "t.system"
    return f"""sample AS (
        SELECT 'duration' AS measure, {own} AS key, u.trace_id,
               (epoch_us(u.end_ts) - epoch_us(u.ts)) / 1e3 AS ms
        FROM uev u WHERE u.end_ts IS NOT NULL AND u.ts IS NOT NULL
        UNION ALL
        SELECT 'reaction', {reaction}, c_trace, (epoch_us(c_ts) - epoch_us(p_ts)) / 1e3
        FROM pedge WHERE p_ts IS NOT NULL AND c_ts IS NOT NULL
        UNION ALL
        SELECT 'end_to_end', coalesce({trace_key}, '(unknown)'), t.trace_id,
               (epoch_us(t.last) - epoch_us(t.start)) / 1e3
        FROM (SELECT u.trace_id, min(tr.system) AS system, min(u.ts) AS start,
                     max(coalesce(u.end_ts, u.ts)) AS last
              FROM uev u LEFT JOIN traces tr USING (trace_id) WHERE u.ts IS NOT NULL
              GROUP BY u.trace_id) t
    )"""


def latency_query(
    *, by: Literal["type", "source", "handler", "trace"] = "type", **filters: Unpack[Filters]
) -> Query:
    """The query behind :func:`latency`."""
    base, params = scoped(**filters)
    # the percentiles as one list: one sort of each group's times, not one per percentile
    select = """
        SELECT measure, key, count, q[1] AS p50_ms, q[2] AS p90_ms, q[3] AS p95_ms,
               q[4] AS p99_ms, max_ms
        FROM (SELECT measure, key, count(*) AS count,
                     quantile_cont(ms, [0.5, 0.9, 0.95, 0.99]) AS q, max(ms) AS max_ms
              FROM sample GROUP BY measure, key)
        ORDER BY measure, p95_ms DESC, key
    """
    return Query([base, _sample_sql(by)], select, params, LATENCY_COLUMNS)


def latency(
    con: duckdb.DuckDBPyConnection, *,
    by: Literal["type", "source", "handler", "trace"] = "type", **filters: Unpack[Filters],
) -> pd.DataFrame:  # fmt: skip
    """Latency percentiles, in milliseconds, of three measures.

    * ``duration``: ``end_ts - ts`` of events that have an end (spans, tool calls).
    * ``reaction``: a child's time minus its parent's (how long until someone reacted).
    * ``end_to_end``: a trace's last end minus its first start.

    ``by`` groups them: ``type`` (the event's type; for reactions, the reacting event's type),
    ``source`` (the emitter; for reactions, the parent's source, who waited), ``handler`` (for
    reactions, the reacting event's source; for durations, the event's source) or ``trace``.
    End-to-end durations are grouped by system, or by trace with ``by="trace"``.

    Returns:
        Columns ``measure``, ``key``, ``count``, ``p50_ms``, ``p90_ms``, ``p95_ms``,
        ``p99_ms``, ``max_ms``.
    """
    return run(con, latency_query(by=by, **filters))


def latency_distribution_query(
    *, measure: Measure = "reaction", by: Literal["type", "source", "handler", "trace"] = "type",
    **filters: Unpack[Filters],
) -> Query:  # fmt: skip
    """The query behind :func:`latency_distribution`."""
    base, params = scoped(**filters)
    params["measure"] = choice("measure", measure, {m: m for m in Measure.__args__})  # type: ignore[attr-defined]
    select = """
        SELECT key, n, nonpos, q[1] AS q05, q[2] AS q25, q[3] AS q50, q[4] AS q75, q[5] AS q95, mx
        FROM (SELECT coalesce(key, '(none)') AS key, count(*) AS n,
                     count(*) FILTER (ms <= 0) AS nonpos,
                     quantile_cont(ms, [0.05, 0.25, 0.5, 0.75, 0.95]) AS q, max(ms) AS mx
              FROM sample WHERE measure = $measure GROUP BY 1)
        ORDER BY q95 DESC, key
    """
    return Query([base, _sample_sql(by)], select, params, DISTRIBUTION_COLUMNS)


def latency_distribution(
    con: duckdb.DuckDBPyConnection, *, measure: Measure = "reaction",
    by: Literal["type", "source", "handler", "trace"] = "type", **filters: Unpack[Filters],
) -> pd.DataFrame:  # fmt: skip
    """Box-plot statistics of one latency measure per key (the measurements of :func:`latency`).

    Returns:
        Columns ``key`` (``(none)`` for a missing key), ``n``, ``nonpos`` (measurements
        <= 0 ms), ``q05``, ``q25``, ``q50``, ``q75``, ``q95`` (percentiles, ms), ``mx`` (max).
    """
    return run(con, latency_distribution_query(measure=measure, by=by, **filters))


def latency_samples(
    con: duckdb.DuckDBPyConnection, *, measure: Measure = "reaction",
    by: Literal["type", "source", "handler", "trace"] = "type", trace_ids: list[str],
    **filters: Unpack[Filters],
) -> pd.DataFrame:  # fmt: skip
    """The single measurements of one measure in the traces ``trace_ids`` (the slowest, say).

    Returns:
        Columns ``key`` (``(none)`` for a missing key), ``trace_id``, ``ms``.
    """
    base, params = scoped(**filters)
    params |= {"measure": measure, "ids": list(trace_ids)}
    select = """
        SELECT coalesce(key, '(none)') AS key, trace_id, ms FROM sample
        WHERE measure = $measure AND list_contains($ids, trace_id) ORDER BY trace_id, key, ms
    """
    return run(con, Query([base, _sample_sql(by)], select, params, SAMPLE_COLUMNS))


def critical_path(con: duckdb.DuckDBPyConnection, trace_id: str) -> pd.DataFrame:
    """The chain of events that determines when the trace ended.

    Start at the event that ends last (``end_ts``, else ``ts``); walk up its causes to the root;
    then, while the current event has reactions, follow the one that ends last (for span trees,
    where the last to end is the root). Each step's ``contribution_ms`` is the time from its
    start to the next step's start (the last step: its own duration), so the contributions add
    up to the time from the root's start to the last step's end. Cycles are cut where an event
    would repeat.

    Returns:
        Columns ``step`` (0 = root), ``event_id``, ``type``, ``source``, ``ts``, ``end``,
        ``contribution_ms``, ``cumulative_ms``; empty for an unknown trace.
    """
    graph = event_graph(con, trace_id)
    timed = [n for n, d in graph.nodes(data=True) if d["ts"] is not None]
    if not timed:
        return pd.DataFrame(columns=CRITICAL_PATH_COLUMNS)

    def end(n: str) -> pd.Timestamp:
        d = graph.nodes[n]
        return d["end_ts"] if d["end_ts"] is not None else d["ts"]

    last = max(timed, key=lambda n: (end(n), graph.nodes[n]["seq"] or 0))
    path = [last]
    while True:  # up to the root
        parents = [p for p in graph.predecessors(path[0]) if p not in path]
        if not parents:
            break
        path.insert(0, parents[0])
    while True:  # down through the reaction that ends last
        children = [
            c
            for c in graph.successors(path[-1])
            if c not in path and graph.nodes[c]["ts"] is not None
        ]
        if not children:
            break
        path.append(max(children, key=end))
    rows = []
    for i, n in enumerate(path):
        d = graph.nodes[n]
        nxt = graph.nodes[path[i + 1]]["ts"] if i + 1 < len(path) else end(n)
        ms = (
            (nxt - d["ts"]).total_seconds() * 1e3
            if d["ts"] is not None and nxt is not None
            else None
        )
        rows.append({"step": i, "event_id": n, "type": d["type"], "source": d["source"],
                     "ts": d["ts"], "end": end(n), "contribution_ms": ms})  # fmt: skip
    df = pd.DataFrame(rows, columns=CRITICAL_PATH_COLUMNS[:-1])
    df["cumulative_ms"] = df["contribution_ms"].cumsum()
    return df
