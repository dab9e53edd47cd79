"""One self-contained HTML report: summary, findings, event flow, latency, failure breakdown."""

from __future__ import annotations

import html
import importlib
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from toolkit.analyze.findings import findings, summary
from toolkit.analyze.graphs import event_graph, flow_edges
from toolkit.analyze.latency import critical_path, latency
from toolkit.db import query
from toolkit.viz.event_graph import plot_event_graph
from toolkit.viz.failures import plot_failure_breakdown
from toolkit.viz.findings import plot_findings, plot_unhandled, with_event_context
from toolkit.viz.flow_graph import plot_flow_graph
from toolkit.viz.latency import plot_latency
from toolkit.viz.timeline import plot_timeline

CSS = """
body { font-family: Arial, Helvetica, sans-serif; margin: 0 auto; max-width: 1240px;
       padding: 0 24px 48px; color: #222; line-height: 1.45; }
h1 { margin-top: 28px; } h2 { margin-top: 40px; border-bottom: 1px solid #ddd; }
.meta { color: #555; } .note { color: #555; font-style: italic; }
.cards { display: flex; gap: 16px; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 16px; min-width: 110px; }
.card b { display: block; font-size: 22px; }
table.tbl { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
table.tbl th, table.tbl td { border-bottom: 1px solid #e3e3e3; padding: 3px 8px; text-align: left;
  vertical-align: top; max-width: 520px; overflow-wrap: break-word; }
table.tbl th { white-space: nowrap; }
table.tbl th { background: #eef2f6; }
.scroll { max-height: 420px; overflow: auto; }
.figure { margin: 12px 0 24px; }
"""


def _table(df: pd.DataFrame, limit: int, what: str) -> str:
    """An escaped HTML table of at most ``limit`` rows, saying how many were left out."""
    if df.empty:
        return f'<p class="note">No {html.escape(what)}.</p>'
    body = df.head(limit).to_html(index=False, escape=True, border=0, classes="tbl", na_rep="—")
    more = (
        f'<p class="note">Showing {limit:,} of {len(df):,} {html.escape(what)}.</p>'
        if len(df) > limit
        else ""
    )
    return f'<div class="scroll">{body}</div>{more}'


class _Page:
    """Collects sections; figures are embedded as divs that share one copy of plotly.js."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.figures = 0

    def add(self, text: str) -> None:
        self.parts.append(text)

    def figure(self, fig: go.Figure) -> None:
        self.figures += 1
        div = fig.to_html(
            full_html=False, include_plotlyjs=False, div_id=f"figure-{self.figures}",
            config={"displaylogo": False, "responsive": True},
        )  # fmt: skip
        self.parts.append(f'<div class="figure">{div}</div>')


def _breakdown(page: _Page, con: duckdb.DuckDBPyConnection) -> None:
    page.add("<h2>Failure breakdown (MAST)</h2>")
    annotators = query(con, """
        SELECT annotator, count(*) AS n FROM annotations WHERE mode LIKE 'FM-%'
        GROUP BY 1 ORDER BY (annotator = 'rules') DESC, n DESC, annotator""")  # fmt: skip
    func = getattr(importlib.import_module("toolkit"), "failure_breakdown", None)
    if func is None or annotators.empty:
        why = "this toolkit has no classifier yet" if func is None else "no MAST annotations"
        page.add(
            f'<p class="note">No classification yet: {why}. Run <code>toolkit.classify(con)</code>'
            " (or load human labels) and build the report again.</p>"
        )
        return
    n_systems = int(query(con, "SELECT count(DISTINCT system) AS n FROM traces")["n"].iloc[0])
    for annotator in annotators["annotator"].head(2):
        try:
            table = func(con, group_by="system" if n_systems > 1 else "all", annotator=annotator)
        except Exception as exc:  # the report must still be written; say what went wrong
            page.add(f'<p class="note">The failure breakdown failed: {html.escape(repr(exc))}</p>')
            return
        page.add(f"<p>Annotator <code>{html.escape(annotator)}</code>. Modes this annotator does "
                 "not assess are marked <i>not assessed</i>, not counted as zero.</p>")  # fmt: skip
        page.figure(plot_failure_breakdown(table, "bar"))
        page.figure(plot_failure_breakdown(table, "sunburst", basis="flags"))


def report(
    con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str], *,
    title: str = "Event-flow report", trace_id: str | None = None, max_rows: int = 200,
) -> Path:  # fmt: skip
    """Write one self-contained HTML report (plotly.js inlined once; no network needed).

    Sections: what the database holds, findings per system (chart and table), the flow graph
    and unhandled events, one trace in detail (the given one, else the one with most findings),
    latency with the critical path of the slowest trace, and the MAST failure breakdown when
    ``toolkit.failure_breakdown`` exists and annotations are loaded. All text from traces is
    HTML-escaped.

    Args:
        con: the connection.
        path: the HTML file to write (folders are created).
        title: the page title.
        trace_id: the trace to show in detail.
        max_rows: the most rows per table.

    Returns:
        The path written.
    """
    page = _Page()
    counts = query(con, """
        SELECT (SELECT count(DISTINCT trace_id) FROM events) AS traces,
               (SELECT count(*) FROM events) AS events,
               (SELECT count(DISTINCT system) FROM traces) AS systems,
               (SELECT count(*) FROM rejects) AS rejected""").iloc[0]  # fmt: skip
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page.add(f"<h1>{html.escape(title)}</h1><p class='meta'>Generated {stamp} by toolkit.</p>")
    page.add('<div class="cards">' + "".join(
        f'<div class="card"><b>{int(v):,}</b>{k}</div>'
        for k, v in [("traces", counts.traces), ("events", counts.events),
                     ("systems", counts.systems), ("rejected records", counts.rejected)]
    ) + "</div>")  # fmt: skip

    page.add("<h2>Summary</h2><p>Findings of each kind per system (every trace counted).</p>")
    page.add(_table(summary(con), max_rows, "systems"))

    found = with_event_context(con, findings(con))
    page.add("<h2>Findings</h2><p>Where the event flow snaps: unhandled, duplicate, late, "
             "out-of-order events, hangs, missing terminal events, escalations and failed "
             "operations.</p>")  # fmt: skip
    page.figure(plot_findings(found))
    cols = ["system", "trace_id", "event_id", "ts", "kind", "severity", "detail"]
    page.add(_table(found[cols].sort_values(["system", "trace_id", "ts"]), max_rows, "findings"))

    page.add("<h2>Event flow</h2><p>Which kind of event reacts to which, how often and how "
             "fast; then the events nobody reacted to.</p>")  # fmt: skip
    page.figure(plot_flow_graph(flow_edges(con)))
    page.figure(plot_unhandled(con))

    if trace_id is None and not found.empty:
        trace_id = str(found["trace_id"].value_counts().index[0])
    page.add("<h2>One trace in detail</h2>")
    if trace_id is None:
        page.add('<p class="note">No trace to show.</p>')
    else:
        page.add(f"<p>Trace <code>{html.escape(trace_id)}</code>: its causal graph and "
                 "timeline, findings outlined.</p>")  # fmt: skip
        page.figure(plot_event_graph(event_graph(con, trace_id), found))
        page.figure(plot_timeline(con, trace_id, found))

    page.add("<h2>Latency</h2>")
    page.figure(plot_latency(con))
    per_trace = latency(con, by="trace")
    slowest = per_trace[per_trace["measure"] == "end_to_end"].sort_values("max_ms").tail(1)
    if not slowest.empty:
        tid = str(slowest["key"].iloc[0])
        page.add(f"<p>Critical path of the slowest trace, <code>{html.escape(tid)}</code> "
                 f"({slowest['max_ms'].iloc[0]:,.0f} ms):</p>")  # fmt: skip
        page.add(_table(critical_path(con, tid), max_rows, "steps"))

    _breakdown(page, con)

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
        + "\n".join(page.parts) + "</body></html>\n",
        encoding="utf-8",
    )  # fmt: skip
    return out
