"""Findings: counts of each kind per system and over time; unhandled events by type and target."""

from __future__ import annotations

import duckdb
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from toolkit.analyze.findings import FINDING_KINDS, findings, with_event_context
from toolkit.analyze.flow import unhandled_events
from toolkit.viz._common import PALETTE, colour_map, empty_figure, esc, note, style
from toolkit.viz.timeline import utc_naive

KIND_COLOURS = {
    "unhandled": "#D55E00", "hang": "#CC79A7", "missing_terminal": "#882255",
    "idempotency_violation": "#E69F00", "duplicate": "#56B4E9", "late": "#0072B2",
    "out_of_order": "#009E73", "escalation": "#999933", "error": "#C00000",
}  # fmt: skip
_BUCKETS = [("1s", "second"), ("1min", "minute"), ("10min", "10 minutes"), ("1h", "hour"),
            ("1D", "day"), ("7D", "week")]  # fmt: skip
MAX_SYSTEMS = 12
MAX_TIME_PANELS = 6


def _bucket(ts: pd.Series) -> tuple[pd.Series, str]:
    """Time buckets giving at most about 60 bars over the span, and the bucket's name."""
    t = utc_naive(ts.dropna())
    span = (t.max() - t.min()) if len(t) else pd.Timedelta(0)
    for freq, label in _BUCKETS:
        if span / pd.Timedelta(freq) <= 60:
            return utc_naive(ts).dt.floor(freq), label
    return utc_naive(ts).dt.to_period("M").dt.start_time, "month"


def _count_axes(fig: go.Figure, rows: pd.DataFrame, key: str) -> None:
    """Whole-number ticks on the count axes when the counts are small."""
    if rows.groupby(key).size().max() <= 10:
        fig.update_xaxes(dtick=1, row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=2, col=1)


def _over_time(fig: go.Figure, rows: pd.DataFrame, key: str, colours: dict, row: int) -> str:
    timed = rows[rows["ts"].notna()]
    if timed.empty:
        fig.add_annotation(text="nothing to place in time here", x=0.5, y=0.5,
                           xref=f"x{row} domain", yref=f"y{row} domain", showarrow=False,
                           font={"color": "#555555"})  # fmt: skip
        return "time bucket"
    bucket, label = _bucket(timed["ts"])
    counts = timed.assign(bucket=bucket.to_numpy()).groupby(["bucket", key]).size()
    for k in colours:
        if k in counts.index.get_level_values(key):
            part = counts.xs(k, level=key)
            fig.add_trace(go.Bar(
                x=part.index, y=part.to_numpy(), name=esc(k, 32), legendgroup=str(k),
                showlegend=False, marker_color=colours[k],
                hovertemplate="%{x}<br>%{y} " + esc(k, 32) + "<extra></extra>",
            ), row=row, col=1)  # fmt: skip
    return label


def plot_findings(data: pd.DataFrame | duckdb.DuckDBPyConnection) -> go.Figure:
    """Counts of each finding kind per system (top) and over time, one panel per system
    binned to that system's own time span (stacked bars).

    Args:
        data: a connection (runs :func:`toolkit.findings` and joins system and event time), or
            a :func:`toolkit.findings` table, best with ``system`` and ``ts`` columns (see
            :func:`toolkit.analyze.findings.with_event_context`); without them all rows count
            as one system and the time panel says it has no times.

    Returns:
        A plotly figure.
    """
    title = "Event-flow findings by kind"
    if isinstance(data, duckdb.DuckDBPyConnection):
        rows = with_event_context(data, findings(data))
    else:
        rows = data.copy()
    if rows.empty:
        return empty_figure(title, "No findings: the event flow never snapped in scope.")
    if "system" not in rows.columns:
        rows["system"] = "(all)"
    if "ts" not in rows.columns:
        rows["ts"] = pd.NaT
    rows["system"] = rows["system"].fillna("(unknown)")
    kinds = [k for k in FINDING_KINDS if k in set(rows["kind"])]
    kinds += sorted(set(rows["kind"]) - set(kinds))
    colours = {k: KIND_COLOURS.get(k, PALETTE[i % len(PALETTE)]) for i, k in enumerate(kinds)}
    top = rows["system"].value_counts().head(MAX_SYSTEMS).index
    # one time panel per system, each binned to that system's own span: systems recorded years
    # apart would otherwise share month-wide bins
    timed = rows[rows["ts"].notna()]
    # a system whose findings fall in one or two bins says nothing over time: no panel for it
    spread = [s for s in timed["system"].value_counts().index
              if _bucket(timed.loc[timed["system"] == s, "ts"])[0].nunique() >= 3]  # fmt: skip
    over: list = spread[:MAX_TIME_PANELS] or [None]
    heights = [28 * len(top) + 90] + [150] * len(over)
    gap = 90
    total = sum(heights) + gap * len(over)
    fig = make_subplots(
        rows=1 + len(over), cols=1, vertical_spacing=gap / total,
        row_heights=[h / sum(heights) for h in heights],
        subplot_titles=["per system"] + [
            "over time: no system's findings spread over three time bins" if s is None
            else f"over time: {esc(s, 40)}"
            for s in over],
    )  # fmt: skip
    counts = rows[rows["system"].isin(top)].groupby(["system", "kind"]).size()
    for k in kinds:
        part = counts[counts.index.get_level_values("kind") == k].droplevel("kind").reindex(top)
        fig.add_trace(go.Bar(
            y=[esc(s, 30) for s in top], x=part.fillna(0).to_numpy(), orientation="h",
            name=esc(k, 32), legendgroup=str(k), marker_color=colours[k],
            text=[int(v) if v == v and v else "" for v in part], textposition="inside",
            hovertemplate="%{y}: %{x} " + esc(k, 32) + "<extra></extra>",
        ), row=1, col=1)  # fmt: skip
    for i, s in enumerate(over, 2):
        part = rows.iloc[0:0] if s is None else timed[timed["system"] == s]
        label = _over_time(fig, part, "kind", colours, i)
        fig.update_xaxes(title_text="time (UTC)" if i == len(over) + 1 else None, row=i, col=1)
        fig.update_yaxes(title_text=f"per {label}", rangemode="tozero", row=i, col=1)
    if rows.groupby("system").size().max() <= 10:
        fig.update_xaxes(dtick=1, row=1, col=1)
    fig.update_layout(barmode="stack", legend={"title": {"text": "finding kind"}})
    fig.update_xaxes(title_text="findings (count)", row=1, col=1)
    fig.update_yaxes(title_text="system", autorange="reversed", row=1, col=1)
    n_traces = rows["trace_id"].nunique()
    style(fig, f"{title}: {len(rows):,} findings in {n_traces:,} traces",
          height=int(total + 150))  # fmt: skip
    if len(spread) > MAX_TIME_PANELS:
        note(fig, f"time panels: the {MAX_TIME_PANELS} systems with most findings",
             y=-60 / total)  # fmt: skip
    if rows["system"].nunique() > MAX_SYSTEMS:
        note(fig, f"top panel: the {MAX_SYSTEMS} systems with most findings", y=-0.06)
    return fig


def plot_unhandled(data: pd.DataFrame | duckdb.DuckDBPyConnection, *, top: int = 15) -> go.Figure:
    """Unhandled events: by type and by the addressee that never reacted, and over time.

    Args:
        data: a connection (runs :func:`toolkit.unhandled_events`) or its table.
        top: the most event types shown.

    Returns:
        A plotly figure.
    """
    title = "Unhandled events"
    rows = unhandled_events(data) if isinstance(data, duckdb.DuckDBPyConnection) else data.copy()
    if rows.empty:
        return empty_figure(title, "No unhandled events: every event expected to be handled was.")
    rows["target"] = rows["target"].fillna("(no target)")
    types = rows["type"].value_counts().head(top).index
    rows = rows[rows["type"].isin(types)]
    colours = colour_map(rows["target"], "agent")
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.18, row_heights=[0.5, 0.5],
                        subplot_titles=["by event type and addressee (who never reacted)",
                                        "over time, by addressee"])  # fmt: skip
    counts = rows.groupby(["target", "type"]).size()
    for t in colours:
        part = counts.xs(t, level="target").reindex(types)
        fig.add_trace(go.Bar(
            y=[esc(x, 32) for x in types], x=part.fillna(0).to_numpy(), orientation="h",
            name=esc(t, 32), legendgroup=str(t), marker_color=colours[t],
            hovertemplate="%{y} → " + esc(t, 32) + ": %{x}<extra></extra>",
        ), row=1, col=1)  # fmt: skip
    label = _over_time(fig, rows, "target", colours, 2)
    _count_axes(fig, rows, "type")
    fig.update_layout(barmode="stack", legend={"title": {"text": "addressee (target)"}})
    fig.update_xaxes(title_text="unhandled events (count)", row=1, col=1)
    fig.update_yaxes(title_text="event type", autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text="time (UTC)", row=2, col=1)
    fig.update_yaxes(title_text=f"unhandled per {label}", row=2, col=1)
    style(fig, f"{title}: {len(rows):,} in {rows['trace_id'].nunique():,} traces",
          height=int(520 + 28 * len(types)))  # fmt: skip
    return fig
