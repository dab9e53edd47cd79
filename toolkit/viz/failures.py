"""MAST failure breakdown: category -> mode, per system / framework / model."""

from __future__ import annotations

import re
from typing import Literal

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from toolkit.viz._common import CATEGORY_COLOURS, PALETTE, empty_figure, esc, note, style

BREAKDOWN_COLUMNS = ["group", "category", "category_name", "mode", "mode_name", "traces", "flags",
                     "trace_share", "flag_share", "assessed"]  # fmt: skip
BASIS = {
    "traces": ("trace_share", "traces", "share of traces (traces flagged with the mode ÷ traces assessed)"),
    "flags": ("flag_share", "flags", "share of flags (annotations of the mode ÷ all annotations)"),
}  # fmt: skip


def _mode_key(mode: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", str(mode))) or (999,)


def _colour(category: str, i: int) -> str:
    return CATEGORY_COLOURS.get(str(category), PALETTE[(i + 3) % len(PALETTE)])


def _assessed_traces(part: pd.DataFrame) -> int | None:
    """Traces assessed in a group, recovered from a nonzero trace share (None if unknown)."""
    ok = part[part["assessed"].astype(bool) & (part["trace_share"] > 0)]
    return round(float(ok["traces"].iloc[0] / ok["trace_share"].iloc[0])) if len(ok) else None


def plot_failure_breakdown(
    breakdown: pd.DataFrame, kind: Literal["bar", "sunburst"] = "bar", *,
    basis: Literal["traces", "flags"] = "traces", max_groups: int = 4,
) -> go.Figure:  # fmt: skip
    """MAST failure modes, category → mode, per group, as in the MAST paper.

    ``bar``: one panel per group, a bar per mode coloured by category, labelled with its share
    and count. ``sunburst``: group → category → mode, sized by traces flagged or flags. Modes
    that were not assessed (``assessed`` false) are written "not assessed", never drawn as 0.

    Args:
        breakdown: from ``toolkit.failure_breakdown``, columns ``group``, ``category``,
            ``category_name``, ``mode``, ``mode_name``, ``traces``, ``flags``,
            ``trace_share``, ``flag_share`` (0-1), ``assessed``.
        kind: ``bar`` or ``sunburst``.
        basis: ``traces`` (share of traces flagged) or ``flags`` (share of all flags).
        max_groups: the most groups shown (those with most flags; the chart says when cut).

    Returns:
        A plotly figure.
    """
    share_col, count_col, basis_text = BASIS[basis]
    title = f"MAST failure modes by category → mode<br><sup>{basis_text}</sup>"
    if breakdown is None or breakdown.empty:
        return empty_figure(title, "No failure classification yet: the annotations table is empty.")
    df = breakdown.copy()
    df["assessed"] = df["assessed"].fillna(False).astype(bool)
    df["_order"] = df["mode"].map(_mode_key)
    df = df.sort_values(["_order", "group"], kind="stable")
    totals = df.groupby("group", sort=False)["flags"].sum().sort_values(ascending=False)
    groups = list(totals.index[:max_groups])
    if "all" in groups:
        groups.insert(0, groups.pop(groups.index("all")))
    df = df[df["group"].isin(groups)]
    footnotes: list[str] = []
    if kind == "sunburst":
        fig, footnotes = _sunburst(df, groups, share_col, count_col, basis)
    else:
        fig = _bars(df, groups, share_col, count_col, basis)
    style(fig, title, height=fig.layout.height)
    if len(totals) > len(groups):
        footnotes.append(f"showing the {len(groups)} groups with most flags of {len(totals)}")
    if kind == "bar":  # the title at the top, then the legend, then the two-line panel titles
        fig.update_layout(margin={"t": 175, "b": 70},
                          title={"y": 1 - 12 / fig.layout.height, "yanchor": "top"})  # fmt: skip
        if footnotes:
            note(fig, "<br>".join(footnotes), y=-45 / fig.layout.height)
    elif footnotes:  # a line each, so that none runs off a narrow chart
        fig.update_layout(margin={"b": 30 + 16 * len(footnotes)})
        note(fig, "<br>".join(footnotes), y=-0.01)
    return fig


def _bars(df: pd.DataFrame, groups: list, share_col: str, count_col: str, basis: str) -> go.Figure:
    modes = df.drop_duplicates("mode")
    labels = {
        m: esc(f"{m} {n}", 48) for m, n in zip(modes["mode"], modes["mode_name"], strict=True)
    }
    order = list(labels.values())
    titles = []
    for g in groups:
        n = _assessed_traces(df[df["group"] == g])
        titles.append(esc(g, 22) + (f"<br>n = {n:,} traces" if n and basis == "traces" else ""))
    # Two panels a row at most: four side by side overlapped at notebook width (900 px).
    n_cols = min(2, len(groups))
    n_rows = -(-len(groups) // n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols, shared_yaxes=True, horizontal_spacing=0.06,
                        vertical_spacing=70 / (n_rows * (30 * len(order) + 70)),
                        subplot_titles=titles)  # fmt: skip
    top = (
        float(df.loc[df["assessed"], share_col].fillna(0).max() if df["assessed"].any() else 0)
        * 100
    )
    cats = list(dict.fromkeys(df["category"]))
    in_legend: set = set()
    for i_group, g in enumerate(groups):
        row, col = divmod(i_group, n_cols)
        row, col = row + 1, col + 1
        part = df[df["group"] == g]
        for i, cat in enumerate(cats):
            rows = part[(part["category"] == cat) & part["assessed"]]
            if rows.empty:
                continue
            cname = esc(f"{cat} {rows['category_name'].iloc[0]}", 48)
            fig.add_trace(go.Bar(
                x=rows[share_col] * 100, y=[labels[m] for m in rows["mode"]], orientation="h",
                name=cname, legendgroup=str(cat), showlegend=cat not in in_legend,
                marker_color=_colour(cat, i),
                text=[f"{s:.0%} ({int(c)})" for s, c in zip(rows[share_col], rows[count_col], strict=True)],
                textposition="outside", cliponaxis=False,
                hovertext=[f"<b>{labels[m]}</b><br>{esc(g)}: {s:.1%} ({int(t)} traces, {int(f)} flags)"
                           for m, s, t, f in zip(rows["mode"], rows[share_col], rows["traces"],
                                                 rows["flags"], strict=True)],
                hoverinfo="text",
            ), row=row, col=col)  # fmt: skip
            in_legend.add(cat)
        xref = "x" if i_group == 0 else f"x{i_group + 1}"
        yref = "y" if i_group == 0 else f"y{i_group + 1}"
        for m in part.loc[~part["assessed"], "mode"]:
            fig.add_annotation(x=0, y=labels[m], xref=xref, yref=yref, xanchor="left",
                               text="<i>not assessed</i>", showarrow=False,
                               font={"size": 11, "color": "#777777"})  # fmt: skip
        # room right of the longest bar for its label ("100% (12)")
        # ticks stop at 100%: the room beyond is for labels, not for shares
        ticks = [0, 25, 50, 75, 100] if top > 50 else None
        fig.update_xaxes(range=[0, max(top * 1.6, 5)], row=row, col=col, ticksuffix="%",
                         tickvals=ticks, ticktext=None if ticks is None else [f"{v}%" for v in ticks])  # fmt: skip
    fig.update_yaxes(categoryorder="array", categoryarray=order, autorange="reversed")
    height = int(245 + n_rows * (30 * len(order) + 70))
    fig.update_layout(
        legend={"title": {"text": "category"}, "orientation": "h", "x": 0, "xanchor": "left",
                "y": 1 - 72 / height, "yref": "container", "yanchor": "top"},
        height=height, bargap=0.25,
    )  # fmt: skip
    return fig


def _sunburst(
    df: pd.DataFrame, groups: list, share_col: str, count_col: str, basis: str
) -> tuple[go.Figure, list[str]]:  # fmt: skip
    """The sunburst and its footnotes (the modes not assessed, a line per group)."""
    ids: list[str] = []
    labels: list[str] = []
    parents: list[str] = []
    values: list[float] = []
    colours: list[str] = []
    text: list[str] = []

    def add(node: str, label: str, parent: str, value: float, colour: str, info: str) -> None:
        ids.append(node)
        labels.append(label)
        parents.append(parent)
        values.append(value)
        colours.append(colour)
        text.append(info)

    multi = len(groups) > 1
    skipped = df[~df["assessed"]]
    not_assessed = [
        (f"{esc(g, 24)}: " if multi else "")
        + ", ".join(
            esc(m) for m in sorted(set(skipped.loc[skipped["group"] == g, "mode"]), key=_mode_key)
        )
        for g in groups
        if (skipped["group"] == g).any()
    ]
    live = df[df["assessed"] & (df[count_col] > 0)]
    cats = list(dict.fromkeys(df["category"]))
    for g in groups:
        part = live[live["group"] == g]
        if part.empty:
            continue
        root = f"g:{g}" if multi else ""
        if multi:
            total = float(part[count_col].sum())
            add(root, esc(g, 24), "", total, "#eeeeee", f"{int(total)} {basis}")
        for cat, rows in part.groupby("category", sort=False):
            cid = f"{root}/c:{cat}"
            colour = _colour(cat, cats.index(cat))
            add(
                cid,
                esc(cat),
                root,
                float(rows[count_col].sum()),
                colour,
                esc(rows["category_name"].iloc[0], 40),
            )
            for r in rows.itertuples(index=False):
                add(
                    f"{cid}/m:{r.mode}",
                    esc(r.mode),
                    cid,
                    float(getattr(r, count_col)),
                    colour,
                    f"{esc(r.mode_name, 40)}<br>{getattr(r, share_col):.0%} of {basis}",
                )
    if not ids:
        fig = empty_figure("", "Nothing flagged among the assessed modes.")
    else:
        fig = go.Figure(go.Sunburst(
            ids=ids, labels=labels, parents=parents, values=values, branchvalues="total",
            marker={"colors": colours, "line": {"color": "white", "width": 1}},
            customdata=text, texttemplate="%{label}", hovertemplate=(
                "<b>%{label}</b><br>%{customdata}<br>%{value} " + basis + "<extra></extra>"),
            insidetextorientation="radial",
        ))  # fmt: skip
        fig.update_layout(height=620)
    if not_assessed:
        not_assessed[0] = "not assessed (not shown, not zero): " + not_assessed[0]
    return fig, not_assessed
