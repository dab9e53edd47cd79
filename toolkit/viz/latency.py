"""Latency: distributions per type or agent, the slowest traces, and a percentile table."""

from __future__ import annotations

import math
from typing import Literal

import duckdb
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from toolkit.analyze.latency import latency, latency_distribution, latency_samples
from toolkit.viz._common import OKABE_ITO, empty_figure, esc, log_axis_needed, note, style

Measure = Literal["reaction", "duration", "end_to_end"]
By = Literal["type", "source", "handler"]
SLOW = "#D55E00"  # vermillion: the slowest traces
LABELS = {"reaction": "reaction latency (child time − parent time)",
          "duration": "event duration (end − start)", "end_to_end": "trace duration"}  # fmt: skip
MAX_TRACE_POINTS = 2000  # beyond this many traces, their durations are drawn as a box only


def _trace_box(durations: pd.Series) -> go.Box:
    """Trace durations as a box: every trace a point up to ``MAX_TRACE_POINTS`` traces, beyond
    that only the quartiles and whiskers (a point per trace would make a report of 100k traces
    slow to open and the points would hide each other anyway)."""
    style = {"name": "all traces", "orientation": "h", "line": {"color": OKABE_ITO[0]},
             "hoverinfo": "x", "showlegend": False}  # fmt: skip
    if len(durations) <= MAX_TRACE_POINTS:
        return go.Box(x=durations, boxpoints="all", jitter=0.4, pointpos=0,
                      marker={"color": OKABE_ITO[0], "size": 4, "opacity": 0.5}, **style)  # fmt: skip
    q = durations.quantile([0.05, 0.25, 0.5, 0.75, 0.95])
    return go.Box(
        y=["all traces"], q1=[q[0.25]], median=[q[0.5]], q3=[q[0.75]], lowerfence=[q[0.05]],
        upperfence=[q[0.95]], **(style | {"hoverinfo": "x+y"}),
    )  # fmt: skip


def plot_latency(
    data: pd.DataFrame | duckdb.DuckDBPyConnection, *, measure: Measure = "reaction",
    by: By = "type", traces: pd.DataFrame | None = None, top: int = 20, slowest: int = 5,
) -> go.Figure:  # fmt: skip
    """Latency distributions per key, the slowest traces, and a percentile table.

    With a connection, the boxes are drawn from quartiles computed in DuckDB (whiskers at the
    5th and 95th percentiles, a dot at the maximum), and the measurements from the ``slowest``
    traces are overlaid in vermillion. With a :func:`toolkit.latency` table only, each key gets
    its p50-p99 range with markers at the percentiles. The x axis turns logarithmic when the
    values span more than two orders of magnitude. Trace durations are a point per trace up to
    ``MAX_TRACE_POINTS`` traces, beyond that a box of their quartiles.

    Args:
        data: a connection, or a :func:`toolkit.latency` table.
        measure: ``reaction``, ``duration`` or ``end_to_end``.
        by: the grouping (``type``, ``source``, ``handler``), as in :func:`toolkit.latency`.
        traces: with a table, ``toolkit.latency(con, by="trace")`` for the slowest-traces panel.
        top: the most keys shown (highest p95 first).
        slowest: how many of the slowest traces to highlight.

    Returns:
        A plotly figure.
    """
    title = f"Latency: {LABELS[measure]}" + (f" by {by}" if measure != "end_to_end" else "")
    con = data if isinstance(data, duckdb.DuckDBPyConnection) else None
    if con is not None:
        pct = latency(con, by=by)
        traces = latency(con, by="trace")
    else:
        pct = data
    pct = pct[pct["measure"] == measure].sort_values("p95_ms", ascending=False).head(top)
    if pct.empty:
        return empty_figure(title, f"No {measure.replace('_', '-')} measurements in scope.")
    per_trace = pd.DataFrame(columns=["key", "max_ms"])
    if traces is not None and not traces.empty:
        per_trace = traces[traces["measure"] == "end_to_end"]
    slow = per_trace.sort_values("max_ms", ascending=False).head(slowest)
    keys = list(pct["key"].fillna("(none)"))
    labels = [esc(k, 36) for k in keys]
    n_rows = len(pct)
    panels = [30 * n_rows + 60, 170, 23 * (n_rows + 1) + 10]  # pixels per panel
    height = sum(panels) + 420
    fig = make_subplots(
        rows=3, cols=1, vertical_spacing=120 / height,
        specs=[[{"type": "xy"}], [{"type": "xy"}], [{"type": "table"}]],
        row_heights=[p / sum(panels) for p in panels],
        subplot_titles=[f"distribution per {by if measure != 'end_to_end' else 'system'}",
                        f"trace durations; the {len(slow)} slowest highlighted",
                        "percentiles (ms)"],
    )  # fmt: skip
    values = list(pct["p50_ms"]) + list(pct["max_ms"]) + list(per_trace["max_ms"])
    log = log_axis_needed(values)
    if con is not None:
        stats = latency_distribution(con, measure=measure, by=by).set_index("key").reindex(keys)
        fig.add_trace(go.Box(
            y=labels, q1=stats["q25"], median=stats["q50"], q3=stats["q75"],
            lowerfence=stats["q05"], upperfence=stats["q95"], orientation="h",
            name="p5 · p25 · p50 · p75 · p95", marker_color=OKABE_ITO[0], fillcolor="#cfe3f3",
            hoverinfo="x+y",
        ), row=1, col=1)  # fmt: skip
        fig.add_trace(go.Scatter(
            x=stats["mx"], y=labels, mode="markers", name="maximum",
            marker={"symbol": "line-ns-open", "size": 12, "color": "#333333"},
            hovertext=[f"{esc(k)}: max {v:,.1f} ms over {n:,} measurements"
                       for k, v, n in zip(keys, stats["mx"], stats["n"], strict=True)],
            hoverinfo="text",
        ), row=1, col=1)  # fmt: skip
        if len(slow):
            pts = latency_samples(con, measure=measure, by=by, trace_ids=list(slow["key"]))
            pts = pts[pts["key"].isin(keys)]
            fig.add_trace(go.Scatter(
                x=pts["ms"], y=[esc(k, 36) for k in pts["key"]], mode="markers",
                name=f"in the {len(slow)} slowest traces",
                marker={"color": SLOW, "size": 8, "symbol": "diamond",
                        "line": {"color": "white", "width": 0.5}},
                hovertext=[f"trace {esc(t, 40)}<br>{esc(k)}: {v:,.1f} ms"
                           for t, k, v in zip(pts["trace_id"], pts["key"], pts["ms"], strict=True)],
                hoverinfo="text",
            ), row=1, col=1)  # fmt: skip
        nonpos = int(stats["nonpos"].fillna(0).sum())
    else:
        nonpos = 0
        fig.add_trace(go.Scatter(
            x=[v for lo, hi in zip(pct["p50_ms"], pct["p99_ms"], strict=True) for v in (lo, hi, None)],
            y=[v for lab in labels for v in (lab, lab, None)], mode="lines",
            line={"color": "#cfe3f3", "width": 8}, name="p50 to p99", hoverinfo="skip",
        ), row=1, col=1)  # fmt: skip
        for col, sym, colour in (("p50_ms", "circle", OKABE_ITO[0]), ("p95_ms", "diamond", OKABE_ITO[1]),
                                 ("max_ms", "line-ns-open", "#333333")):  # fmt: skip
            fig.add_trace(go.Scatter(
                x=pct[col], y=labels, mode="markers", name=col.replace("_ms", ""),
                marker={"symbol": sym, "size": 10, "color": colour}, hoverinfo="x+y+name",
            ), row=1, col=1)  # fmt: skip
    if per_trace.empty:
        fig.add_annotation(text="no per-trace durations given", xref="x2 domain", yref="y2 domain",
                           x=0.5, y=0.5, showarrow=False, font={"color": "#555555"})  # fmt: skip
    else:
        fig.add_trace(_trace_box(per_trace["max_ms"]), row=2, col=1)
        fig.add_trace(go.Scatter(
            x=slow["max_ms"], y=["all traces"] * len(slow), mode="markers", showlegend=False,
            marker={"color": SLOW, "size": 11, "symbol": "diamond"},
            hovertext=[f"trace {esc(k)}: {v:,.1f} ms" for k, v in zip(slow["key"], slow["max_ms"], strict=True)],
            hoverinfo="text",
        ), row=2, col=1)  # fmt: skip
        for i, (k, v) in enumerate(zip(slow["key"], slow["max_ms"], strict=True)):
            # staggered above and below, so that close neighbours stay legible
            fig.add_annotation(
                x=math.log10(v) if log and v > 0 else v, y="all traces", xref="x2", yref="y2",
                text=esc(k, 18), font={"size": 10, "color": SLOW}, showarrow=True, arrowwidth=1,
                arrowcolor=SLOW, ax=0, ay=(-1) ** i * (22 + 15 * (i // 2)), standoff=6,
            )  # fmt: skip
    cols = ["count", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"]
    fig.add_trace(go.Table(
        header={"values": [f"<b>{by if measure != 'end_to_end' else 'system'}</b>", "<b>n</b>",
                           "<b>p50</b>", "<b>p90</b>", "<b>p95</b>", "<b>p99</b>", "<b>max</b>"],
                "fill_color": "#e8eef4", "align": "left"},
        cells={"values": [labels] + [[f"{v:,.0f}" if c == "count" else f"{v:,.1f}" for v in pct[c]]
                                     for c in cols], "align": ["left"] + ["right"] * 6, "height": 22},
        columnwidth=[3, 1, 1, 1, 1, 1, 1],
    ), row=3, col=1)  # fmt: skip
    unit = "milliseconds" + (", log scale" if log else "")
    fig.update_xaxes(type="log" if log else "linear", title_text=f"{LABELS[measure]} ({unit})",
                     row=1, col=1)  # fmt: skip
    fig.update_xaxes(type="log" if log else "linear", title_text=f"trace duration ({unit})",
                     row=2, col=1)  # fmt: skip
    fig.update_yaxes(autorange="reversed", title_text=by if measure != "end_to_end" else "system",
                     row=1, col=1)  # fmt: skip
    fig.update_yaxes(showticklabels=False, row=2, col=1)
    if len(per_trace) > MAX_TRACE_POINTS:
        aggregated = f" ({len(per_trace):,} traces: quartiles, whiskers at p5 and p95, no points)"
        fig.layout.annotations[1].text += aggregated
    style(fig, title, height=height)
    fig.update_layout(legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right",
                              "yanchor": "bottom"})  # fmt: skip
    if log and nonpos:
        note(fig, f"{nonpos} measurements ≤ 0 ms (e.g. clock skew) cannot show on the log axis",
             y=-0.02)  # fmt: skip
    return fig
