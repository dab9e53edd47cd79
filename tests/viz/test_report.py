"""The HTML report: self-contained, every section present, and trace text never runs as code."""

from __future__ import annotations

import json
import re

import pytest
from plotly.offline import get_plotlyjs

import toolkit
from toolkit.cli import main
from toolkit.db import connect

EVIL = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]  # fmt: skip


def _evil_lines() -> str:
    """One trace whose id, type, source and content carry the payload, with two findings."""
    base = {"specversion": "1.0", "traceid": EVIL, "system": EVIL}
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


def test_report_is_self_contained_with_every_section(loaded_con, tmp_path):
    out = toolkit.report(loaded_con, tmp_path / "sub" / "report.html", title="Samples")
    text = out.read_text()
    assert text.count(get_plotlyjs()[:500]) == 1  # plotly.js inlined exactly once
    assert not re.search(r"<script[^>]+src=", text)
    assert text.count("cdn.plot.ly") == get_plotlyjs().count("cdn.plot.ly")  # only the bundle's
    for heading in ["Summary", "Findings", "Event flow", "One trace in detail", "Latency",
                    "Failure breakdown (MAST)"]:  # fmt: skip
        assert f"<h2>{heading}</h2>" in text
    assert "No classification yet" in text  # nothing classified: a note, not a chart of zeros
    assert text.count('class="plotly-graph-div"') == 6


def test_report_shows_the_breakdown_once_classified(loaded_con, tmp_path):
    toolkit.classify(loaded_con)
    text = toolkit.report(loaded_con, tmp_path / "r.html").read_text()
    assert "No classification yet" not in text and "Annotator <code>rules</code>" in text
    assert text.count('class="plotly-graph-div"') == 8


def test_report_of_an_empty_database(con, tmp_path):
    text = toolkit.report(con, tmp_path / "r.html").read_text()
    assert "No findings" in text and "No trace to show" in text


def test_report_escapes_trace_text(evil_con, tmp_path):
    text = toolkit.report(evil_con, tmp_path / "r.html", title=EVIL, trace_id=EVIL).read_text()
    assert "window.__pwned" in text  # the payload is there, as text ...
    assert "<script>window.__pwned" not in text and "<img src=x" not in text  # ... never as HTML


def test_cli_report(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    con = connect(str(db))
    toolkit.ingest(con, "data/samples")
    con.close()
    assert main(["report", "--db", str(db), "--out", str(tmp_path / "out" / "r.html")]) == 0
    assert (tmp_path / "out" / "r.html").exists() and "wrote" in capsys.readouterr().out
    assert main(["report", "--db", str(tmp_path / "missing.duckdb")]) == 1  # an error, not usage


@pytest.mark.browser
def test_report_payload_does_not_run_in_a_browser(evil_con, tmp_path, chromium):
    from playwright.sync_api import sync_playwright

    out = toolkit.report(evil_con, tmp_path / "report.html", title=EVIL, trace_id=EVIL)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(out.as_uri())
            page.wait_for_function("document.querySelectorAll('.plotly-graph-div').length > 0")
            figures = page.locator("div.plotly-graph-div")
            assert figures.count() == 6
            page.wait_for_function(
                "Array.from(document.querySelectorAll('div.plotly-graph-div'))"
                ".every(d => d.querySelector('.main-svg'))"
            )
            # hover every node of the event graph: its labels carry the payload
            page.evaluate("""() => {
                const div = document.querySelectorAll('div.plotly-graph-div')[3];
                const i = div.data.findIndex(t => t.name === 'events');
                div.data[i].x.forEach((_, j) => Plotly.Fx.hover(div, [{curveNumber: i, pointNumber: j}]));
            }""")  # fmt: skip
            page.wait_for_timeout(300)
            assert page.evaluate("typeof window.__pwned") == "undefined"
            body = page.inner_text("body")
            assert EVIL in body  # shown as text (title, tables)
            assert page.locator("img[src=x]").count() == 0
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
