"""The report's tables: the findings and trace tables as DataTables (through ``itables``, rows
stored packed beside each table, cells drawn by small JavaScript renders), and plain escaped
tables for the few rows of a trace panel."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
from itables import JavascriptFunction, to_html_datatable

from toolkit.viz.report.page import packed

SEVERITIES = ["error", "warning", "info"]
FIRST_PAGE = 25  # rows on a table's first page: the traces a reader reaches first get panels
MAX_CONTENT = 20_000  # characters of one event's content shown in a static table's content cell
FINDING_COLUMNS = ["severity", "kind", "system", "trace", "event", "time (UTC)", "detail"]
# Below this width the columns of least value when space is short are hidden (the search still
# covers them), so that the tables fit without scrolling sideways.
NARROW = "(max-width: 1100px)"
NARROW_HIDDEN = {"findings-table": ["system", "event"],
                 "traces-table": ["session", "start (UTC)", "agents"]}  # fmt: skip

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


def cell(value: Any, limit: int | None = None) -> str:
    """A value as escaped HTML text: empty for null, cut after ``limit`` characters (saying
    how many more there were)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    text = str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + f"… ({len(text) - limit:,} more characters)"
    return html.escape(text, quote=True)


def finding_rows(found: pd.DataFrame) -> pd.DataFrame:
    """The findings table's rows (``FINDING_COLUMNS``), cells escaped; severity as its rank
    (1 error, 2 warning, 3 info: ``SEVERITY_JS`` draws the name).

    ``found`` has a categorical ``severity`` (``SEVERITIES``) and is in the order to show.
    """
    shown = pd.DataFrame({
        "severity": found["severity"].cat.codes + 1, "kind": found["kind"].map(cell),
        "system": found["system"].map(cell), "trace": found["trace_id"].map(cell),
        "event": found["event_id"].map(cell),
        "time (UTC)": pd.to_datetime(found["ts"], utc=True).dt.strftime(
            "%Y-%m-%d %H:%M:%S.%f").str[:23].fillna(""),
        "detail": found["detail"].map(lambda d: cell(d, 600)),
    })  # fmt: skip
    shown.columns = FINDING_COLUMNS
    return shown


def trace_rows(listed: pd.DataFrame) -> pd.DataFrame:
    """The trace table's rows, cells escaped, in the order of ``listed`` (a
    :func:`toolkit.traces` table with ``findings``); without the session column when every
    trace is a run of its own."""
    rows = pd.DataFrame({
        "trace": listed["trace_id"].map(cell), "session": listed["session_id"].map(cell),
        "system": listed["system"].map(cell), "outcome": listed["outcome"].map(cell),
        "findings": listed["findings"],
        "start (UTC)": pd.to_datetime(listed["start"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S"),
        "duration (s)": listed["duration_s"].round(3), "events": listed["events"],
        "agents": listed["agents"], "task": listed["task"].map(lambda t: cell(t, 120)),
    })  # fmt: skip
    if (listed["session_id"] == listed["trace_id"]).all():
        rows = rows.drop(columns="session")
    return rows


def datatable(
    df: pd.DataFrame, table_id: str, renders: dict[str, str], *, page: int = FIRST_PAGE
) -> str:
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
    return f"{frame}<script type='application/gzip-base64' id='{table_id}-rows'>{packed(rows)}</script>"


def static_table(df: pd.DataFrame, what: str, content: tuple[str, ...] = ()) -> str:
    """A plain escaped HTML table (for panels, which hold few rows); the ``content`` columns
    keep their line breaks, in monospace, up to ``MAX_CONTENT`` characters a cell."""
    if df.empty:
        return f'<p class="note">No {html.escape(what)}.</p>'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for col, v in zip(df.columns, row, strict=True):
            cls = ' class="content"' if col in content else ""
            cells.append(f"<td{cls}>{cell(v, MAX_CONTENT if col in content else None)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="tbl"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")  # fmt: skip
