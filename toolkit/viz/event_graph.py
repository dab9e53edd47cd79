"""One trace's causal graph, left to right in time, with its findings marked."""

from __future__ import annotations

from typing import Any, Literal

import networkx as nx
import pandas as pd
import plotly.graph_objects as go

from toolkit.viz._common import (
    ERROR_STATUSES,
    FINDING_SYMBOLS,
    MARK,
    colour_map,
    empty_figure,
    esc,
    note,
    style,
)

MAX_LEGEND_SOURCES = 16
MAX_LABELLED = 40  # events: up to this many, each node is labelled with its name or type
MAX_GRID_ROWS = 40  # rows: up to this many, each has its grid line
# The two relations drawn apart (a reaction is the event flow; containment, who did the work)
EDGE_STYLES = [
    ("contains", "contains (runs inside)", {"color": "#bdbdbd", "width": 1}),
    ("causes", "causes (reacts to)", {"color": "#6e6e6e", "width": 1.3}),
    ("collapsed", "over hidden events", {"color": "#9a9a9a", "width": 1, "dash": "dot"}),
]


def _time_key(graph: nx.DiGraph, n: Any) -> tuple:
    d = graph.nodes[n]
    ts = d.get("ts")
    missing = ts is None or (not isinstance(ts, str) and pd.isna(ts))
    return (missing, pd.Timestamp(0, tz="UTC") if missing else ts, d.get("seq") or 0, str(n))


def marks_by_event(
    graph: nx.DiGraph, findings: pd.DataFrame | None, trace_id: str | None = None
) -> dict[Any, list[tuple[str, str]]]:
    """Finding kinds (and details) per event of one trace, plus events with an error status."""
    marks: dict[Any, list[tuple[str, str]]] = {}
    if findings is not None and not findings.empty:
        rows = findings
        if trace_id is not None and "trace_id" in rows.columns:
            rows = rows[rows["trace_id"] == trace_id]
        details = rows["detail"] if "detail" in rows.columns else [""] * len(rows)
        for event_id, kind, detail in zip(rows["event_id"], rows["kind"], details, strict=True):
            if event_id in graph:
                marks.setdefault(event_id, []).append((str(kind), detail))
    for n, d in graph.nodes(data=True):
        if str(d.get("status") or "").lower() in ERROR_STATUSES:
            marks.setdefault(n, []).append(("error status", f"status {d['status']}"))
    return marks


def _keep(graph: nx.DiGraph, order: list, marked: set, limit: int) -> list:
    """At most ``limit`` events: every marked one, the rest sampled evenly in time."""
    if len(order) <= limit:
        return order
    keep = {n for n in order if n in marked}
    rest = [n for n in order if n not in keep]
    room = max(limit - len(keep), 0)
    if room and rest:
        step = len(rest) / room
        keep.update(rest[int(i * step)] for i in range(min(room, len(rest))))
    return [n for n in order if n in keep]


def _layout_parent(graph: nx.DiGraph, n: Any) -> Any:
    """The event ``n`` hangs from in the layout: its enclosing span where it has one (who did
    the work), else what it reacts to."""
    preds = list(graph.predecessors(n))
    if not preds:
        return None
    return next((p for p in preds if graph.edges[p, n].get("kind") == "contains"), preds[0])


def _kept_parent(graph: nx.DiGraph, n: Any, kept: set) -> tuple[Any, bool]:
    """The nearest kept ancestor of ``n`` and whether it is the direct parent."""
    seen, node, direct = {n}, n, True
    while True:
        node = _layout_parent(graph, node)
        if node is None:
            return None, direct
        if node in kept:
            return node, direct
        if node in seen:
            return None, direct
        seen.add(node)
        direct = False


def _lanes(graph: nx.DiGraph, order: list, parent: dict) -> dict:
    """A row per event: chains of reactions run along a row, what runs inside a span sits a row
    below it, and rows are reused once free, so the graph grows as deep as the trace's nesting
    and concurrency, not one row per branch (a span tree drawn a row per branch is a staircase).

    A chain starts at an event and continues through its first reaction (``causes``, in time)
    while there is one; it holds its row from its first event to its last (in ``order``). Each
    chain takes the first row below its parent's that is free over that stretch and one step
    either side (side by side for chains of the same parent; a root chain: the first free row),
    parents before children, earlier siblings first.
    """
    rank = {n: i for i, n in enumerate(order)}
    children: dict[Any, list] = {}
    for n in order:
        if parent.get(n) is not None:
            children.setdefault(parent[n], []).append(n)

    def reacts(n: Any) -> bool:  # to its parent (over hidden events: to the one before it)
        via = _layout_parent(graph, n)
        return via is not None and graph.edges[via, n].get("kind") != "contains"

    rows: dict[Any, int] = {}
    taken: list[list[tuple[int, int, Any]]] = []  # per row: its chains' stretches, parents

    def place(head: Any) -> list:
        chain = [head]
        while True:
            nxt = next((k for k in children.get(chain[-1], [])
                        if k not in rows and k not in chain and reacts(k)), None)  # fmt: skip
            if nxt is None:
                break
            chain.append(nxt)
        lo, hi = rank[chain[0]], rank[chain[-1]]
        p = parent.get(head)
        row = rows[p] + 1 if p in rows else 0
        # siblings may sit side by side; other chains keep a step apart, or they read as one
        while row < len(taken) and any(
            a - (q != p) <= hi and lo <= b + (q != p) for a, b, q in taken[row]
        ):
            row += 1
        if row == len(taken):
            taken.append([])
        taken[row].append((lo, hi, p))
        for n in chain:
            rows[n] = row
        return chain

    roots = [n for n in order if parent.get(n) is None]
    for root in roots + order:  # then whatever a cycle left unreached
        if root in rows:
            continue
        stack = [root]
        while stack:
            head = stack.pop()
            if head in rows:
                continue
            chain = place(head)
            # the branches off the chain, earliest first (the stack pops the last pushed)
            branches = [k for n in chain for k in children.get(n, []) if k not in rows]
            stack.extend(sorted(branches, key=rank.__getitem__, reverse=True))
    return rows


def _label_sides(rows: list[int]) -> list[str]:
    """Text positions of events in time order: above and below by turns along each row."""
    seen: dict[int, int] = {}
    sides = []
    for row in rows:
        seen[row] = seen.get(row, -1) + 1
        sides.append("top center" if seen[row] % 2 == 0 else "bottom center")
    return sides


def _hover(n: Any, d: dict, marks: list[tuple[str, str]]) -> str:
    dur = ""
    if d.get("end_ts") is not None and d.get("ts") is not None:
        dur = f"<br>duration: {(d['end_ts'] - d['ts']).total_seconds() * 1e3:,.1f} ms"
    found = "".join(f"<br><b>⚑ {esc(k)}</b>: {esc(v, 100)}" for k, v in marks)
    return (
        f"<b>{esc(d.get('type'))}</b><br>id: {esc(n, 60)}<br>source: {esc(d.get('source'))}"
        f" → {esc(d.get('target')) or '—'}<br>time: {esc(d.get('ts'))}{dur}"
        f"<br>status: {esc(d.get('status')) or '—'}<br>records: {d.get('records') or 1}"
        f"<br>content: {esc(d.get('content'), 120) or '—'}{found}"
    )


def plot_event_graph(
    graph: nx.DiGraph, findings: pd.DataFrame | None = None, *, max_events: int = 500,
    x: Literal["order", "time"] = "order", y: Literal["auto", "tree", "source"] = "auto",
) -> go.Figure:  # fmt: skip
    """One trace's causal graph, laid out left to right by time.

    Nodes are coloured by source (the same colour per source in every chart) and, up to
    ``MAX_LABELLED`` events, labelled with their span name or type; events with findings (and
    with an error/timeout status) get an outline symbol per kind; hover shows type, source,
    time, status and an escaped preview of the content. Both relations are drawn, apart:
    ``causes`` (reacts to) darker than ``contains`` (runs inside). Above ``max_events``
    events, all events with findings are kept and the others are sampled evenly in time;
    edges then join each event to its nearest kept ancestor (dotted) and the title says so.

    In the ``tree`` layout a chain of reactions runs along a row and what runs inside a span
    sits a row below it; rows are reused once free, so a span tree reads as its nesting
    (agent, turn, model and tool calls) rather than a row per branch.

    Args:
        graph: from :func:`toolkit.event_graph` (node attributes ``type``, ``source``, ``ts``...).
        findings: a :func:`toolkit.findings` table (rows of other traces are ignored).
        max_events: the most events drawn.
        x: ``order`` (rank in time, readable when gaps vary) or ``time`` (UTC).
        y: ``tree`` (reaction chains along rows, nesting downwards), ``source`` (a lane per
            source) or ``auto`` (``source`` for graphs with neither relation: chat logs).

    Returns:
        A plotly figure.
    """
    trace_id = graph.graph.get("trace_id")
    name = esc(trace_id, 60) if trace_id is not None else "(unnamed)"
    title = f"Causal event graph of trace {name}"
    if graph.number_of_nodes() == 0:
        return empty_figure(title, "No events in this trace.")
    marks = marks_by_event(graph, findings, trace_id)
    order = sorted(graph.nodes, key=lambda n: _time_key(graph, n))
    shown = _keep(graph, order, set(marks), max_events)
    kept = set(shown)
    parent, direct = {}, {}
    for n in shown:
        parent[n], direct[n] = _kept_parent(graph, n, kept)
    if y == "auto":
        kinds = {k for *_, k in graph.edges(data="kind")}
        y = "tree" if kinds & {"causes", "contains"} else "source"
    sources = [graph.nodes[n].get("source") or "(none)" for n in shown]
    if y == "tree":
        rows = _lanes(graph, shown, parent)
        ys = [rows[n] for n in shown]
    else:
        lanes = {s: i for i, s in enumerate(dict.fromkeys(sources))}
        ys = [lanes[s] for s in sources]
    if x == "time":  # naive UTC: plotly.js ignores offsets
        xs = [pd.Timestamp(t).tz_convert("UTC").tz_localize(None) if t is not None else None
              for t in (graph.nodes[n].get("ts") for n in shown)]  # fmt: skip
    else:
        xs = list(range(len(shown)))
    pos = {n: (xv, yv) for n, xv, yv in zip(shown, xs, ys, strict=True)}

    fig = go.Figure()
    # every recorded relation between events shown, then the collapsed ones over hidden events
    segments: dict[str, list] = {"causes": [], "contains": [], "collapsed": []}
    for p, n, kind in graph.subgraph(shown).edges(data="kind"):
        segments["contains" if kind == "contains" else "causes"].append((p, n))
    segments["collapsed"] = [
        (parent[n], n) for n in shown if parent[n] is not None and not direct[n]
    ]
    for relation, label, line in EDGE_STYLES:
        if segments[relation]:
            ex: list = []
            ey: list = []
            for p, n in segments[relation]:
                ex += [pos[p][0], pos[n][0], None]
                ey += [pos[p][1], pos[n][1], None]
            fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", name=label, hoverinfo="skip",
                                     line=line))  # fmt: skip
    colours = colour_map(sources)
    size = 11 if len(shown) <= 60 else 8 if len(shown) <= 200 else 6
    labelled = len(shown) <= MAX_LABELLED
    labels = [esc(graph.nodes[n].get("name") or graph.nodes[n].get("type"), 18) for n in shown]
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers+text" if labelled else "markers", name="events",
        showlegend=False, text=labels if labelled else None,
        # above and below by turns along each row, so neighbours on a row do not print over
        # each other (a label on the same side is two of the row's events away)
        textposition=_label_sides(ys),
        textfont={"size": 10, "color": "#333333"},
        marker={"color": [colours[s] for s in sources], "size": size,
                "line": {"color": "white", "width": 0.5}},
        hovertext=[_hover(n, graph.nodes[n], marks.get(n, [])) for n in shown], hoverinfo="text",
    ))  # fmt: skip
    for i, s in enumerate(sorted(colours, key=str)[:MAX_LEGEND_SOURCES]):
        fig.add_trace(go.Scatter(
            x=[None], y=[None], mode="markers", name=esc(s, 30), legendgroup="source",
            legendgrouptitle_text="source" if i == 0 else None,
            marker={"color": colours[s], "size": 10},
        ))  # fmt: skip
    by_kind: dict[str, list] = {}
    for n in shown:
        for kind, _ in marks.get(n, []):
            by_kind.setdefault(kind, []).append(n)
    for i, (kind, nodes) in enumerate(sorted(by_kind.items())):
        fig.add_trace(go.Scatter(
            x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers",
            name=f"{esc(kind)} ({len(nodes)})", legendgroup="finding",
            legendgrouptitle_text="finding" if i == 0 else None,
            marker={"symbol": FINDING_SYMBOLS.get(kind, "circle-open"), "size": size + 9,
                    "color": MARK, "line": {"width": 2, "color": MARK}},
            hovertext=[_hover(n, graph.nodes[n], marks[n]) for n in nodes], hoverinfo="text",
        ))  # fmt: skip
    n_marked = sum(1 for n in graph.nodes if n in marks)
    title += f": {graph.number_of_nodes():,} events, {n_marked:,} with findings"
    if len(shown) < graph.number_of_nodes():
        title += (
            f"<br><sup>showing {len(shown):,} of {graph.number_of_nodes():,} events: every event"
            " with a finding, the rest sampled evenly in time; dotted edges skip hidden events</sup>"
        )
    x_title = "event order (rank by time; hover for the time)" if x == "order" else "time (UTC)"
    y_title = "nesting (a chain of reactions on a row)" if y == "tree" else "source"
    rows_used = (max(ys) + 1) if ys else 1
    legend_rows = min(len(colours), MAX_LEGEND_SOURCES) + len(by_kind) + 5
    height = max(420, 24 * rows_used + 200, 21 * legend_rows + 160)
    style(fig, title, x_title, y_title, height=int(min(height, 1400)))
    if y == "tree":
        fig.update_yaxes(showticklabels=False, autorange="reversed", zeroline=False,
                         dtick=1 if rows_used <= MAX_GRID_ROWS else None)  # fmt: skip
    else:
        fig.update_yaxes(
            tickmode="array", tickvals=list(range(len(lanes))),
            ticktext=[esc(s, 24) for s in lanes], autorange="reversed", zeroline=False,
        )  # fmt: skip
    fig.update_xaxes(zeroline=False)
    if not marks:
        note(fig, "No findings in this trace.", y=-0.08)
    return fig
