"""What every chart shares: the palette, escaping of trace text, empty charts, saving."""

from __future__ import annotations

import html
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

# Okabe-Ito: distinguishable with the common colour-vision deficiencies. Black is kept for marks
# that must stand out (findings), so it is not in the categorical cycle.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"]
# Plotly's "Safe" (Paul Tol / CARTO), for when more categories are needed.
SAFE = ["#88CCEE", "#CC6677", "#DDCC77", "#117733", "#332288", "#AA4499", "#44AA99", "#999933",
        "#882255", "#661100", "#6699CC", "#888888"]  # fmt: skip
PALETTE = OKABE_ITO + SAFE
SEQUENTIAL = "Cividis"  # designed for colour-vision deficiencies
MARK = "#000000"
CATEGORY_COLOURS = {"FC1": "#0072B2", "FC2": "#E69F00", "FC3": "#009E73"}

# One symbol per finding kind (plotly marker symbols), drawn as an outline over the event.
FINDING_SYMBOLS = {
    "unhandled": "circle-open",
    "hang": "hourglass",
    "missing_terminal": "star-open",
    "idempotency_violation": "square-x-open",
    "duplicate": "square-open",
    "late": "triangle-right-open",
    "out_of_order": "triangle-left-open",
    "escalation": "diamond-open",
    "error status": "x-thin-open",
}
ERROR_STATUSES = ("error", "timeout", "failed", "failure", "cancelled")
BROWSER = "/usr/bin/chromium"


def esc(value: Any, limit: int | None = None) -> str:
    """Text from a trace, safe to show in plotly labels and HTML.

    Truncates (before escaping, so no entity is cut), folds whitespace and HTML-escapes. Plotly
    renders hover text, titles and tick labels as a subset of HTML, so trace text (LLM output)
    must never reach it raw.
    """
    if value is None or (not isinstance(value, str | bytes) and pd.isna(value)):
        return ""
    text = " ".join(str(value).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=True)


# Colours handed out so far, per domain ("agent", "type", ...): one key keeps its colour in
# every chart drawn in this process (a report, a notebook), whatever else each chart shows.
_ASSIGNED: dict[str, dict[str, str]] = {}


def _slot(key: str) -> int:
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % len(PALETTE)


def colour_of(key: Any, domain: str = "agent") -> str:
    """The colour of one key in a domain, the same in every chart of this process.

    A key's first choice is a slot from a hash of its name (so it does not depend on which other
    keys a chart shows or in what order charts are drawn); when another key of the domain holds
    that slot, the next free slot is taken. Beyond the palette's 19 colours, keys share slots.
    """
    name = "(none)" if key is None or (not isinstance(key, str) and pd.isna(key)) else str(key)
    given = _ASSIGNED.setdefault(domain, {})
    if name not in given:
        used = set(given.values())
        first = _slot(name)
        free = [PALETTE[(first + i) % len(PALETTE)] for i in range(len(PALETTE))]
        given[name] = next((c for c in free if c not in used), PALETTE[first])
    return given[name]


def colour_map(keys: Iterable[Any], domain: str = "agent") -> dict[Any, str]:
    """A colour per key, stable across charts (see :func:`colour_of`); keys handed out in
    sorted order, so one chart drawn alone always gets the same colours."""
    return {k: colour_of(k, domain) for k in sorted(set(keys), key=str)}


def human_duration(seconds: float | None) -> str:
    """A duration in the unit a reader expects: 850 µs, 12.3 ms, 4.2 s, 3.5 min, 2.1 h, 6.0 d."""
    if seconds is None or pd.isna(seconds):
        return "—"
    s = float(seconds)
    if s == 0:
        return "0 s"
    sign, s = ("-" if s < 0 else ""), abs(s)
    for limit, unit, size in ((1e-3, "µs", 1e-6), (1, "ms", 1e-3), (60, "s", 1.0),
                              (3600, "min", 60.0), (86400, "h", 3600.0)):  # fmt: skip
        if s < limit:
            value = s / size
            return f"{sign}{value:.0f} {unit}" if value >= 100 else f"{sign}{value:.3g} {unit}"
    return f"{sign}{s / 86400:,.1f} d"


def style(
    fig: go.Figure, title: str, x_title: str | None = None, y_title: str | None = None,
    *, height: int | None = None,
) -> go.Figure:  # fmt: skip
    """Apply the house layout: white template, title, axis titles, readable margins."""
    fig.update_layout(
        template="plotly_white",
        title={"text": title, "x": 0.01, "xanchor": "left"},
        font={"family": "Arial, Helvetica, sans-serif", "size": 12},
        margin={"l": 70, "r": 30, "t": 80, "b": 60},
        hoverlabel={"align": "left"},
        legend={"itemsizing": "constant"},
    )
    if height:
        fig.update_layout(height=height)
    if x_title is not None:
        fig.update_layout(xaxis_title=x_title)
    if y_title is not None:
        fig.update_layout(yaxis_title=y_title)
    return fig


def empty_figure(title: str, message: str = "No data to show.") -> go.Figure:
    """An empty chart that says why it is empty."""
    fig = go.Figure()
    fig.add_annotation(
        text=esc(message), x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
        font={"size": 16, "color": "#555555"},
    )  # fmt: skip
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return style(fig, title, height=320)


def note(fig: go.Figure, text: str, *, y: float = -0.12) -> go.Figure:
    """A small grey note under the plot area (sampling, caps, missing data)."""
    fig.add_annotation(
        text=text, x=0, y=y, xref="paper", yref="paper", xanchor="left", yanchor="top",
        showarrow=False, font={"size": 11, "color": "#555555"}, align="left",
    )  # fmt: skip
    return fig


def log_axis_needed(values: Iterable[float], ratio: float = 100.0) -> bool:
    """Whether positive values span more than ``ratio`` (then a log axis reads better)."""
    s = pd.Series(list(values), dtype="float64")
    s = s[s > 0]
    return len(s) > 1 and s.max() / s.min() > ratio


def save_figure(
    fig: go.Figure, path: str | os.PathLike[str], *, width: int | None = None,
    height: int | None = None, scale: float = 2.0,
) -> Path:  # fmt: skip
    """Write a figure to PNG, SVG, PDF (kaleido with the system Chromium) or HTML.

    HTML embeds plotly.js, so the file opens without a network. For images, ``BROWSER_PATH``
    is pointed at ``/usr/bin/chromium`` unless already set.

    Args:
        fig: the figure.
        path: the output file; its suffix picks the format.
        width: in layout pixels; default the figure's width, else 1100.
        height: in layout pixels; default the figure's height, else 600.
        scale: pixel density of raster images.

    Returns:
        The path written.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in (".html", ".htm"):
        fig.write_html(out, include_plotlyjs=True, full_html=True)
        return out
    if "BROWSER_PATH" not in os.environ and Path(BROWSER).exists():
        os.environ["BROWSER_PATH"] = BROWSER
    width = width or fig.layout.width or 1100
    height = height or fig.layout.height or 600
    fig.write_image(out, width=width, height=height, scale=scale)
    return out
