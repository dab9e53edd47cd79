"""One self-contained HTML report that works as an explorer: findings and traces in tables that
sort, filter and search; a trace id opens that trace's panel (span tree, event graph,
transcript); charts per system.

The tables are DataTables through ``itables`` (its JavaScript bundle is embedded once, so the
file opens without a network); their rows are plain escaped text, links drawn per page shown.
Figures are stored inert as JSON and drawn when shown; plotly.js (once) and the trace panels
(for the traces a reader reaches first and the most severe) are gzip-compressed and unpacked
by the browser, so a report of 100k traces stays small and opens quickly.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import importlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import plotly.graph_objects as go
from itables import JavascriptFunction, to_html_datatable
from itables.javascript import _itables_underscore_version, generate_init_offline_itables_html
from itables.options import dt_bundle
from plotly.offline import get_plotlyjs

from toolkit.analyze.contents import annotators, contents
from toolkit.analyze.findings import findings as find
from toolkit.analyze.findings import with_event_context
from toolkit.analyze.flow import unhandled_events
from toolkit.analyze.graphs import event_graph, flow_edges
from toolkit.analyze.latency import latency
from toolkit.analyze.sessions import traces as trace_list
from toolkit.viz._common import human_duration
from toolkit.viz.event_graph import plot_event_graph
from toolkit.viz.failures import plot_failure_breakdown
from toolkit.viz.findings import plot_findings, plot_unhandled
from toolkit.viz.flow_graph import plot_flow_graph
from toolkit.viz.latency import plot_latency
from toolkit.viz.trace import plot_waterfall, transcript

SEVERITIES = ["error", "warning", "info"]
MAX_SYSTEM_SECTIONS = 12
SMALL_GRAPH = 80  # events: up to this many, a panel also draws the labelled causal graph
MAX_TRANSCRIPT_ROWS = 400
MAX_CONTENT = 20_000  # characters of one event's content shown in a transcript
FIRST_PAGE = 25  # rows on a table's first page: the traces a reader reaches first get panels
# Below this width the columns of least value when space is short are hidden (the search still
# covers them), so that the tables fit without scrolling sideways.
NARROW = "(max-width: 1100px)"
FINDING_COLUMNS = ["severity", "kind", "system", "trace", "event", "time (UTC)", "detail"]
NARROW_HIDDEN = {"findings-table": ["system", "event"],
                 "traces-table": ["session", "start (UTC)", "agents"]}  # fmt: skip

CSS = """
body { font-family: Arial, Helvetica, sans-serif; margin: 0 auto; max-width: 1400px;
       padding: 0 20px 48px; color: #222; line-height: 1.45; }
h1 { margin-top: 24px; overflow-wrap: anywhere; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; }
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
table.tbl td.content { white-space: pre-wrap; font-family: monospace; font-size: 12px;
                      width: 55%; overflow-wrap: anywhere; }
.scroll { max-height: 560px; overflow: auto; border: 1px solid #eee; }
#trace-panel { border: 2px solid #0072B2; border-radius: 6px; padding: 4px 16px 16px;
               min-height: 80px; }
.panel-head dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; }
.panel-head dt { color: #555; } .panel-head dd { margin: 0; overflow-wrap: anywhere; }
.sev-error { color: #C00000; font-weight: bold; } .sev-warning { color: #9a6700; }
.out-failure { color: #C00000; font-weight: bold; }
a.trace-link { font-family: monospace; }
.figure { margin: 12px 0 24px; }
table.dataTable { table-layout: auto; }
table.dataTable td { vertical-align: top; overflow-wrap: anywhere; max-width: 460px; }
#findings-table td:nth-child(2) { min-width: 10.5em; }
table.dataTable td:has(a.trace-link) { word-break: break-all; }
table.dataTable thead input { width: 100%; min-width: 3em; box-sizing: border-box; }
.dt-container { overflow-x: auto; }
@media (min-width: 1101px) {
  table.dataTable td:has(a.trace-link) { min-width: 150px; }
  #findings-table td:nth-child(7) { min-width: 320px; }
  #traces-table td:nth-child(7) { min-width: 240px; }
}
"""

# The trace id column: the cell holds the id HTML-escaped by Python; the link is made when the
# row is drawn (only a page of rows at a time), its href from the id with the five entities
# html.escape writes undone, then percent-encoded.
TRACE_LINK_JS = """function (data, type) {
  if (type !== 'display') return data;
  var raw = String(data).replace(/&(lt|gt|quot|#x27|amp);/g, function (m, e) {
    return {lt: '<', gt: '>', quot: '"', '#x27': "'", amp: '&'}[e];
  });
  return '<a class="trace-link" href="#trace=' + encodeURIComponent(raw) + '">' + data + '</a>';
}"""
SEVERITY_JS = """function (data, type) {
  if (type === 'sort' || type === 'type') return data;
  var name = ['error', 'warning', 'info'][data - 1];
  return type === 'display' ? '<span class="sev-' + name + '">' + name + '</span>' : name;
}"""
OUTCOME_JS = """function (data, type) {
  return type === 'display' && data === 'failure' ? '<span class="out-failure">failure</span>' : data;
}"""

# Unpacks plotly.js and trace panels (gzip, base64), draws figures stored as JSON when they are
# shown, opens a trace's panel from the URL hash (#trace=<id>), filters the tables by system and
# hides low-value columns at narrow widths. Trace text reaches the page only as HTML escaped by
# Python, as JSON parsed with JSON.parse, or through textContent.
SCRIPT = """
(function () {
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const panels = JSON.parse(document.getElementById('panel-data').textContent);
  const CONFIG = {displaylogo: false, responsive: true};
  const ENTITIES = {lt: '<', gt: '>', quot: '"', '#x27': "'", amp: '&'};
  const ESCAPES = {'<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;', '&': '&amp;'};
  function escapeHtml(s) { return String(s).replace(/[<>"'&]/g, function (c) { return ESCAPES[c]; }); }
  function unescapeHtml(s) {
    return String(s).replace(/&(lt|gt|quot|#x27|amp);/g, function (m, e) { return ENTITIES[e]; });
  }
  function fromBase64(text) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
    const chars = atob(text), bytes = new Uint8Array(chars.length);
    for (let i = 0; i < chars.length; i++) bytes[i] = chars.charCodeAt(i);
    return bytes;
  }
  async function gunzip(base64) {
    const bytes = fromBase64(base64.trim());
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Response(stream).text();
  }
  function plot(holder, spec) {
    if (!spec.layout.template) spec.layout.template = data.template;
    const div = document.createElement('div');
    div.className = 'plotly-graph-div lazy-figure';
    holder.appendChild(div);
    return plotly.then(function (P) { return P.newPlot(div, spec.data, spec.layout, CONFIG); });
  }
  function draw(root) {
    root.querySelectorAll('script.fig-json').forEach(function (s) {
      if (s.dataset.drawn || s.closest('[hidden]')) return;
      s.dataset.drawn = '1';
      plot(s.parentNode, JSON.parse(s.textContent));
    });
  }
  function table(id) {
    if (!document.getElementById(id)) return Promise.resolve(null);
    return window[data.itables_key].then(function (mod) {
      const $ = mod.jQuery;
      return new Promise(function (resolve) {
        if ($.fn.dataTable.isDataTable('#' + id)) resolve($('#' + id).DataTable());
        else $('#' + id).one('init.dt', function () { resolve($('#' + id).DataTable()); });
      });
    });
  }
  // A table with its rows: they are stored packed beside it and added once it is initialised.
  const loadedTables = {};
  function loaded(id) {
    if (!(id in loadedTables)) {
      loadedTables[id] = table(id).then(async function (dt) {
        const packed = document.getElementById(id + '-rows');
        if (dt && packed) dt.rows.add(JSON.parse(await gunzip(packed.textContent))).draw();
        return dt;
      });
    }
    return loadedTables[id];
  }
  loaded('findings-table');
  loaded('traces-table');
  // plotly.js is unpacked once both tables hold their rows: on a busy machine the tables,
  // what a reader reaches for first, are ready sooner
  const plotly = Promise.all([loaded('findings-table'), loaded('traces-table')]).then(function () {
    return gunzip(document.getElementById('plotly-gz').textContent);
  }).then(function (src) {
    const s = document.createElement('script');
    s.textContent = src;
    document.head.appendChild(s);
    return window.Plotly;
  });
  function text(tag, content, className) {
    const el = document.createElement(tag);
    el.textContent = content;
    if (className) el.className = className;
    return el;
  }
  function cellText(v) { return unescapeHtml(Array.isArray(v) ? v[0] : v === null ? '' : v); }
  async function rowsOf(id, tid) {
    const dt = await loaded(id);
    if (!dt) return [];
    const key = escapeHtml(tid), col = data.trace_column[id];
    return dt.rows().data().toArray().filter(function (r) { return r[col] === key; });
  }
  // A trace without an embedded panel: its row of the trace table and its findings, and how
  // to write a report with its full panel.
  async function missingPanel(tid) {
    const box = document.createElement('div');
    box.className = 'panel-head missing-panel';
    box.appendChild(text('h3', 'Trace ' + tid));
    box.appendChild(text('p', 'No span tree or transcript is embedded for this trace: the ' +
      'report holds them for ' + data.n_panels + ' traces (those on the first page of each ' +
      'table, the most severe, then in list order). Its row and findings are below; for its ' +
      'full panel, write a report with: toolkit report --trace-id ' + JSON.stringify(tid), 'note'));
    const row = (await rowsOf('traces-table', tid))[0];
    if (row === undefined) {
      box.appendChild(text('p', 'No trace with this id is listed in this report.', 'note'));
      return box;
    }
    const dl = document.createElement('dl');
    data.columns['traces-table'].forEach(function (name, i) {
      dl.appendChild(text('dt', name));
      dl.appendChild(text('dd', cellText(row[i])));
    });
    box.appendChild(dl);
    const found = await rowsOf('findings-table', tid);
    box.appendChild(text('h4', 'Findings (' + found.length + ')'));
    if (found.length) {
      const names = data.columns['findings-table'];
      const tbl = document.createElement('table');
      tbl.className = 'tbl';
      const head = tbl.createTHead().insertRow();
      names.forEach(function (n) { head.appendChild(text('th', n)); });
      const body = tbl.createTBody();
      found.forEach(function (r) {
        const tr = body.insertRow();
        names.forEach(function (n, i) {
          tr.appendChild(text('td', i === 0 ? data.severities[r[0] - 1] : cellText(r[i])));
        });
      });
      box.appendChild(tbl);
    }
    return box;
  }
  let opening = 0;
  async function openTrace(tid, scroll) {
    const ticket = ++opening;
    const i = data.panels[tid];
    const spec = i === undefined ? null : JSON.parse(await gunzip(panels[i]));
    const missing = spec === null ? await missingPanel(tid) : null;
    if (ticket !== opening) return;  // another trace was asked for meanwhile
    const panel = document.getElementById('trace-panel');
    panel.replaceChildren();
    panel.dataset.trace = tid;
    if (spec === null) {
      panel.appendChild(missing);
    } else {
      const t = document.createElement('template');
      t.innerHTML = spec.html;
      panel.appendChild(t.content);
      panel.querySelectorAll('[data-figure]').forEach(function (holder) {
        plot(holder, spec.figures[Number(holder.dataset.figure)]);
      });
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
    });
    draw(document.body);
  }
  const picker = document.getElementById('system-picker');
  function bySystem(settings, row, i, raw) {
    const col = data.system_column[settings.nTable.id];
    return col === undefined || raw[col] === data.systems[Number(picker.value)];
  }
  if (picker) {
    picker.addEventListener('change', async function () {
      const v = picker.value;
      showSystem(v === '' ? data.default_system : v);
      const mod = await window[data.itables_key];
      // the filter is there only while a system is picked: it runs on every row at each draw
      const filters = mod.jQuery.fn.dataTable.ext.search;
      const at = filters.indexOf(bySystem);
      if (v === '' && at >= 0) filters.splice(at, 1);
      if (v !== '' && at < 0) filters.push(bySystem);
      mod.jQuery('table.report-table').each(function () {
        mod.jQuery(this).DataTable().draw();
      });
    });
  }
  const narrow = window.matchMedia(data.narrow);
  Object.keys(data.narrow_hidden).forEach(function (id) {
    loaded(id).then(function (dt) {
      if (!dt) return;
      function fit() { dt.columns(data.narrow_hidden[id]).visible(!narrow.matches); }
      fit();
      narrow.addEventListener('change', fit);
    });
  });
  showSystem(data.default_system);
  if (location.hash) fromHash(false);
  else if (data.first_trace !== null) openTrace(data.first_trace, false);
})();
"""


def _json_for_script(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, no comments)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _cell(value: Any, limit: int | None = None) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    text = str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + f"… ({len(text) - limit:,} more characters)"
    return html.escape(text, quote=True)


def _datatable(df: pd.DataFrame, table_id: str, renders: dict[str, str], *, page: int = 25) -> str:
    """An interactive table (sort, search, per-column filters); cells must be HTML already.

    Rows show in the order given until a header is clicked (sorting 100k rows as the page
    opens would cost a second).

    ``renders`` maps a column to a JavaScript function drawing its cells (called for the rows of
    the page shown only). The rows are stored packed beside the table and added once it exists:
    inline, 100k rows were 16 MB of script text that took Chromium seconds to parse.
    """
    # Declared column types: detecting them looks at every row, 2 s for 100k rows in Chromium.
    defs: list[dict[str, Any]] = [
        {"targets": i, "type": "num" if pd.api.types.is_numeric_dtype(df[c]) else "string"}
        for i, c in enumerate(df.columns)
    ]
    defs += [{"targets": list(df.columns).index(c), "render": JavascriptFunction(js),
              "className": "dt-left"} for c, js in renders.items()]  # fmt: skip
    frame = str(to_html_datatable(
        df.head(0), table_id=table_id, connected=False, allow_html=True, maxColumns=0,
        showIndex=False, order=[], pageLength=page, lengthMenu=[10, 25, 100, 500],
        column_filters="header", deferRender=True, classes="display compact report-table",
        warn_on_undocumented_option=False, style="width:100%", columnDefs=defs,
        autoWidth=False, format_floats_in_python=False, language={"emptyTable": "Loading…"},
        # itables drops the search box and paging when its default layout meets a table that
        # fits one page (this one is empty until its rows are added): an empty row above the
        # table ("top") makes this layout not the default
        layout={"top": None, "topStart": "pageLength", "topEnd": "search",
                "bottomStart": "info", "bottomEnd": "paging"},
    ))  # fmt: skip
    rows = df.astype(object).where(df.notna(), None).to_numpy().tolist()
    packed = _packed(rows)
    return f"{frame}<script type='application/gzip-base64' id='{table_id}-rows'>{packed}</script>"


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


@functools.cache
def _template() -> dict:
    """The layout template every chart of the report uses (``style``): shipped once per page."""
    layout = json.loads(go.Figure(layout={"template": "plotly_white"}).to_json())["layout"]
    return dict(layout["template"])


def _spec(fig: go.Figure) -> dict:
    """A figure as plotly.js takes it, without the house template (the page adds it back)."""
    spec = json.loads(fig.to_json())
    if spec["layout"].get("template") == _template():
        del spec["layout"]["template"]
    return {"data": spec["data"], "layout": spec["layout"]}


def _figure_json(fig: go.Figure) -> str:
    """A figure stored inert in the page, drawn when shown."""
    spec = _json_for_script(json.dumps(_spec(fig)))
    return f'<div class="figure"><script type="application/json" class="fig-json">{spec}</script></div>'


def _packed(value: Any) -> str:
    """Text or JSON, gzip-compressed and base64-encoded: unpacked in the browser by
    ``DecompressionStream`` (base64 has no ``<``, so it is safe inside a ``<script>``)."""
    raw = value.encode() if isinstance(value, str) else json.dumps(value, default=str).encode()
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


@functools.cache
def _plotly_js() -> str:
    """plotly.js packed (1.4 MB of base64 instead of 4.8 MB of text)."""
    return _packed(get_plotlyjs())


class _Page:
    """Collects sections; figures are stored as JSON and drawn once plotly.js is unpacked."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def figure(self, fig: go.Figure) -> None:
        self.parts.append(_figure_json(fig))


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
) -> dict[str, Any]:
    """One trace's panel: its HTML (escaped) with a slot per figure, and the figures."""
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
                 + _static_table(shown[cols], "events", content=("content",)) + more)  # fmt: skip
    return {"html": "\n".join(parts), "figures": [_spec(f) for f in figures]}


def _pick_panels(
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


def _breakdown(page: _Page, con: duckdb.DuckDBPyConnection, system: str | None) -> None:
    page.add('<h2 id="mast">Failure breakdown (MAST)</h2>')
    found = annotators(con, system=system)
    func = getattr(importlib.import_module("toolkit"), "failure_breakdown", None)
    if func is None or found.empty:
        why = "this toolkit has no classifier yet" if func is None else "no MAST annotations"
        page.add(
            f'<p class="note">No classification yet: {why}. Run <code>toolkit.classify(con)</code>'
            " or <code>toolkit report --classify</code> and build the report again.</p>"
        )
        return
    n_systems = int(contents(con)["systems"].iloc[0])
    for annotator in found["annotator"].head(2):
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
    title: str = "Event-flow report", max_panels: int = 100,
) -> Path:  # fmt: skip
    """Write one self-contained HTML report that works as an explorer (no network needed).

    Sections: counts; every finding in a table that sorts, filters and searches (most severe
    first); every trace in a table (session, system, outcome, duration, events, findings); a
    trace panel (span tree with durations, labelled causal graph for small traces, transcript
    with full content) opened by clicking any trace id; findings and unhandled events per
    system; the flow graph and latency of one system at a time (a system picker filters the
    tables too); the MAST failure breakdown. Hang waits are measured to the last event of the
    hang's own run. All text from traces is HTML-escaped. plotly.js and the panels are stored
    gzip-compressed and unpacked by the browser (``DecompressionStream``).

    Args:
        con: the connection.
        path: the HTML file to write (folders are created).
        system: only this system's traces (no picker then).
        trace_id: the trace whose panel opens first (else the one with the most severe
            findings); it always gets a panel.
        classify: run :func:`toolkit.classify` (the MAST rules; stores annotations) first.
        title: the page title.
        max_panels: the most trace panels embedded: the requested trace, those on the first
            page of each table, the most severe, then the others as the trace table lists
            them. Every trace is still listed; opening one
            without a panel shows its row and findings and how to get its panel.

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
    rejected = int(contents(con)["rejected"].iloc[0])

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
    if found.empty:
        page.add('<p class="note">No findings: the event flow never snapped in scope.</p>')
    else:
        shown = pd.DataFrame({
            "severity": found["severity"].cat.codes + 1, "kind": found["kind"].map(_cell),
            "system": found["system"].map(_cell), "trace": found["trace_id"].map(_cell),
            "event": found["event_id"].map(_cell),
            "time (UTC)": pd.to_datetime(found["ts"], utc=True).dt.strftime(
                "%Y-%m-%d %H:%M:%S.%f").str[:23].fillna(""),
            "detail": found["detail"].map(lambda d: _cell(d, 600)),
        })  # fmt: skip
        shown.columns = FINDING_COLUMNS
        page.add(_datatable(shown, "findings-table",
                            {"severity": SEVERITY_JS, "trace": TRACE_LINK_JS}))  # fmt: skip

    page.add('<h2 id="traces">Traces</h2><p>Every trace, with its run (session); failed runs '
             "and traces with findings first.</p>")  # fmt: skip
    listed = traces.assign(failed=traces["outcome"].eq("failure")).sort_values(
        ["failed", "findings", "start"], ascending=[False, False, True], kind="stable")  # fmt: skip
    rows = pd.DataFrame({
        "trace": listed["trace_id"].map(_cell), "session": listed["session_id"].map(_cell),
        "system": listed["system"].map(_cell), "outcome": listed["outcome"].map(_cell),
        "findings": listed["findings"],
        "start (UTC)": pd.to_datetime(listed["start"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S"),
        "duration (s)": listed["duration_s"].round(3), "events": listed["events"],
        "agents": listed["agents"], "task": listed["task"].map(lambda t: _cell(t, 120)),
    })  # fmt: skip
    if (listed["session_id"] == listed["trace_id"]).all():  # every trace is a run of its own
        rows = rows.drop(columns="session")
    columns = {"findings-table": FINDING_COLUMNS, "traces-table": list(rows.columns)}
    page.add(_datatable(rows, "traces-table", {"trace": TRACE_LINK_JS, "outcome": OUTCOME_JS}))

    first_pages = [*found["trace_id"].head(FIRST_PAGE), *listed["trace_id"].head(FIRST_PAGE)]
    chosen = _pick_panels(first_pages, found, list(listed["trace_id"]), trace_id, max_panels)
    in_scope = set(traces["trace_id"])
    chosen = [t for t in chosen if t in in_scope]
    first = trace_id if trace_id is not None else (chosen[0] if chosen else None)
    page.add('<h2 id="trace">Trace panel</h2><div id="trace-panel">'
             '<p class="note">Click a trace id in a table above.</p></div>')  # fmt: skip
    meta = traces.set_index("trace_id", drop=False)
    packed = [_packed(_panel(con, meta.loc[tid], found, int(per_trace.get(tid, 0))))
              for tid in chosen]  # fmt: skip

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
        "panels": {t: i for i, t in enumerate(chosen)}, "n_panels": len(chosen),
        "first_trace": first, "systems": [_cell(s) for s in systems], "default_system": default,
        "system_column": {t: c.index("system") for t, c in columns.items()},
        "trace_column": {t: c.index("trace") for t, c in columns.items()},
        "itables_key": _itables_underscore_version(), "template": _template(),
        "severities": SEVERITIES, "narrow": NARROW, "columns": columns,
        "narrow_hidden": {t: [c.index(n) for n in NARROW_HIDDEN[t] if n in c]
                          for t, c in columns.items()},
    }  # fmt: skip
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style>"
        f"{generate_init_offline_itables_html(dt_bundle)}</head><body>"
        + "\n".join(page.parts)
        + f"<script type='application/json' id='report-data'>{_json_for_script(data)}</script>"
        + f"<script type='application/json' id='panel-data'>{json.dumps(packed)}</script>"
        + f"<script type='application/gzip-base64' id='plotly-gz'>{_plotly_js()}</script>"
        + f"<script>{SCRIPT}</script></body></html>\n",
        encoding="utf-8",
    )  # fmt: skip
    return out
