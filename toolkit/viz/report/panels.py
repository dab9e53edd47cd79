"""The report's trace panels: for a chosen few traces, a head (outcome, duration, counts), its
findings, span tree, causal graph and transcript, stored packed and drawn when opened."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from toolkit.analyze.graphs import event_graph
from toolkit.viz._common import human_duration
from toolkit.viz.event_graph import plot_event_graph
from toolkit.viz.report.page import figure_spec
from toolkit.viz.report.tables import cell, static_table
from toolkit.viz.trace import plot_waterfall, transcript

SMALL_GRAPH = 80  # events: up to this many, a panel also draws the labelled causal graph
MAX_TRANSCRIPT_ROWS = 400


def panel(
    con: duckdb.DuckDBPyConnection, meta: pd.Series, found: pd.DataFrame, n_found: int
) -> dict[str, Any]:
    """One trace's panel: its HTML (escaped) with a slot per figure, and the figures.

    Args:
        con: the connection.
        meta: the trace's row of :func:`toolkit.traces`.
        found: the findings (of every trace; this one's are picked).
        n_found: how many findings the trace has.

    Returns:
        ``{"html": ..., "figures": [...]}``: each ``<div data-figure="i">`` of the HTML is
        drawn with figure ``i`` (a plotly.js spec).
    """
    tid = str(meta["trace_id"])
    graph = event_graph(con, tid)
    mine = found[found["trace_id"] == tid]
    outcome = cell(meta["outcome"]) or "—"
    rows = [
        ("trace", f"<code>{cell(tid)}</code>"), ("system", cell(meta["system"])),
        ("session", f"<code>{cell(meta['session_id'])}</code>"),
        ("outcome", f'<span class="out-{outcome}">{outcome}</span>'),
        ("task", cell(meta["task"], 600) or "—"),
        ("start", cell(meta["start"])), ("duration", human_duration(meta["duration_s"])),
        ("events", f"{int(meta['events']):,}"), ("agents", f"{int(meta['agents']):,}"),
        ("findings", f"{n_found:,}"),
    ]  # fmt: skip
    head = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    parts = [f'<div class="panel-head"><h3>Trace {cell(tid, 120)}</h3><dl>{head}</dl></div>']
    cols = ["severity", "kind", "event_id", "ts", "detail"]
    parts.append("<h4>Findings</h4>" + static_table(mine[cols], "findings in this trace"))
    timed = any(d.get("ts") is not None for _, d in graph.nodes(data=True))
    figures = [plot_waterfall(graph, found)] if timed else []
    if graph.number_of_nodes() <= SMALL_GRAPH:
        figures.append(plot_event_graph(graph, found))
    parts += [f'<div class="figure" data-figure="{i}"></div>' for i in range(len(figures))]
    steps = transcript(graph, found)
    kinds = set(steps["kind"].dropna())
    what = "Transcript" if kinds <= {"message", "event"} else "Events"
    shown = steps.head(MAX_TRANSCRIPT_ROWS)
    more = (f'<p class="note">Showing the first {len(shown):,} of {len(steps):,} events.</p>'
            if len(steps) > len(shown) else "")  # fmt: skip
    cols = ["step", "offset", "agent", "addressee", "kind", "name", "status", "duration",
            "findings", "content"]  # fmt: skip
    # columns this trace never fills (no times in a chat log, say) only take room
    cols = [c for c in cols if c in ("step", "content")
            or shown[c].replace({"—": None, "": None}).notna().any()]  # fmt: skip
    parts.append(f"<h4>{what}: one row per event, full content</h4>"
                 + static_table(shown[cols], "events", content=("content",)) + more)  # fmt: skip
    return {"html": "\n".join(parts), "figures": [figure_spec(f) for f in figures]}


def pick_panels(
    first_pages: list[str], found: pd.DataFrame, listed: list[str], trace_id: str | None,
    limit: int,
) -> list[str]:  # fmt: skip
    """The traces that get a panel, at most ``limit``: the requested one, the traces on the
    first page of each table (what a reader clicks first), the worst (most errors, then most
    findings), then the others in the trace table's order."""
    rank = found.assign(err=found["severity"].eq("error")).groupby("trace_id").agg(
        err=("err", "sum"), n=("kind", "size"))  # fmt: skip
    worst = rank.sort_values(["err", "n"], ascending=False, kind="stable").index
    wanted = [] if trace_id is None else [trace_id]
    chosen = list(dict.fromkeys([*wanted, *first_pages, *worst[:limit], *listed[:limit]]))
    return [str(t) for t in chosen[:limit]]
