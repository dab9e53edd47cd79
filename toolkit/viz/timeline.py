"""One trace as swimlanes: a lane per source, spans as bars, events as points, causes as lines."""

from __future__ import annotations

import duckdb
import pandas as pd
import plotly.graph_objects as go

from toolkit.analyze.graphs import event_graph
from toolkit.viz._common import FINDING_SYMBOLS, MARK, colour_map, empty_figure, esc, note, style
from toolkit.viz.event_graph import _hover, marks_by_event

MAX_TYPES = 14


def utc_naive(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC: plotly.js ignores offsets, so make the axis UTC explicitly."""
    s = pd.to_datetime(values, utc=True)
    return s.dt.tz_convert("UTC").dt.tz_localize(None)


def plot_timeline(
    con: duckdb.DuckDBPyConnection, trace_id: str, findings: pd.DataFrame | None = None,
    *, max_events: int = 3000,
) -> go.Figure:  # fmt: skip
    """Swimlanes of one trace: a lane per source, in order of first appearance.

    Events with a duration (``end_ts``) are bars, instantaneous events are points coloured by
    type, causation is drawn as thin connectors from the parent's start to the child, and
    findings (and error/timeout statuses) get an outline symbol per kind.

    Args:
        con: the connection.
        trace_id: the trace to draw.
        findings: a :func:`toolkit.findings` table (rows of other traces are ignored).
        max_events: the most events drawn (the first ones in time; the title says when cut).

    Returns:
        A plotly figure.
    """
    title = f"Timeline of trace {esc(trace_id, 60)}"
    graph = event_graph(con, trace_id)
    nodes = pd.DataFrame([{"event_id": n, **d} for n, d in graph.nodes(data=True)])
    if nodes.empty or nodes["ts"].isna().all():
        return empty_figure(title, "No timed events in this trace.")
    total = len(nodes)
    nodes = nodes[nodes["ts"].notna()].head(max_events).reset_index(drop=True)
    nodes["lane"] = nodes["source"].fillna("(none)").map(lambda s: esc(s, 28))
    nodes["t0"] = utc_naive(nodes["ts"])
    nodes["t1"] = utc_naive(nodes["end_ts"]) if nodes["end_ts"].notna().any() else pd.NaT
    lanes = list(dict.fromkeys(nodes["lane"]))
    marks = marks_by_event(graph, findings, trace_id)
    hover = [_hover(n, graph.nodes[n], marks.get(n, [])) for n in nodes["event_id"]]
    nodes["hover"] = hover
    colours = colour_map(nodes["type"], "type")
    fig = go.Figure()

    at = dict(zip(nodes["event_id"], zip(nodes["t0"], nodes["lane"], strict=True), strict=True))
    cx: list = []
    cy: list = []
    for parent, child in graph.edges:
        if parent in at and child in at:
            cx += [at[parent][0], at[child][0], None]
            cy += [at[parent][1], at[child][1], None]
    if cx:
        fig.add_trace(go.Scatter(
            x=cx, y=cy, mode="lines", name="causes", hoverinfo="skip",
            line={"color": "#b0b0b0", "width": 1},
        ))  # fmt: skip

    spans = nodes[nodes["t1"].notna() & (nodes["t1"] > nodes["t0"])]
    if not spans.empty:
        fig.add_trace(go.Bar(
            base=spans["t0"], x=(spans["t1"] - spans["t0"]).dt.total_seconds() * 1e3,
            y=spans["lane"], orientation="h", name="span (duration)", width=0.5,
            marker={"color": [colours[t] for t in spans["type"]], "opacity": 0.6,
                    "line": {"color": "#333333", "width": 0.5}},
            hovertext=spans["hover"], hoverinfo="text",
        ))  # fmt: skip
    types = sorted(colours, key=lambda t: -int((nodes["type"] == t).sum()))
    named = set(types[:MAX_TYPES])
    groups = [(t, nodes["type"] == t) for t in types[:MAX_TYPES]]
    if len(types) > MAX_TYPES:
        groups.append(("(other types)", ~nodes["type"].isin(named)))
    size = 10 if len(nodes) <= 200 else 6
    for t, mask in groups:
        part = nodes[mask]
        fig.add_trace(go.Scatter(
            x=part["t0"], y=part["lane"], mode="markers", name=esc(t, 32), legendgroup="type",
            legendgrouptitle_text="event type" if t == groups[0][0] else None,
            marker={"color": colours.get(t, "#777777"), "size": size,
                    "line": {"color": "white", "width": 0.5}},
            hovertext=part["hover"], hoverinfo="text",
        ))  # fmt: skip
    kinds: dict[str, list[int]] = {}
    for i, n in enumerate(nodes["event_id"]):
        for kind, _ in marks.get(n, []):
            kinds.setdefault(kind, []).append(i)
    for j, (kind, idx) in enumerate(sorted(kinds.items())):
        part = nodes.iloc[idx]
        fig.add_trace(go.Scatter(
            x=part["t0"], y=part["lane"], mode="markers", name=f"{esc(kind)} ({len(idx)})",
            legendgroup="finding", legendgrouptitle_text="finding" if j == 0 else None,
            marker={"symbol": FINDING_SYMBOLS.get(kind, "circle-open"), "size": size + 10,
                    "color": MARK, "line": {"width": 2, "color": MARK}},
            hovertext=part["hover"], hoverinfo="text",
        ))  # fmt: skip
    span_s = (nodes["t1"].fillna(nodes["t0"]).max() - nodes["t0"].min()).total_seconds()
    title += f": {total:,} events in {span_s:,.3f} s across {len(lanes)} sources"
    if len(nodes) < total:
        title += f"<br><sup>showing the first {len(nodes):,} timed events of {total:,}</sup>"
    legend_rows = len(groups) + len(kinds) + 4
    height = max(360, 46 * len(lanes) + 200, 21 * legend_rows + 160)
    style(fig, title, "time (UTC)", "source (lane)", height=int(min(height, 1200)))
    fig.update_yaxes(
        type="category", categoryorder="array", categoryarray=lanes, autorange="reversed"
    )
    fig.update_xaxes(type="date")
    if not marks:
        note(fig, "No findings in this trace.", y=-0.12)
    return fig
