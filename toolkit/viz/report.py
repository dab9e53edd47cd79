"""One self-contained HTML report that works as an explorer: findings and traces in tables that
sort, filter and search; a trace id opens that trace's panel (span tree, event graph,
transcript); charts per system.

The tables are DataTables through ``itables`` (its JavaScript bundle is embedded once, so the
file opens without a network). Trace panels and per-system charts are stored inert
(``<template>``, JSON) and drawn when opened, so a report of 100k traces loads quickly.
"""

from __future__ import annotations

import html
import importlib
import json
import os
import re
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import plotly.graph_objects as go
from itables import to_html_datatable
from itables.javascript import _itables_underscore_version, generate_init_offline_itables_html
from itables.options import dt_bundle
from plotly.offline import get_plotlyjs

from toolkit.analyze.findings import findings as find
from toolkit.analyze.flow import unhandled_events
from toolkit.analyze.graphs import event_graph, flow_edges
from toolkit.analyze.latency import latency
from toolkit.analyze.sessions import traces as trace_list
from toolkit.db import query
from toolkit.viz._common import human_duration
from toolkit.viz.event_graph import plot_event_graph
from toolkit.viz.failures import plot_failure_breakdown
from toolkit.viz.findings import plot_findings, plot_unhandled, with_event_context
from toolkit.viz.flow_graph import plot_flow_graph
from toolkit.viz.latency import plot_latency
from toolkit.viz.trace import plot_waterfall, transcript

SEVERITIES = ["error", "warning", "info"]
MAX_SYSTEM_SECTIONS = 12
SMALL_GRAPH = 80  # events: up to this many, a panel also draws the labelled causal graph
MAX_TRANSCRIPT_ROWS = 400
MAX_CONTENT = 20_000  # characters of one event's content shown in a transcript

CSS = """
body { font-family: Arial, Helvetica, sans-serif; margin: 0 auto; max-width: 1400px;
       padding: 0 20px 48px; color: #222; line-height: 1.45; }
h1 { margin-top: 24px; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; }
.meta, .note { color: #555; } .note { font-style: italic; }
nav.toc { position: sticky; top: 0; background: #fff; z-index: 10; padding: 8px 0;
          border-bottom: 1px solid #eee; display: flex; gap: 18px; flex-wrap: wrap;
          align-items: center; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 6px 14px; min-width: 100px; }
.card b { display: block; font-size: 22px; }
table.tbl { border-collapse: collapse; font-size: 13px; margin: 8px 0; width: 100%; }
table.tbl th, table.tbl td { border-bottom: 1px solid #e3e3e3; padding: 3px 8px;
  text-align: left; vertical-align: top; overflow-wrap: break-word; }
table.tbl th { background: #eef2f6; white-space: nowrap; position: sticky; top: 0; }
td.content { white-space: pre-wrap; font-family: monospace; font-size: 12px; width: 55%;
             overflow-wrap: anywhere; }
.scroll { max-height: 560px; overflow: auto; border: 1px solid #eee; }
#trace-panel { border: 2px solid #0072B2; border-radius: 6px; padding: 4px 16px 16px;
               min-height: 80px; }
.panel-head dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; }
.panel-head dt { color: #555; } .panel-head dd { margin: 0; overflow-wrap: anywhere; }
.sev-error { color: #C00000; font-weight: bold; } .sev-warning { color: #9a6700; }
.out-failure { color: #C00000; font-weight: bold; }
a.trace-link { font-family: monospace; }
.figure { margin: 12px 0 24px; }
table.dataTable td { vertical-align: top; overflow-wrap: anywhere; max-width: 460px; }
table.dataTable td:has(a.trace-link) { min-width: 150px; word-break: break-all; }
.dt-container { overflow-x: auto; }
#findings-table td:nth-child(7) { min-width: 320px; }
#traces-table td:nth-child(10) { min-width: 240px; }
"""

# Opens a trace's panel from the URL hash (#trace=<id>), draws lazily stored figures, filters
# the tables by system. Trace text reaches the page only as escaped HTML written by Python, as
# JSON parsed with JSON.parse, or through textContent.
SCRIPT = """
(function () {
  const data = JSON.parse(document.getElementById('report-data').textContent);
  function draw(root) {
    root.querySelectorAll('script.fig-json').forEach(function (s) {
      if (s.dataset.drawn) return;
      s.dataset.drawn = '1';
      const spec = JSON.parse(s.textContent);
      const div = document.createElement('div');
      div.className = 'plotly-graph-div lazy-figure';
      s.after(div);
      Plotly.newPlot(div, spec.data, spec.layout, {displaylogo: false, responsive: true});
    });
  }
  function openTrace(id, scroll) {
    const panel = document.getElementById('trace-panel');
    const key = data.panels[id];
    panel.replaceChildren();
    panel.dataset.trace = id;
    if (key === undefined) {
      const p = document.createElement('p');
      p.className = 'note';
      p.textContent = 'This report has no panel for trace ' + id + ' (it holds panels for ' +
        data.n_panels + ' traces: those with findings, most severe first). Write one with: ' +
        'toolkit report --trace-id ' + JSON.stringify(id);
      panel.appendChild(p);
    } else {
      panel.appendChild(document.getElementById(key).content.cloneNode(true));
      draw(panel);
    }
    if (scroll) panel.scrollIntoView({block: 'start'});
  }
  function fromHash(scroll) {
    const m = location.hash.match(/^#trace=(.*)$/);
    if (m) openTrace(decodeURIComponent(m[1]), scroll);
  }
  window.addEventListener('hashchange', function () { fromHash(true); });
  function showSystem(i) {
    document.querySelectorAll('.sys-section').forEach(function (s) {
      s.hidden = s.dataset.sys !== String(i);
      if (!s.hidden) draw(s);
    });
  }
  const picker = document.getElementById('system-picker');
  if (picker) {
    picker.addEventListener('change', async function () {
      const v = picker.value;
      showSystem(v === '' ? data.default_system : v);
      const mod = await window[data.itables_key];
      mod.jQuery('table.report-table').each(function () {
        mod.jQuery(this).DataTable().draw();
      });
    });
    window[data.itables_key].then(function (mod) {
      mod.jQuery.fn.dataTable.ext.search.push(function (settings, row, i, raw) {
        const v = picker.value;
        if (v === '') return true;
        const col = data.system_column[settings.nTable.id];
        return col === undefined || raw[col] === data.systems[Number(v)];
      });
    });
  }
  showSystem(data.default_system);
  if (location.hash) fromHash(false);
  else if (data.first_trace !== null) openTrace(data.first_trace, false);
})();
"""


def _json_for_script(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, no comments)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _link(trace_id: Any) -> str:
    tid = str(trace_id)
    href = "#trace=" + urllib.parse.quote(tid, safe="")
    return f'<a class="trace-link" href="{html.escape(href)}">{html.escape(tid)}</a>'


def _cell(value: Any, limit: int | None = None) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    text = str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + f"… ({len(text) - limit:,} more characters)"
    return html.escape(text, quote=True)


def _datatable(df: pd.DataFrame, table_id: str, order: list, *, page: int = 25) -> str:
    """An interactive table (sort, search, per-column filters); cells must be HTML already."""
    return str(to_html_datatable(
        df, table_id=table_id, connected=False, allow_html=True, maxBytes=0, maxColumns=0,
        showIndex=False, order=order, pageLength=page, lengthMenu=[10, 25, 100, 500],
        column_filters="header", deferRender=True, classes="display compact report-table",
        warn_on_undocumented_option=False, style="width:100%",
    ))  # fmt: skip


def _static_table(df: pd.DataFrame, what: str, content: tuple[str, ...] = ()) -> str:
    """A plain escaped HTML table (for panels, which hold few rows)."""
    if df.empty:
        return f'<p class="note">No {html.escape(what)}.</p>'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for col, v in zip(df.columns, row, strict=True):
            cls = ' class="content"' if col in content else ""
            cells.append(f"<td{cls}>{_cell(v, MAX_CONTENT if col in content else None)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="tbl"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")  # fmt: skip


def _figure_json(fig: go.Figure) -> str:
    return f'<div class="figure"><script type="application/json" class="fig-json">{_json_for_script(fig.to_json())}</script></div>'


class _Page:
    """Collects sections; eager figures share one copy of plotly.js."""

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


def session_waits(found: pd.DataFrame, traces: pd.DataFrame) -> pd.DataFrame:
    """``found`` (with ``ts``) plus ``waited_s``: for hangs, from the event to the last event of
    its own run (session), not of the whole database; ``detail`` says it in human units.

    Returns:
        The columns of ``found`` plus ``waited_s`` (NaN for other kinds).
    """
    out = found.copy()
    out["waited_s"] = float("nan")
    hang = out["kind"] == "hang"
    if hang.any() and not traces.empty:
        session_end = traces.groupby("session_id")["end"].max()
        end = traces.set_index("trace_id")["session_id"].map(session_end)
        at = pd.to_datetime(out.loc[hang, "trace_id"].map(end), utc=True)
        ts = pd.to_datetime(out.loc[hang, "ts"], utc=True)
        waited = (at - ts).dt.total_seconds()
        out.loc[hang, "waited_s"] = waited
        out.loc[hang, "detail"] = [
            re.sub(r"waited [-0-9.e]+ s",
                   f"waited {human_duration(w)} (until the run's last event)", str(d))
            for d, w in zip(out.loc[hang, "detail"], waited, strict=True)
        ]  # fmt: skip
    return out


def _panel(
    con: duckdb.DuckDBPyConnection, meta: pd.Series, found: pd.DataFrame, n_found: int
) -> str:
    """The inert HTML of one trace's panel."""
    tid = str(meta["trace_id"])
    graph = event_graph(con, tid)
    mine = found[found["trace_id"] == tid]
    outcome = _cell(meta["outcome"]) or "—"
    rows = [
        ("trace", f"<code>{_cell(tid)}</code>"), ("system", _cell(meta["system"])),
        ("session", f"<code>{_cell(meta['session_id'])}</code>"),
        ("outcome", f'<span class="out-{outcome}">{outcome}</span>'),
        ("task", _cell(meta["task"], 600) or "—"),
        ("start", _cell(meta["start"])), ("duration", human_duration(meta["duration_s"])),
        ("events", f"{int(meta['events']):,}"), ("agents", f"{int(meta['agents']):,}"),
        ("findings", f"{n_found:,}"),
    ]  # fmt: skip
    head = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    parts = [f'<div class="panel-head"><h3>Trace {_cell(tid, 120)}</h3><dl>{head}</dl></div>']
    cols = ["severity", "kind", "event_id", "ts", "detail"]
    parts.append("<h4>Findings</h4>" + _static_table(mine[cols], "findings in this trace"))
    parts.append(_figure_json(plot_waterfall(graph, found)))
    if graph.number_of_nodes() <= SMALL_GRAPH:
        parts.append(_figure_json(plot_event_graph(graph, found)))
    steps = transcript(graph, found)
    kinds = set(steps["kind"].dropna())
    what = "Transcript" if kinds <= {"message", "event"} else "Events"
    shown = steps.head(MAX_TRANSCRIPT_ROWS)
    more = (f'<p class="note">Showing the first {len(shown):,} of {len(steps):,} events.</p>'
            if len(steps) > len(shown) else "")  # fmt: skip
    cols = ["step", "offset", "agent", "addressee", "kind", "name", "status", "duration",
            "findings", "content"]  # fmt: skip
    parts.append(f"<h4>{what}: one row per event, full content</h4>"
                 + _static_table(shown[cols], "events", content=("content",)) + more)  # fmt: skip
    return "\n".join(parts)


def _pick_panels(
    traces: pd.DataFrame, found: pd.DataFrame, trace_id: str | None, limit: int
) -> list[str]:
    """The traces that get a panel: the requested one, then the worst (errors, then count)."""
    rank = found.assign(err=found["severity"].eq("error")).groupby("trace_id").agg(
        err=("err", "sum"), n=("kind", "size"))  # fmt: skip
    chosen = list(rank.sort_values(["err", "n"], ascending=False, kind="stable").index[:limit])
    if len(chosen) < limit:  # room left: the traces without findings, in time order
        seen = set(chosen)
        chosen += [t for t in traces["trace_id"] if t not in seen][: limit - len(chosen)]
    if trace_id is not None and trace_id in set(traces["trace_id"]) and trace_id not in chosen:
        chosen = [trace_id, *chosen[: limit - 1]]
    return [str(t) for t in chosen]


def _breakdown(page: _Page, con: duckdb.DuckDBPyConnection, system: str | None) -> None:
    page.add('<h2 id="mast">Failure breakdown (MAST)</h2>')
    annotators = query(con, """
        SELECT annotator, count(*) AS n FROM annotations a LEFT JOIN traces t USING (trace_id)
        WHERE mode LIKE 'FM-%' AND ($system IS NULL OR t.system = $system)
        GROUP BY 1 ORDER BY (annotator = 'rules') DESC, n DESC, annotator""", system=system)  # fmt: skip
    func = getattr(importlib.import_module("toolkit"), "failure_breakdown", None)
    if func is None or annotators.empty:
        why = "this toolkit has no classifier yet" if func is None else "no MAST annotations"
        page.add(
            f'<p class="note">No classification yet: {why}. Run <code>toolkit.classify(con)</code>'
            " or <code>toolkit report --classify</code> and build the report again.</p>"
        )
        return
    n_systems = int(query(con, "SELECT count(DISTINCT system) AS n FROM traces")["n"].iloc[0])
    for annotator in annotators["annotator"].head(2):
        try:
            table = func(con, group_by="system" if n_systems > 1 else "all", annotator=annotator)
            if system is not None and "group" in table.columns and n_systems > 1:
                table = table[table["group"] == system]
        except Exception as exc:  # the report must still be written; say what went wrong
            page.add(f'<p class="note">The failure breakdown failed: {html.escape(repr(exc))}</p>')
            return
        page.add(f"<p>Annotator <code>{html.escape(annotator)}</code>. Modes this annotator does "
                 "not assess are marked <i>not assessed</i>, not counted as zero.</p>")  # fmt: skip
        page.figure(plot_failure_breakdown(table, "bar"))
        page.figure(plot_failure_breakdown(table, "sunburst", basis="flags"))


def report(
    con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str], *,
    system: str | None = None, trace_id: str | None = None, classify: bool = False,
    title: str = "Event-flow report", max_panels: int = 200,
) -> Path:  # fmt: skip
    """Write one self-contained HTML report that works as an explorer (no network needed).

    Sections: counts; every finding in a table that sorts, filters and searches (most severe
    first); every trace in a table (session, system, outcome, duration, events, findings); a
    trace panel (span tree with durations, labelled causal graph for small traces, transcript
    with full content) opened by clicking any trace id; findings and unhandled events per
    system; the flow graph and latency of one system at a time (a system picker filters the
    tables too); the MAST failure breakdown. Hang waits are measured to the last event of the
    hang's own run. All text from traces is HTML-escaped.

    Args:
        con: the connection.
        path: the HTML file to write (folders are created).
        system: only this system's traces (no picker then).
        trace_id: the trace whose panel opens first (else the one with the most severe
            findings); it always gets a panel.
        classify: run :func:`toolkit.classify` (the MAST rules; stores annotations) first.
        title: the page title.
        max_panels: the most trace panels embedded (those with findings first, most severe
            first); every trace is still listed, and its id says how to get its panel.

    Returns:
        The path written.
    """
    if classify:
        from toolkit.classify import classify as run_classify

        run_classify(con, system=system)
    page = _Page()
    traces = trace_list(con, **({} if system is None else {"system": system}))
    found = with_event_context(con, find(con, system=system))
    found = session_waits(found, traces)
    found["severity"] = pd.Categorical(found["severity"], categories=SEVERITIES, ordered=True)
    found = found.sort_values(["severity", "system", "trace_id", "ts"], kind="stable")
    per_trace = found.groupby("trace_id").size()
    traces["findings"] = traces["trace_id"].map(per_trace).fillna(0).astype(int)
    systems = list(traces.groupby("system").size().sort_values(ascending=False).index)
    rejected = int(query(con, "SELECT count(*) AS n FROM rejects")["n"].iloc[0])

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    scope = f" · system <b>{html.escape(system)}</b>" if system is not None else ""
    page.add(f"<h1>{html.escape(title)}</h1><p class='meta'>Generated {stamp} by toolkit{scope}."
             " Click a trace id to open its panel; every table sorts (click a header, shift-click"
             " for a second key), searches and filters per column.</p>")  # fmt: skip
    picker = ""
    if system is None and len(systems) > 1:
        options = "".join(f'<option value="{i}">{html.escape(str(s))}</option>'
                          for i, s in enumerate(systems))  # fmt: skip
        picker = ('<label>System: <select id="system-picker"><option value="">all systems'
                  f"</option>{options}</select></label>")  # fmt: skip
    page.add('<nav class="toc"><a href="#findings">Findings</a><a href="#traces">Traces</a>'
             '<a href="#trace">Trace panel</a><a href="#overview">Per system</a>'
             f'<a href="#flow">Flow &amp; latency</a><a href="#mast">MAST</a>{picker}</nav>')  # fmt: skip
    n_sev = found["severity"].value_counts()
    cards = [("traces", len(traces)), ("runs", traces["session_id"].nunique()),
             ("events", int(traces["events"].sum())), ("systems", len(systems)),
             ("findings", len(found)), ("errors", int(n_sev.get("error", 0))),
             ("failed traces", int((traces["outcome"] == "failure").sum())),
             ("rejected records", rejected)]  # fmt: skip
    page.add('<div class="cards">' + "".join(
        f'<div class="card"><b>{v:,}</b>{k}</div>' for k, v in cards) + "</div>")  # fmt: skip

    page.add('<h2 id="findings">Findings</h2><p>Where the event flow snaps (unhandled, '
             "duplicate, late, out-of-order events, hangs, missing terminal events, escalations)"
             " and where failures started (<code>error</code>; a warning when the run "
             "recovered). Most severe first.</p>")  # fmt: skip
    table_ids = {"findings-table": 2, "traces-table": 2}
    if found.empty:
        page.add('<p class="note">No findings: the event flow never snapped in scope.</p>')
    else:
        shown = pd.DataFrame({
            "severity": found["severity"], "kind": found["kind"].map(_cell),
            "system": found["system"].map(_cell), "trace": found["trace_id"].map(_link),
            "event": found["event_id"].map(_cell),
            "time (UTC)": pd.to_datetime(found["ts"], utc=True).dt.strftime(
                "%Y-%m-%d %H:%M:%S.%f").fillna(""),
            "detail": found["detail"].map(lambda d: _cell(d, 600)),
        })  # fmt: skip
        page.add(_datatable(shown, "findings-table", [[0, "asc"], [2, "asc"]]))

    page.add('<h2 id="traces">Traces</h2><p>Every trace, with its run (session); failed runs '
             "and traces with findings first.</p>")  # fmt: skip
    listed = traces.assign(failed=traces["outcome"].eq("failure")).sort_values(
        ["failed", "findings", "start"], ascending=[False, False, True], kind="stable")  # fmt: skip
    page.add(_datatable(pd.DataFrame({
        "trace": listed["trace_id"].map(_link), "session": listed["session_id"].map(_cell),
        "system": listed["system"].map(_cell),
        "outcome": listed["outcome"].map(lambda o: f'<span class="out-{_cell(o)}">{_cell(o)}</span>'),
        "findings": listed["findings"],
        "start (UTC)": pd.to_datetime(listed["start"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S"),
        "duration (s)": listed["duration_s"].round(3), "events": listed["events"],
        "agents": listed["agents"], "task": listed["task"].map(lambda t: _cell(t, 120)),
    }), "traces-table", [[4, "desc"]]))  # fmt: skip

    chosen = _pick_panels(traces, found, trace_id, max_panels)
    first = trace_id if trace_id is not None else (chosen[0] if chosen else None)
    page.add('<h2 id="trace">Trace panel</h2><div id="trace-panel">'
             '<p class="note">Click a trace id in a table above.</p></div>')  # fmt: skip
    meta = traces.set_index("trace_id", drop=False)
    templates = []
    for i, tid in enumerate(chosen):
        body = _panel(con, meta.loc[tid], found, int(per_trace.get(tid, 0)))
        templates.append(f'<template id="panel-{i}">{body}</template>')
    page.add("\n".join(templates))

    page.add('<h2 id="overview">Findings per system</h2>')
    page.figure(plot_findings(found))
    page.figure(plot_unhandled(unhandled_events(con, system=system)))

    page.add('<h2 id="flow">Event flow and latency, one system at a time</h2>'
             + ("<p>Pick a system above; shown here: the system with the most findings.</p>"
                if picker else ""))  # fmt: skip
    sections = systems[:MAX_SYSTEM_SECTIONS]
    for i, s in enumerate(sections):
        lat = latency(con, by="type", system=s)
        per = latency(con, by="trace", system=s)
        page.add(f'<section class="sys-section" data-sys="{i}" hidden>'
                 f"<h3>System {html.escape(str(s))}</h3>"
                 + _figure_json(plot_flow_graph(flow_edges(con, system=s)))
                 + _figure_json(plot_latency(lat, traces=per)) + "</section>")  # fmt: skip
    if len(systems) > len(sections):
        page.add(
            f'<p class="note">Flow and latency are drawn for the {len(sections)} systems '
            "with most traces; write a report with <code>--system</code> for another.</p>"
        )
    _breakdown(page, con, system)

    default = 0
    if not found.empty and sections:
        top = found["system"].value_counts().index[0]
        default = sections.index(top) if top in sections else 0
    data = {
        "panels": {t: f"panel-{i}" for i, t in enumerate(chosen)}, "n_panels": len(chosen),
        "first_trace": first, "systems": [_cell(s) for s in systems], "default_system": default,
        "system_column": table_ids, "itables_key": _itables_underscore_version(),
    }  # fmt: skip
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script>"
        f"{generate_init_offline_itables_html(dt_bundle)}</head><body>"
        + "\n".join(page.parts)
        + f"<script type='application/json' id='report-data'>{_json_for_script(data)}</script>"
        + f"<script>{SCRIPT}</script></body></html>\n",
        encoding="utf-8",
    )  # fmt: skip
    return out
