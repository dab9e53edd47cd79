"""One self-contained HTML report that works as an explorer: findings and traces in tables that
sort, filter and search; a trace id opens that trace's panel (span tree, event graph,
transcript); charts per system.

The tables are DataTables through ``itables`` (its JavaScript bundle is embedded once, so the
file opens without a network); their rows are plain escaped text, links drawn per page shown.
Figures are stored inert as JSON and drawn when shown; plotly.js (once) and the trace panels
(for the traces a reader reaches first and the most severe) are gzip-compressed and unpacked
by the browser, so a report of 100k traces stays small and opens quickly.

Modules: ``page`` (the shell: style, script, embedded libraries, packing), ``tables`` (the
interactive and static tables), ``panels`` (one trace's panel, which traces get one),
``breakdown`` (the MAST section); here, :func:`report` puts them together.
"""

from __future__ import annotations

import html
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
from itables.javascript import _itables_underscore_version

from toolkit.analyze.contents import contents
from toolkit.analyze.findings import findings as find
from toolkit.analyze.findings import with_event_context
from toolkit.analyze.flow import unhandled_events
from toolkit.analyze.graphs import flow_edges
from toolkit.analyze.latency import latency
from toolkit.analyze.sessions import traces as trace_list
from toolkit.classify import classify as run_classify
from toolkit.viz._common import human_duration
from toolkit.viz.findings import plot_findings, plot_unhandled
from toolkit.viz.flow_graph import plot_flow_graph
from toolkit.viz.latency import plot_latency
from toolkit.viz.report.breakdown import add_failure_breakdown
from toolkit.viz.report.page import Page, figure_json, packed, template
from toolkit.viz.report.panels import panel, pick_panels
from toolkit.viz.report.tables import (
    FINDING_COLUMNS,
    FIRST_PAGE,
    NARROW,
    NARROW_HIDDEN,
    OUTCOME_JS,
    SEVERITIES,
    SEVERITY_JS,
    TRACE_LINK_JS,
    cell,
    datatable,
    finding_rows,
    trace_rows,
)

__all__ = ["report", "session_waits"]

MAX_SYSTEM_SECTIONS = 12


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
        run_classify(con, system=system)
    page = Page()
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
        page.add(datatable(finding_rows(found), "findings-table",
                           {"severity": SEVERITY_JS, "trace": TRACE_LINK_JS}))  # fmt: skip

    page.add('<h2 id="traces">Traces</h2><p>Every trace, with its run (session); failed runs '
             "and traces with findings first.</p>")  # fmt: skip
    listed = traces.assign(failed=traces["outcome"].eq("failure")).sort_values(
        ["failed", "findings", "start"], ascending=[False, False, True], kind="stable")  # fmt: skip
    rows = trace_rows(listed)
    columns = {"findings-table": FINDING_COLUMNS, "traces-table": list(rows.columns)}
    page.add(datatable(rows, "traces-table", {"trace": TRACE_LINK_JS, "outcome": OUTCOME_JS}))

    first_pages = [*found["trace_id"].head(FIRST_PAGE), *listed["trace_id"].head(FIRST_PAGE)]
    chosen = pick_panels(first_pages, found, list(listed["trace_id"]), trace_id, max_panels)
    in_scope = set(traces["trace_id"])
    chosen = [t for t in chosen if t in in_scope]
    first = trace_id if trace_id is not None else (chosen[0] if chosen else None)
    page.add('<h2 id="trace">Trace panel</h2><div id="trace-panel">'
             '<p class="note">Click a trace id in a table above.</p></div>')  # fmt: skip
    meta = traces.set_index("trace_id", drop=False)
    panels = [packed(panel(con, meta.loc[tid], found, int(per_trace.get(tid, 0))))
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
                 + figure_json(plot_flow_graph(flow_edges(con, system=s)))
                 + figure_json(plot_latency(lat, traces=per)) + "</section>")  # fmt: skip
    if len(systems) > len(sections):
        page.add(
            f'<p class="note">Flow and latency are drawn for the {len(sections)} systems '
            "with most traces; write a report with <code>--system</code> for another.</p>"
        )
    add_failure_breakdown(page, con, system)

    default = 0
    if not found.empty and sections:
        top = found["system"].value_counts().index[0]
        default = sections.index(top) if top in sections else 0
    data = {
        "panels": {t: i for i, t in enumerate(chosen)}, "n_panels": len(chosen),
        "first_trace": first, "systems": [cell(s) for s in systems], "default_system": default,
        "system_column": {t: c.index("system") for t, c in columns.items()},
        "trace_column": {t: c.index("trace") for t, c in columns.items()},
        "itables_key": _itables_underscore_version(), "template": template(),
        "severities": SEVERITIES, "narrow": NARROW, "columns": columns,
        "narrow_hidden": {t: [c.index(n) for n in NARROW_HIDDEN[t] if n in c]
                          for t, c in columns.items()},
    }  # fmt: skip
    return page.write(path, title, data, panels)


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
