"""The HTML report as an explorer: self-contained, tables that sort and filter, trace ids that
open panels, charts that render, and trace text that never runs as code."""

from __future__ import annotations

import base64
import gzip
import json
import re
import shutil
import subprocess

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from plotly.offline import get_plotlyjs

import toolkit
from toolkit.cli import main
from toolkit.db import connect
from toolkit.viz.report import session_waits
from toolkit.viz.report.page import SCRIPT
from toolkit.viz.report.tables import OUTCOME_JS, SEVERITY_JS, TRACE_LINK_JS

EVIL = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]  # fmt: skip
SECTIONS = ["findings", "traces", "trace", "overview", "flow", "mast"]


def _evil_lines() -> str:
    """One trace whose id, system, task, type, source, target and content carry the payload,
    with findings (a duplicate, an escalation, an unhandled event)."""
    base = {"specversion": "1.0", "traceid": EVIL, "system": EVIL, "task": EVIL}
    rows = [
        {"id": "e1", "source": EVIL, "type": EVIL, "time": "2026-01-01T00:00:00Z", "data": EVIL},
        {"id": "e2", "source": "bot", "type": "reply", "causationid": "e1", "target": EVIL,
         "time": "2026-01-01T00:00:01Z", "endtime": "2026-01-01T00:00:03Z", "data": EVIL},
        {"id": "e2", "source": "bot", "type": "reply", "causationid": "e1", "target": EVIL,
         "time": "2026-01-01T00:00:01Z", "endtime": "2026-01-01T00:00:03Z", "data": EVIL},
        {"id": "e3", "source": "bot", "type": "escalation.requested", "causationid": "e2",
         "target": "human", "time": "2026-01-01T00:00:04Z", "data": f"not sure {EVIL}"},
    ]  # fmt: skip
    return "\n".join(json.dumps(base | r) for r in rows) + "\n"


@pytest.fixture
def evil_con(loaded_con, tmp_path):
    path = tmp_path / "evil.jsonl"
    path.write_text(_evil_lines())
    result = toolkit.ingest(loaded_con, path)
    assert int(result["rejected"].sum()) == 0
    return loaded_con


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The bundled samples, 40 simulated runs and the payload trace, written as one report."""
    folder = tmp_path_factory.mktemp("demo")
    con = toolkit.connect()
    toolkit.ingest(con, "data/samples")
    toolkit.ingest(con, toolkit.simulate(folder / "sim", traces=40, seed=3)["events"])
    (folder / "evil.jsonl").write_text(_evil_lines())
    toolkit.ingest(con, folder / "evil.jsonl")
    out = toolkit.report(con, folder / "report.html", title=EVIL, classify=True)
    yield con, out
    con.close()


def _data(text: str) -> dict:
    m = re.search(r"<script type='application/json' id='report-data'>(.*?)</script>", text, re.S)
    assert m
    return json.loads(m.group(1))


def _script(text: str, script_id: str) -> str:
    m = re.search(rf"<script type='[^']+' id='{script_id}'>(.*?)</script>", text, re.S)
    assert m
    return m.group(1)


def _unpacked(packed: str) -> str:
    return gzip.decompress(base64.b64decode(packed)).decode()


def _panels(text: str) -> dict[str, dict]:
    """Each embedded panel by trace id: its HTML and figures, unpacked as the browser does."""
    packed = json.loads(_script(text, "panel-data"))
    return {t: json.loads(_unpacked(packed[i])) for t, i in _data(text)["panels"].items()}


def test_report_is_self_contained_with_every_section(loaded_con, tmp_path):
    out = toolkit.report(loaded_con, tmp_path / "sub" / "report.html", title="Samples")
    text = out.read_text()
    assert get_plotlyjs()[:500] not in text  # plotly.js is there once, packed
    assert _unpacked(_script(text, "plotly-gz")) == get_plotlyjs()
    assert text.count("injectModule(") == 2  # the itables bundle: defined and called once
    assert not re.search(r"<script[^>]+src=", text)
    assert not re.search(r"""(import|href=|src=)[^>]{0,20}['"]https?://[^'"]*\.(js|css)""", text)
    for section in SECTIONS:
        assert f'id="{section}"' in text
    assert "No classification yet" in text  # nothing classified: a note, not a chart of zeros
    data = _data(text)
    assert data["n_panels"] == len(data["panels"]) > 0
    assert data["first_trace"] in data["panels"]  # the worst trace opens first


def test_report_classify_scope_and_chosen_trace(loaded_con, tmp_path):
    text = toolkit.report(loaded_con, tmp_path / "r.html", classify=True, system="support-desk",
                          trace_id="ticket-300").read_text()  # fmt: skip
    assert "No classification yet" not in text and "Annotator <code>rules</code>" in text
    data = _data(text)
    assert data["first_trace"] == "ticket-300" and "ticket-300" in data["panels"]
    assert 'id="system-picker"' not in text  # one system in scope: nothing to pick
    systems = toolkit.query(loaded_con, "SELECT trace_id, system FROM traces")
    others = systems.loc[systems["system"] != "support-desk", "trace_id"]
    assert not any(f'href="#trace={t}"' in text for t in others)


def test_report_of_an_empty_database(con, tmp_path):
    text = toolkit.report(con, tmp_path / "r.html").read_text()
    assert "No findings" in text and _data(text)["first_trace"] is None


def test_report_escapes_trace_text(evil_con, tmp_path):
    text = toolkit.report(evil_con, tmp_path / "r.html", title=EVIL, trace_id=EVIL).read_text()
    assert "window.__pwned" in text  # the payload is there, as text ...
    assert "<script>window.__pwned" not in text and "<img src=x" not in text  # ... never as HTML
    assert _data(text)["first_trace"] == EVIL


@pytest.mark.parametrize(
    ("detail", "ts", "session_end", "expected"),
    [
        ("no response; waited 5223607.0 s, timeout 30.0 s", "2026-01-01T00:00:00Z",
         "2026-01-01T00:02:00Z", "no response; waited 2 min (until the run's last event), timeout 30.0 s"),
        ("no response; waited 12.5 s, timeout 3 s", "2026-01-01T00:00:00Z",
         "2026-01-03T00:00:00Z", "no response; waited 2.0 d (until the run's last event), timeout 3 s"),
    ],
)  # fmt: skip
def test_hang_waits_are_measured_within_the_run(detail, ts, session_end, expected):
    found = pd.DataFrame({"trace_id": ["t2"], "event_id": ["e"], "kind": ["hang"],
                          "severity": ["error"], "detail": [detail], "ts": [pd.Timestamp(ts)]})  # fmt: skip
    traces = pd.DataFrame({"trace_id": ["t1", "t2"], "session_id": ["s", "s"],
                           "end": [pd.Timestamp(session_end), pd.Timestamp(ts)]})  # fmt: skip
    before = found.copy()
    out = session_waits(found, traces)
    assert_frame_equal(found, before)
    assert out["detail"].tolist() == [expected]


def test_cli_report(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    con = connect(str(db))
    toolkit.ingest(con, "data/samples")
    con.close()
    out = tmp_path / "out" / "r.html"
    assert main(["report", "--db", str(db), "--out", str(out)]) == 0
    assert out.exists() and "wrote" in capsys.readouterr().out
    args = ["report", "--db", str(db), "--out", str(out), "--system", "support-desk",
            "--trace-id", "ticket-300", "--classify"]  # fmt: skip
    assert main(args) == 0
    text = out.read_text()
    assert _data(text)["first_trace"] == "ticket-300" and "Annotator <code>rules</code>" in text
    assert main(["report", "--db", str(tmp_path / "missing.duckdb")]) == 1  # an error, not usage


def _open(p, chromium, url: str, width: int = 1440):
    browser = p.chromium.launch(executable_path=str(chromium), args=BROWSER_ARGS)
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#findings-table tbody tr td a.trace-link", timeout=30_000)
    page.wait_for_selector("#traces-table tbody tr td a.trace-link", timeout=30_000)
    return browser, page, errors


def _column(page, table: str, i: int | str) -> list[str]:
    """The cells shown in a column, by its 1-based position or its header's name."""
    if isinstance(i, str):  # a header holds its column's filter, named by its placeholder
        names = page.evaluate("t => Array.from(document.querySelectorAll(`#${t} thead th`))"
                              ".map(th => th.querySelector('input').placeholder)", table)  # fmt: skip
        i = names.index(i) + 1
    return page.locator(f"#{table} tbody tr td:nth-child({i})").all_inner_texts()


@pytest.mark.browser
def test_findings_table_sorts_filters_and_opens_panels(demo, chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    _, out = demo
    with sync_playwright() as p:
        browser, page, errors = _open(p, chromium, out.as_uri())
        try:
            rank = {"error": 0, "warning": 1, "info": 2}
            severities = _column(page, "findings-table", 1)
            assert severities == sorted(severities, key=rank.__getitem__)  # most severe first
            # headers hold the per-column filters; the sort control sits beside each
            page.locator("#findings-table_wrapper thead th").nth(1).locator(
                ".dt-column-order"
            ).click()
            page.wait_for_timeout(300)
            kinds = _column(page, "findings-table", 2)
            assert kinds == sorted(kinds)  # sorted by the clicked column
            page.fill("#findings-table_wrapper input[type=search]", "duplicate")
            page.wait_for_timeout(300)
            kinds = _column(page, "findings-table", 2)
            assert kinds and set(kinds) <= {"duplicate", "idempotency_violation"}
            assert "filtered from" in page.inner_text("#findings-table_wrapper .dt-info")
            page.fill("#findings-table_wrapper input[type=search]", "")

            # a trace id opens that trace's panel, with its span tree drawn
            link = page.locator("#findings-table a.trace-link").first
            tid = link.inner_text()
            link.click()
            page.wait_for_function("document.querySelector('#trace-panel .lazy-figure .main-svg')")
            assert tid in page.inner_text("#trace-panel h3")
            assert page.evaluate("location.hash").startswith("#trace=")

            # every panel renders with no console error
            ids = list(_data(out.read_text())["panels"])
            for tid in ids:
                page.evaluate("id => { location.hash = '#trace=' + encodeURIComponent(id); }", tid)
                page.wait_for_function(
                    "id => document.getElementById('trace-panel').dataset.trace === id", arg=tid
                )
                page.wait_for_function("Array.from(document.querySelectorAll("
                                       "'#trace-panel .lazy-figure')).every(d => d.querySelector('.main-svg'))")  # fmt: skip
            # the system picker filters both tables and shows that system's charts
            page.select_option("#system-picker", index=1)
            page.wait_for_timeout(300)
            picked = page.locator("#system-picker option").nth(1).inner_text()
            systems = set(_column(page, "traces-table", "system"))
            assert systems == {picked}
            visible = page.locator(".sys-section:not([hidden]) .lazy-figure .main-svg")
            visible.first.wait_for()
            page.screenshot(path=str(tmp_path / "explorer.png"))
        finally:
            browser.close()
    assert errors == []


@pytest.mark.browser
@pytest.mark.parametrize("width", [1440, 900])
def test_payload_stays_inert_in_tables_hover_and_panels(demo, chromium, tmp_path, width):
    from playwright.sync_api import sync_playwright

    _, out = demo
    with sync_playwright() as p:
        browser, page, errors = _open(p, chromium, out.as_uri(), width)
        try:
            page.fill("#traces-table_wrapper input[type=search]", "pwned")
            page.wait_for_timeout(300)
            assert EVIL in page.inner_text("#traces-table")  # id, system, task shown as text
            page.locator("#traces-table a.trace-link").first.click()
            page.wait_for_function("document.querySelector('#trace-panel .lazy-figure .main-svg')")
            assert EVIL in page.inner_text("#trace-panel")  # header and transcript, as text
            page.wait_for_function("Array.from(document.querySelectorAll("
                                   "'#trace-panel .lazy-figure')).every(d => d.querySelector('.main-svg'))")  # fmt: skip
            # hover every point of every figure in the panel: their labels carry the payload
            page.evaluate("""() => {
                document.querySelectorAll('#trace-panel .lazy-figure').forEach(div => {
                    div.calcdata.forEach((cd, i) => cd.forEach((_, j) =>
                        Plotly.Fx.hover(div, [{curveNumber: i, pointNumber: j}])));
                });
            }""")  # fmt: skip
            page.wait_for_timeout(300)
            assert page.evaluate("typeof window.__pwned") == "undefined"
            assert page.locator("img[src=x]").count() == 0
            page.screenshot(path=str(tmp_path / "evil.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert (tmp_path / "evil.png").stat().st_size > 10_000


@pytest.mark.browser
@pytest.mark.parametrize("width", [1440, 900])
def test_tables_fit_the_window_without_scrolling_sideways(demo, chromium, width):
    from playwright.sync_api import sync_playwright

    _, out = demo
    with sync_playwright() as p:
        browser, page, errors = _open(p, chromium, out.as_uri(), width)
        try:
            # DataTables scrolls a table wider than its container inside a layout cell
            widths = page.evaluate("""() => Array.from(document.querySelectorAll(
                '.dt-container, .dt-layout-cell, html')).map(e => [e.scrollWidth, e.clientWidth])
                .concat(['findings', 'traces'].map(t => [
                    document.getElementById(t + '-table').getBoundingClientRect().width,
                    document.getElementById(t + '-table_wrapper').clientWidth]))""")  # fmt: skip
            assert len(widths) > 5, widths
            assert [w for w in widths if w[0] > w[1]] == []
            # each header holds its filter and sort arrows within its padding (the arrows are
            # drawn outside a box that flex layout shrank: scrollWidth sees them, rects do not)
            headers = page.evaluate("""() => Array.from(document.querySelectorAll(
                'table.dataTable thead th')).filter(th => th.offsetWidth).map(th => {
                  const t = th.getBoundingClientRect(), s = getComputedStyle(th);
                  const i = th.querySelector('input').getBoundingClientRect();
                  return [th.querySelector('input').placeholder, th.scrollWidth - th.clientWidth,
                          t.left + parseFloat(s.paddingLeft) - i.left,
                          i.right - (t.right - parseFloat(s.paddingRight))];
                })""")  # fmt: skip
            assert len(headers) >= 10, headers
            assert [h for h in headers if max(h[1:]) > 0.5] == []
            names = page.evaluate("""() => Array.from(document.querySelectorAll(
                '#findings-table thead th input')).map(i => i.placeholder)""")  # fmt: skip
        finally:
            browser.close()
    assert errors == []
    narrow = width < 1100  # the low-value columns go at narrow widths; search still covers them
    assert ("system" in names and "event" in names) is not narrow and "detail" in names


@pytest.mark.browser
def test_a_trace_without_a_panel_shows_its_row_and_findings(demo, chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    con, _ = demo
    out = toolkit.report(con, tmp_path / "capped.html", max_panels=1, trace_id="ticket-100")
    embedded = set(_data(out.read_text())["panels"])
    assert embedded == {"ticket-100"}
    found = toolkit.findings(con)
    counts = found[~found["trace_id"].isin(embedded)].groupby("trace_id").size()
    tid = str(counts.index[0])
    with sync_playwright() as p:
        browser, page, errors = _open(p, chromium, out.as_uri())
        try:
            page.evaluate("id => { location.hash = '#trace=' + encodeURIComponent(id); }", tid)
            page.wait_for_selector("#trace-panel .missing-panel")
            text = page.inner_text("#trace-panel")
            rows = page.locator("#trace-panel .missing-panel table tbody tr").count()
            page.evaluate("() => { location.hash = '#trace=no-such-trace'; }")
            page.wait_for_function(
                "document.getElementById('trace-panel').dataset.trace === 'no-such-trace'"
            )
            unknown = page.inner_text("#trace-panel")
            # the payload's trace, shown from its table row and findings, stays text
            page.evaluate("id => { location.hash = '#trace=' + encodeURIComponent(id); }", EVIL)
            page.wait_for_function("id => document.getElementById('trace-panel')"
                                   ".dataset.trace === id", arg=EVIL)  # fmt: skip
            assert EVIL in page.inner_text("#trace-panel .missing-panel dl")
            assert page.locator("#trace-panel .missing-panel tbody tr").count() > 0
            assert page.evaluate("typeof window.__pwned") == "undefined"
            assert page.locator("img[src=x]").count() == 0
        finally:
            browser.close()
    assert errors == []
    assert f"Trace {tid}" in text and f"toolkit report --trace-id {json.dumps(tid)}" in text
    assert f"Findings ({counts.iloc[0]})" in text and rows == counts.iloc[0]
    assert "No trace with this id is listed" in unknown


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to parse JavaScript")
def test_the_report_javascript_parses(tmp_path):
    """The page script and the column renders are JavaScript the browser alone would run:
    Node parses them (``--check``), so a syntax error fails here, not in a reader's browser."""
    sources = {"page.js": SCRIPT}
    sources |= {f"{name}.js": f"const render = ({js});\n" for name, js in
                [("trace_link", TRACE_LINK_JS), ("severity", SEVERITY_JS), ("outcome", OUTCOME_JS)]}  # fmt: skip
    for name, js in sources.items():
        (tmp_path / name).write_text(js)
        result = subprocess.run(["node", "--check", str(tmp_path / name)], capture_output=True,
                                text=True, check=False)  # fmt: skip
        assert result.returncode == 0, (name, result.stderr)
