"""The aggregate flow graph: which kind of event reacts to which, how often, how fast."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from toolkit.viz._common import SEQUENTIAL, empty_figure, esc, note, style

TITLE = "Event flow graph"


def _back_edges(graph: nx.DiGraph, roots: list, weight: dict) -> set:
    """Edges that close a cycle, found by a depth-first walk from the roots, heaviest first."""
    state: dict = {}  # 1: on the walk's stack, 2: done
    back = set()

    def successors(u):
        return iter(sorted(graph.successors(u), key=lambda v: (-weight.get((u, v), 0), str(v))))

    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, successors(root))]
        while stack:
            u, it = stack[-1]
            v = next(it, _DONE)
            if v is _DONE:
                state[u] = 2
                stack.pop()
            elif v not in state:
                state[v] = 1
                stack.append((v, successors(v)))
            elif state[v] == 1:
                back.add((u, v))
    return back


_DONE = object()


def _layers(graph: nx.DiGraph, node_weight: dict, edge_weight: dict) -> dict:
    """Left-to-right layer of each node: the longest path from a start, cycles cut where they close.

    Starts are the kinds nothing causes (then, for what only cycles reach, the busiest kind).
    """
    order = sorted(
        graph.nodes, key=lambda n: (graph.in_degree(n) > 0, -node_weight.get(n, 0), str(n))
    )
    back = _back_edges(graph, order, edge_weight)
    dag = nx.DiGraph()
    dag.add_nodes_from(graph.nodes)
    dag.add_edges_from(e for e in graph.edges if e not in back)
    level: dict = {}
    for n in nx.topological_sort(dag):
        level[n] = max((level[p] + 1 for p in dag.predecessors(n)), default=0)
    return level


def _positions(graph: nx.DiGraph, weight: dict, edge_weight: dict) -> dict:
    """Layers on x; within a layer, ordered by the mean position of the parents (fewer crossings)."""
    layer = _layers(graph, weight, edge_weight)
    pos: dict = {}
    for x in sorted(set(layer.values())):
        nodes = [n for n in graph.nodes if layer[n] == x]

        def bary(n, nodes=nodes):
            ys = [pos[p][1] for p in graph.predecessors(n) if p in pos]
            return (np.mean(ys) if ys else 0.0, -weight.get(n, 0), str(n))

        nodes.sort(key=bary)
        for i, n in enumerate(nodes):
            # odd layers a little lower: their labels go below the node, the even layers'
            # above, so labels of neighbouring layers move apart rather than meet
            pos[n] = (x, i - (len(nodes) - 1) / 2 - (0.2 if x % 2 else 0.0))
    return pos


def _curve(p0: tuple, p1: tuple, bend: float, steps: int = 24) -> tuple[list, list]:
    """A quadratic Bézier from p0 to p1, bowed sideways by ``bend`` (in data units)."""
    (x0, y0), (x1, y1) = p0, p1
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    dx, dy = x1 - x0, y1 - y0
    length = math.hypot(dx, dy) or 1.0
    cx, cy = mx - dy / length * bend, my + dx / length * bend
    t = np.linspace(0, 1, steps)
    xs = (1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t**2 * x1
    ys = (1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t**2 * y1
    return list(xs), list(ys)


def _ms(v: float) -> str:
    return "—" if v is None or pd.isna(v) else f"{v:,.1f} ms"


def plot_flow_graph(edges: pd.DataFrame, *, max_edges: int = 80) -> go.Figure:
    """The aggregate flow graph from :func:`toolkit.flow_edges`.

    Nodes are event kinds laid out left to right by causal depth (cycles condensed); edges are
    arrows whose width grows with ``count`` and whose colour is the p95 reaction latency (log
    scale, with a colour bar). Hover an edge's midpoint for its count, traces and percentiles.
    Only the ``max_edges`` most frequent edges are drawn (the chart says when some are not).

    Args:
        edges: columns ``parent``, ``child``, ``count`` and optionally ``traces``,
            ``share_of_traces``, ``p50_ms``, ``p95_ms``, ``max_ms``.
        max_edges: the most edges drawn.

    Returns:
        A plotly figure.
    """
    if edges is None or edges.empty:
        return empty_figure(TITLE, "No causal edges: nothing reacted to anything in scope.")
    df = edges.sort_values("count", ascending=False, kind="stable").head(max_edges).copy()
    for col in ("traces", "share_of_traces", "p50_ms", "p95_ms", "max_ms"):
        if col not in df.columns:
            df[col] = np.nan
    loops = df[df["parent"] == df["child"]]
    links = df[df["parent"] != df["child"]]
    graph = nx.DiGraph()
    graph.add_nodes_from(pd.unique(df[["parent", "child"]].to_numpy().ravel()))
    graph.add_edges_from(zip(links["parent"], links["child"], strict=True))
    incoming = df.groupby("child")["count"].sum()
    outgoing = df.groupby("parent")["count"].sum()
    weight = {n: max(incoming.get(n, 0), outgoing.get(n, 0)) for n in graph.nodes}
    edge_weight = dict(
        zip(zip(links["parent"], links["child"], strict=True), links["count"], strict=True)
    )
    pos = _positions(graph, weight, edge_weight)

    p95 = df["p95_ms"].astype("float64")
    logs = np.log10(p95.clip(lower=0.001))
    lo, hi = (float(logs.min()), float(logs.max())) if p95.notna().any() else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1
    top = float(df["count"].max())

    fig = go.Figure()
    mid_x, mid_y, mid_c, mid_text = [], [], [], []
    for row, lg in zip(links.itertuples(index=False), logs.loc[links.index], strict=True):
        p0, p1 = pos[row.parent], pos[row.child]
        forward = p1[0] == p0[0] + 1
        back = graph.has_edge(row.child, row.parent)
        bend = 0.0 if forward and not back else 0.35 if p1[0] > p0[0] else -0.35
        xs, ys = _curve(p0, p1, bend)
        colour = (
            "#999999" if pd.isna(lg) else sample_colorscale(SEQUENTIAL, (lg - lo) / (hi - lo))[0]
        )
        width = 1 + 9 * math.sqrt(row.count / top)
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines", line={"color": colour, "width": width},
            hoverinfo="skip", showlegend=False,
        ))  # fmt: skip
        fig.add_annotation(
            x=xs[-1], y=ys[-1], ax=xs[-3], ay=ys[-3], xref="x", yref="y", axref="x", ayref="y",
            showarrow=True, arrowhead=2, arrowsize=1, arrowwidth=max(1.0, width / 2.5),
            arrowcolor=colour, standoff=9, text="",
        )  # fmt: skip
        mid_x.append(xs[len(xs) // 2])
        mid_y.append(ys[len(ys) // 2])
        mid_c.append(lg)
        mid_text.append(_edge_hover(row))
    ticks = [v for v in range(math.floor(lo), math.ceil(hi) + 1)]
    fig.add_trace(go.Scatter(
        x=mid_x, y=mid_y, mode="markers", name="edge (hover)", showlegend=False,
        hovertext=mid_text, hoverinfo="text",
        marker={"size": 7, "color": mid_c, "colorscale": SEQUENTIAL, "cmin": lo, "cmax": hi,
                "line": {"color": "white", "width": 1},
                "colorbar": {"title": {"text": "p95 reaction<br>latency (ms)"},
                             "tickvals": ticks, "ticktext": [f"{10.0**v:,.0f}" if v >= 0
                                                             else f"{10.0**v:g}" for v in ticks]}},
    ))  # fmt: skip
    loop_n = loops.set_index("child")["count"].to_dict()
    nodes = list(graph.nodes)
    sizes = [10 + 14 * math.sqrt(weight[n] / top) for n in nodes]
    fig.add_trace(go.Scatter(
        x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers",
        name="event kind", showlegend=False,
        marker={"size": sizes, "color": "#0072B2", "line": {"color": "white", "width": 1}},
        hovertext=[
            f"<b>{esc(n)}</b><br>reacted to by: {int(outgoing.get(n, 0)):,} events"
            f"<br>reacting to something: {int(incoming.get(n, 0)):,} events"
            + (f"<br>self-loop: {loop_n[n]:,}" if n in loop_n else "")
            for n in nodes
        ],
        hoverinfo="text",
    ))  # fmt: skip
    depth = max(p[0] for p in pos.values())
    tall = max(sum(1 for p in pos.values() if p[0] == x) for x in range(depth + 1))
    height = int(min(max(520, 90 * tall + 220), 1400))
    # Labels as annotations on a white ground: drawn above the edges, so a thick edge never
    # hides one; on the side of the node where they do not meet the neighbouring layer's.
    shifts = _label_shifts(pos, dict(zip(nodes, sizes, strict=True)),
                           px_per_unit=(height - 140) / (tall + 1))  # fmt: skip
    labels = [
        {"x": pos[n][0], "y": pos[n][1], "xref": "x", "yref": "y", "showarrow": False,
         "text": esc(n, 30) + (f" ↻{loop_n[n]}" if n in loop_n else ""), "yshift": shifts[n],
         "bgcolor": "rgba(255,255,255,0.85)", "borderpad": 1, "font": {"size": 10}}
        for n in nodes
    ]  # fmt: skip
    fig.update_layout(annotations=[*fig.layout.annotations, *labels])
    title = f"{TITLE}: {len(graph)} event kinds, {int(df['count'].sum()):,} reactions"
    title += "<br><sup>arrow width: number of reactions; colour: p95 reaction latency</sup>"
    style(fig, title, "causal depth (steps from the first event kind)", None,
          height=height)  # fmt: skip
    fig.update_xaxes(tickmode="array", tickvals=list(range(depth + 1)), zeroline=False,
                     showgrid=False, range=[-0.6, depth + 0.6])  # fmt: skip
    fig.update_yaxes(visible=False, range=[-(tall + 1) / 2, (tall + 1) / 2])
    if len(edges) > len(df):
        note(fig, f"showing the {len(df)} most frequent of {len(edges)} edges", y=-0.1)
    return fig


LABEL_PX = 16  # the height of a node label, with its ground


def _label_shifts(pos: dict, sizes: dict, *, px_per_unit: float) -> dict:
    """The vertical offset (px) of each node's label: above the node in even layers, below in
    odd ones, unless that label would meet one of the layer before (labels are wider than the
    gap between layers at notebook width): then on the other side, if that one is free."""
    shifts: dict = {}
    placed: dict[int, list[tuple[float, float]]] = {}
    for n in sorted(pos, key=lambda n: (pos[n][0], pos[n][1])):
        x, y = pos[n]
        gap = sizes[n] / 2 + 9
        spans = {s: (y * px_per_unit + s - LABEL_PX / 2, y * px_per_unit + s + LABEL_PX / 2)
                 for s in ([gap, -gap] if x % 2 == 0 else [-gap, gap])}  # fmt: skip
        before = placed.get(x - 1, [])
        free = [s for s, (lo, hi) in spans.items() if all(hi <= a or lo >= b for a, b in before)]
        shifts[n] = free[0] if free else next(iter(spans))
        placed.setdefault(x, []).append(spans[shifts[n]])
    return shifts


def _edge_hover(row) -> str:
    share = "" if pd.isna(row.share_of_traces) else f" ({row.share_of_traces:.0%} of traces)"
    traces = "" if pd.isna(row.traces) else f"<br>in {int(row.traces):,} traces{share}"
    return (
        f"<b>{esc(row.parent)} → {esc(row.child)}</b><br>{int(row.count):,} reactions{traces}"
        f"<br>p50 {_ms(row.p50_ms)} · p95 {_ms(row.p95_ms)} · max {_ms(row.max_ms)}"
    )
