"""Event graphs: one trace's causal graph, and the flow graph aggregated over many traces."""

from __future__ import annotations

from itertools import pairwise
from typing import Literal, Unpack

import duckdb
import networkx as nx
import pandas as pd

from toolkit.analyze.scope import Filters, Query, choice, run, scoped

FLOW_EDGE_COLUMNS = ["parent", "child", "count", "traces", "share_of_traces", "p50_ms", "p95_ms",
                     "max_ms"]  # fmt: skip


EVENT_NODE_COLUMNS = ["event_id", "kind", "name", "type", "source", "target", "ts", "end_ts",
                      "status", "content", "parent_id", "parent_span_id", "seq", "records"]  # fmt: skip


def event_nodes_query(trace_id: str) -> Query:
    """The query behind :func:`event_graph`: one row per event id of the trace."""
    select = """
        SELECT event_id, min(kind) AS kind, min(name) AS name,
               min(type) AS type, min(source) AS source,
               min(target) AS target, min(ts) AS ts, max(end_ts) AS end_ts,
               min(status) AS status, min(content) AS content,
               min(parent_id) AS parent_id, min(parent_span_id) AS parent_span_id,
               min(seq) AS seq, count(*) AS records
        FROM events WHERE trace_id = $t GROUP BY event_id ORDER BY ts NULLS LAST, seq, event_id
    """
    return Query([], select, {"t": trace_id}, EVENT_NODE_COLUMNS)


def event_graph(con: duckdb.DuckDBPyConnection, trace_id: str) -> nx.DiGraph:
    """The graph of one trace: what caused what, and what ran inside what.

    Nodes are event ids with attributes ``kind`` (span, span_event, message, event), ``name``,
    ``type``, ``source``, ``target``, ``ts``, ``end_ts``, ``status``, ``content``, ``seq`` and
    ``records`` (how many times it was recorded: more than one is a redelivery). Edges go from
    an event to the events that react to it (``kind="causes"``) and from a span to the spans
    and span events inside it (``kind="contains"``; where a child both reacts to and runs
    inside the same parent, the edge is ``causes``). A trace with neither (a chat log) gets
    ``kind="follows"`` edges between consecutive events in time order instead. A parent outside
    the trace is not a node; the child gets ``parent_missing=True``. Cycles from bad data are
    kept as they are (building the graph never walks it).
    """
    nodes = run(con, event_nodes_query(trace_id))
    graph = nx.DiGraph(trace_id=trace_id)
    for row in nodes.itertuples(index=False):
        attrs = row._asdict()
        for key in ("event_id", "parent_id", "parent_span_id"):
            attrs.pop(key)
        attrs = {k: (None if pd.isna(v) else v) for k, v in attrs.items()}
        graph.add_node(row.event_id, **attrs)
    ids = set(nodes["event_id"])
    linked = nodes["parent_id"].notna().any() or nodes["parent_span_id"].notna().any()
    if linked:
        rows = zip(nodes["event_id"], nodes["parent_span_id"], nodes["parent_id"], strict=True)
        for child, container, cause in rows:
            # the causation edge is added last, so it wins where both name the same parent
            for relation, parent in (("contains", container), ("causes", cause)):
                if not pd.isna(parent) and parent in ids:
                    graph.add_edge(parent, child, kind=relation)
            # a parent outside the trace: the nearest relation the child has is missing
            nearest = cause if not pd.isna(cause) else container
            if not pd.isna(nearest) and nearest not in ids:
                graph.nodes[child]["parent_missing"] = True
    else:
        order = list(nodes["event_id"])
        graph.add_edges_from(pairwise(order), kind="follows")
    return graph


def flow_edges(
    con: duckdb.DuckDBPyConnection, *, by: Literal["type", "source_type", "source"] = "type",
    **filters: Unpack[Filters],
) -> pd.DataFrame:  # fmt: skip
    """The directly-follows graph made causal, as a table of edges between event kinds.

    An edge ``parent -> child`` counts the events of kind ``child`` that reacted to an event of
    kind ``parent`` (the kind is the type, ``source:type``, or the source, by ``by``). Traces
    without causation ids (chat logs) contribute their consecutive pairs instead.

    Returns:
        Columns ``parent``, ``child``, ``count``, ``traces`` (traces with the edge),
        ``share_of_traces`` (of the traces in scope), ``p50_ms``, ``p95_ms``, ``max_ms``
        (reaction latency: child time minus parent time, in milliseconds).
    """
    return run(con, flow_edges_query(by=by, **filters))


def flow_edges_query(
    *, by: Literal["type", "source_type", "source"] = "type", **filters: Unpack[Filters]
) -> Query:
    """The query behind :func:`flow_edges`."""
    base, params = scoped(**filters)
    key = choice("by", by, {"type": "{type}", "source": "coalesce({source}, '?')",
                            "source_type": "coalesce({source}, '?') || ':' || {type}"})  # fmt: skip
    parent = key.format(type="p_type", source="p_source")
    child = key.format(type="c_type", source="c_source")
    own = key.format(type="type", source="source")
    # An edge row carries what flow needs of its child and of its parent: no join.
    # Traces without edges (plain event logs) follow each event to the next by time.
    pairs = f"""pair AS (
        SELECT {parent} AS parent, {child} AS child, c_trace AS trace_id,
               (epoch_us(c_ts) - epoch_us(p_ts)) / 1e3 AS ms
        FROM pedge
        UNION ALL
        SELECT parent, child, trace_id, (epoch_us(next_ts) - epoch_us(ts)) / 1e3 FROM (
            SELECT {own} AS parent, trace_id, ts, lead({own}) OVER w AS child,
                   lead(ts) OVER w AS next_ts
            FROM uev WHERE trace_id NOT IN (SELECT DISTINCT c_trace FROM edge)
            WINDOW w AS (PARTITION BY trace_id ORDER BY ts, seq))
        WHERE child IS NOT NULL
    )"""
    # The traces per edge apart from the rest (DuckDB computes a DISTINCT aggregate apart
    # anyway, over a copy of the pairs, and ran that copy on one thread); both percentiles from
    # one sort of each edge's times.
    select = """
        SELECT a.parent, a.child, a.count, d.traces,
               d.traces / (SELECT count(DISTINCT trace_id) FROM uev) AS share_of_traces,
               a.q[1] AS p50_ms, a.q[2] AS p95_ms, a.max_ms
        FROM (SELECT parent, child, count(*) AS count, quantile_cont(ms, [0.5, 0.95]) AS q,
                     max(ms) AS max_ms
              FROM pair GROUP BY parent, child) a
        JOIN (SELECT parent, child, count(*) AS traces
              FROM (SELECT DISTINCT parent, child, trace_id FROM pair) GROUP BY parent, child) d
            ON d.parent IS NOT DISTINCT FROM a.parent AND d.child IS NOT DISTINCT FROM a.child
        ORDER BY count DESC, parent, child
    """
    return Query([base, pairs], select, params, FLOW_EDGE_COLUMNS)


def flow_nodes_query(
    *, by: Literal["type", "source_type", "source"] = "type", **filters: Unpack[Filters]
) -> Query:
    """The node counts of :func:`flow_graph`: events per kind (``node``, ``count``)."""
    base, params = scoped(**filters)
    key = choice("by", by, {"type": "type", "source": "coalesce(source, '?')",
                            "source_type": "coalesce(source, '?') || ':' || type"})  # fmt: skip
    select = f"SELECT {key} AS node, count(*) AS count FROM uev GROUP BY 1 ORDER BY 1"
    return Query([base], select, params, ["node", "count"])


def flow_graph(
    con: duckdb.DuckDBPyConnection, *, by: Literal["type", "source_type", "source"] = "type",
    **filters: Unpack[Filters],
) -> nx.DiGraph:  # fmt: skip
    """:func:`flow_edges` as a ``networkx.DiGraph``.

    Edge attributes are the table's columns; node attribute ``count`` is the number of events
    of that kind in scope.
    """
    edges = flow_edges(con, by=by, **filters)
    counts = run(con, flow_nodes_query(by=by, **filters))
    graph = nx.DiGraph(by=by)
    graph.add_nodes_from((r.node, {"count": int(r.count)}) for r in counts.itertuples(index=False))
    for row in edges.itertuples(index=False):
        graph.add_edge(row.parent, row.child, **{c: getattr(row, c) for c in FLOW_EDGE_COLUMNS[2:]})
    return graph
