"""One trace read as a whole: a span tree with durations (waterfall) and a transcript.

Both take the graph of :func:`toolkit.event_graph` (nodes with ``kind``, ``name``, ``type``,
``source``, ``target``, ``ts``, ``end_ts``, ``status``, ``content``; ``contains`` and ``causes``
edges) and a :func:`toolkit.findings` table; neither queries the database.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import pandas as pd
import plotly.graph_objects as go

from toolkit.viz._common import (
    ERROR_STATUSES,
    FINDING_SYMBOLS,
    MARK,
    colour_of,
    empty_figure,
    esc,
    human_duration,
    note,
    style,
)
from toolkit.viz.event_graph import marks_by_event

ERROR_RED = "#C00000"
MAX_DEPTH_INDENT = 10
LABEL_CHARS = 36
INDENT_PX = 12
TRANSCRIPT_COLUMNS = ["step", "time", "offset", "agent", "addressee", "kind", "name", "status",
                      "duration", "findings", "content", "event_id"]  # fmt: skip
# The unit of a time axis from the trace's own span: (longest span in s, unit, seconds per unit)
_UNITS = [(2.0, "ms", 1e-3), (120.0, "s", 1.0), (7200.0, "min", 60.0), (172800.0, "h", 3600.0)]


def _ts(value: Any) -> pd.Timestamp | None:
    if value is None or (not isinstance(value, pd.Timestamp) and pd.isna(value)):
        return None
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t


def _failed(d: dict) -> bool:
    return str(d.get("status") or "").lower() in ERROR_STATUSES


def _label(d: dict) -> str:
    return str(d.get("name") or d.get("type") or "(unnamed)")


def tree_parents(graph: nx.DiGraph) -> dict[Any, Any]:
    """Each event's parent in the tree drawn: the span it runs inside, else what caused it.

    ``event_graph`` keeps one edge per pair, ``causes`` winning where a child both reacts to and
    runs inside the same span, so a causal parent stands in where no ``contains`` edge exists
    (event logs nest by causation alone). Cycles from bad data are cut.
    """
    parents: dict[Any, Any] = {}
    for child in graph.nodes:
        preds = list(graph.in_edges(child, data="kind"))
        contains = [p for p, _, k in preds if k == "contains"]
        causes = [p for p, _, k in preds if k == "causes"]
        if contains:
            parents[child] = contains[0]
        elif causes:
            parents[child] = causes[0]
        else:
            parents[child] = None
    # a cycle from bad data would make the walk below endless: cut it at its first node
    for start in list(parents):
        seen, node = {start}, parents[start]
        while node is not None:
            if node in seen:
                parents[start] = None
                break
            seen.add(node)
            node = parents.get(node)
    return parents


def _order(graph: nx.DiGraph, parents: dict) -> list[tuple[Any, int]]:
    """Depth-first order of the tree, children by start time: (event, depth)."""

    def key(n: Any) -> tuple:
        t = _ts(graph.nodes[n].get("ts"))
        return (t is None, t or pd.Timestamp(0, tz="UTC"), graph.nodes[n].get("seq") or 0, str(n))

    children: dict[Any, list] = {}
    for c, p in parents.items():
        children.setdefault(p, []).append(c)
    out: list[tuple[Any, int]] = []
    stack = [(n, 0) for n in sorted(children.get(None, []), key=key, reverse=True)]
    while stack:
        n, depth = stack.pop()
        out.append((n, depth))
        stack.extend((c, depth + 1) for c in sorted(children.get(n, []), key=key, reverse=True))
    return out


def _unit(span_s: float) -> tuple[str, float]:
    for limit, unit, size in _UNITS:
        if span_s < limit:
            return unit, size
    return "d", 86400.0


def _hover(n: Any, d: dict, start: pd.Timestamp, marks: list[tuple[str, str]]) -> str:
    t0, t1 = _ts(d.get("ts")), _ts(d.get("end_ts"))
    at = human_duration((t0 - start).total_seconds()) if t0 is not None else "—"
    dur = human_duration((t1 - t0).total_seconds()) if t0 is not None and t1 is not None else "—"
    found = "".join(f"<br><b>⚑ {esc(k)}</b>: {esc(v, 160)}" for k, v in marks)
    return (
        f"<b>{esc(_label(d), 80)}</b> ({esc(d.get('kind'))})<br>agent: {esc(d.get('source'))}"
        f" → {esc(d.get('target')) or '—'}<br>starts at +{at}, lasts {dur}"
        f"<br>status: {esc(d.get('status')) or '—'}<br>id: {esc(n, 60)}"
        f"<br>content: {esc(d.get('content'), 300) or '—'}{found}"
    )


def plot_waterfall(
    graph: nx.DiGraph, findings: pd.DataFrame | None = None, *, max_rows: int = 250
) -> go.Figure:
    """One trace as a span tree: a row per span or event, nested by containment, a bar per
    duration on a time axis relative to the trace's start.

    Bars are coloured by agent (``source``; the same colour in every chart, see
    :func:`toolkit.viz._common.colour_of`); failed spans (an error, timeout... status) are
    crossed and outlined in red; events without a duration are diamonds; findings get the black
    outline symbol of their kind at the event's start. Row labels are the span names (else the
    event types), indented by depth. Above ``max_rows`` rows, rows with findings or errors and
    their ancestors are kept, then the first rows in tree order; the title says so.

    Args:
        graph: from :func:`toolkit.event_graph`.
        findings: a :func:`toolkit.findings` table (rows of other traces are ignored).
        max_rows: the most rows drawn.

    Returns:
        A plotly figure.
    """
    trace_id = graph.graph.get("trace_id")
    title = f"Span tree of trace {esc(trace_id, 60)}"
    timed = [n for n, d in graph.nodes(data=True) if _ts(d.get("ts")) is not None]
    if not timed:
        return empty_figure(title, "No timed events in this trace.")
    marks = marks_by_event(graph, findings, trace_id)
    parents = tree_parents(graph.subgraph(timed))
    order = _order(graph, parents)
    total = len(order)
    if total > max_rows:
        keep: set = set()
        for n in (n for n, _ in order if n in marks):
            while n is not None and n not in keep:
                keep.add(n)
                n = parents.get(n)
        for n, _ in order:
            if len(keep) >= max_rows:
                break
            keep.add(n)
        order = [(n, depth) for n, depth in order if n in keep]
    starts = [t for n in timed if (t := _ts(graph.nodes[n]["ts"])) is not None]
    ends = [t for n in timed if (t := _ts(graph.nodes[n].get("end_ts"))) is not None]
    start, end = min(starts), max(starts + ends)
    span_s = (end - start).total_seconds()
    unit, size = _unit(span_s)

    rows = []
    for i, (n, depth) in enumerate(order):
        d = graph.nodes[n]
        t0, t1 = _ts(d["ts"]) or start, _ts(d.get("end_ts"))
        x0 = (t0 - start).total_seconds() / size
        width = (t1 - t0).total_seconds() / size if t1 is not None and t1 > t0 else 0.0
        rows.append({
            "n": n, "row": i, "x0": x0, "width": width, "agent": d.get("source") or "(none)",
            "failed": _failed(d), "label": esc(_label(d), LABEL_CHARS),
            "depth": min(depth, MAX_DEPTH_INDENT),
            "hover": _hover(n, d, start, marks.get(n, [])),
        })  # fmt: skip
    df = pd.DataFrame(rows)
    fig = go.Figure()
    bars = df[df["width"] > 0]
    points = df[df["width"] <= 0]
    agents = sorted(set(df["agent"]), key=str)
    for agent in agents:
        colour = colour_of(agent, "agent")
        part = bars[bars["agent"] == agent]
        if not part.empty:
            fig.add_trace(go.Bar(
                base=part["x0"], x=part["width"], y=part["row"], orientation="h",
                name=esc(agent, 30), legendgroup=f"agent-{agent}", width=0.7,
                marker={"color": colour,
                        "line": {"color": [ERROR_RED if f else "rgba(0,0,0,0.35)"
                                           for f in part["failed"]],
                                 "width": [2.5 if f else 0.5 for f in part["failed"]]},
                        "pattern": {"shape": ["x" if f else "" for f in part["failed"]],
                                    "fgcolor": ERROR_RED, "solidity": 0.35}},
                hovertext=part["hover"], hoverinfo="text",
            ))  # fmt: skip
        pts = points[points["agent"] == agent]
        if not pts.empty:
            fig.add_trace(go.Scatter(
                x=pts["x0"], y=pts["row"], mode="markers", name=esc(agent, 30),
                legendgroup=f"agent-{agent}", showlegend=part.empty,
                marker={"symbol": "diamond", "size": 9, "color": colour,
                        "line": {"color": [ERROR_RED if f else "#333333" for f in pts["failed"]],
                                 "width": [2.5 if f else 0.5 for f in pts["failed"]]}},
                hovertext=pts["hover"], hoverinfo="text",
            ))  # fmt: skip
    by_kind: dict[str, list[int]] = {}
    for i, n in enumerate(df["n"]):
        for kind, _ in marks.get(n, []):
            if kind != "error status":
                by_kind.setdefault(kind, []).append(i)
    for kind, idx in sorted(by_kind.items()):
        part = df.iloc[idx]
        fig.add_trace(go.Scatter(
            x=part["x0"], y=part["row"], mode="markers", name=f"⚑ {esc(kind)} ({len(idx)})",
            legendgroup="finding",
            marker={"symbol": FINDING_SYMBOLS.get(kind, "circle-open"), "size": 16,
                    "color": MARK, "line": {"width": 2, "color": MARK}},
            hovertext=part["hover"], hoverinfo="text",
        ))  # fmt: skip
    if df["failed"].any():
        fig.add_trace(go.Bar(
            x=[None], y=[None], name="failed (red, crossed)", orientation="h",
            marker={"color": "white", "line": {"color": ERROR_RED, "width": 2.5},
                    "pattern": {"shape": "x", "fgcolor": ERROR_RED}},
        ))  # fmt: skip
    n_failed = int(sum(_failed(d) for _, d in graph.nodes(data=True)))
    title += (f"<br><sup>{graph.number_of_nodes():,} events over {human_duration(span_s)}, "
              f"{len(agents)} agents, {n_failed} failed, "
              f"{sum(1 for n in graph.nodes if n in marks):,} with findings</sup>")  # fmt: skip
    if len(df) < total:
        title += (f"<br><sup>showing {len(df):,} of {total:,} rows: those with findings or "
                  "errors and what encloses them, then the first in tree order</sup>")  # fmt: skip
    height = int(max(300, 22 * len(df) + 170))
    style(fig, title, f"time since the trace started ({unit})", None, height=height)
    # Names in a left-aligned column, indented by depth: tick labels are right-aligned, which
    # hides nesting, so each name is an annotation placed in pixels from the plot's left edge.
    longest = max((len(t) for t in df["label"].str.replace(r"&[a-z#0-9]+;", "_", regex=True)),
                  default=4)  # fmt: skip
    left = int(min(7 * longest + INDENT_PX * int(df["depth"].max()) + 24, 420))
    # one layout update for all names: an add_annotation per row copies the list each time
    names = [
        {"text": label, "x": 0, "xref": "paper", "y": row, "yref": "y", "xanchor": "left",
         "showarrow": False, "xshift": -left + 6 + INDENT_PX * int(depth), "align": "left",
         "font": {"size": 11, "color": ERROR_RED if failed else "#222222"}}
        for row, depth, label, failed in zip(df["row"], df["depth"], df["label"], df["failed"],
                                             strict=True)
    ]  # fmt: skip
    fig.update_layout(annotations=names)
    fig.update_layout(barmode="overlay", bargap=0.2, legend={"title": {"text": "agent"}},
                      margin={"l": left, "t": 90})  # fmt: skip
    fig.update_yaxes(
        showticklabels=False, autorange="reversed", zeroline=False, showgrid=False,
        range=[len(df) - 0.5, -0.5],
    )  # fmt: skip
    fig.update_xaxes(rangemode="tozero", zeroline=False, automargin=True)
    if not marks:
        note(fig, "No findings and no failed spans in this trace.", y=-40 / height)
    return fig


def transcript(graph: nx.DiGraph, findings: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per event of a trace in time order, with its full content: a chat log read as
    a conversation, a span trace as a list of steps.

    Nothing is escaped here (a DataFrame holds data); whatever renders it as HTML escapes it.

    Args:
        graph: from :func:`toolkit.event_graph`.
        findings: a :func:`toolkit.findings` table (rows of other traces are ignored).

    Returns:
        Columns ``step`` (1, 2, ... in time order), ``time`` (UTC), ``offset`` (since the first
        event, human units), ``agent``, ``addressee``, ``kind``, ``name`` (span name, else
        type), ``status``, ``duration`` (human units), ``findings`` (kinds, ``; ``-joined),
        ``content``, ``event_id``.
    """
    if graph.number_of_nodes() == 0:
        return pd.DataFrame(columns=TRANSCRIPT_COLUMNS)
    marks = marks_by_event(graph, findings, graph.graph.get("trace_id"))

    def key(n: Any) -> tuple:
        t = _ts(graph.nodes[n].get("ts"))
        return (t is None, t or pd.Timestamp(0, tz="UTC"), graph.nodes[n].get("seq") or 0, str(n))

    order = sorted(graph.nodes, key=key)
    times = [_ts(graph.nodes[n].get("ts")) for n in order]
    first = next((t for t in times if t is not None), None)
    rows = []
    for step, (n, t0) in enumerate(zip(order, times, strict=True), 1):
        d = graph.nodes[n]
        t1 = _ts(d.get("end_ts"))
        rows.append({
            "step": step, "time": t0,
            "offset": human_duration((t0 - first).total_seconds()) if t0 and first else "—",
            "agent": d.get("source"), "addressee": d.get("target"), "kind": d.get("kind"),
            "name": _label(d), "status": d.get("status"),
            "duration": human_duration((t1 - t0).total_seconds()) if t0 and t1 else "—",
            "findings": "; ".join(k for k, _ in marks.get(n, [])), "content": d.get("content"),
            "event_id": n,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=TRANSCRIPT_COLUMNS)
