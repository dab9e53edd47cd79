"""The explorer report at scale: simulate N runs, write the report, load it in Chromium.

Prints the seconds to simulate+ingest, to write the report, its size, and, for each of a few
loads, the browser's time until each table shows its rows, plotly.js is ready and the first
trace panel is drawn. Not a test (minutes at
100k traces): `python benchmarks/report_load.py [--traces 100000] [--db PATH]` (with ``--db``
the simulated database is kept there and reused by the next run; ``--html FILE`` only opens a
report written before, to compare two versions under the same load). The CPU may be shared with
other work: run it twice before trusting a figure.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import toolkit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", type=Path, default=None, help="keep the database here, reuse it")
    parser.add_argument("--loads", type=int, default=3, help="times the page is opened")
    parser.add_argument("--html", type=Path, default=None,
                        help="only open this report (one written before, say)")  # fmt: skip
    args = parser.parse_args()
    if args.html is not None:
        _open(args.html, args.loads)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        if args.db is not None and args.db.exists():
            con = toolkit.connect(str(args.db), read_only=True)
        else:
            sim = toolkit.simulate(folder / "sim", traces=args.traces, seed=args.seed)
            con = toolkit.connect(None if args.db is None else str(args.db))
            toolkit.ingest(con, sim["events"])
        events = int(toolkit.query(con, "SELECT count(*) AS n FROM events")["n"].iloc[0])
        traces = int(toolkit.query(con, "SELECT count(*) AS n FROM traces")["n"].iloc[0])
        print(f"simulate + ingest (or open): {time.perf_counter() - t:.1f} s, {traces:,} traces, "
              f"{events:,} events")  # fmt: skip
        t = time.perf_counter()
        out = toolkit.report(con, folder / "report.html")
        print(f"report written: {time.perf_counter() - t:.1f} s, "
              f"{out.stat().st_size / 1e6:.1f} MB")  # fmt: skip
        _open(out, args.loads)


def _open(out: Path, loads: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for i in range(loads):
            print(f"chromium load {i + 1}: " + _load(browser, out), flush=True)
        browser.close()


# Milestones recorded in the page, in seconds since navigation started: when each table shows
# its first trace link, when plotly.js is ready, when the first panel's figure is drawn.
MILESTONES = """
window.__t = {};
const seen = () => {
  const t = window.__t, now = performance.now() / 1000;
  for (const id of ['findings-table', 'traces-table'])
    if (!t[id] && document.querySelector('#' + id + ' tbody a.trace-link')) t[id] = now;
  if (!t.plotly && window.Plotly) t.plotly = now;
  if (!t.panel && document.querySelector('#trace-panel .lazy-figure .main-svg')) t.panel = now;
};
document.addEventListener('DOMContentLoaded', () => {
  window.__t.html = performance.now() / 1000;
  new MutationObserver(seen).observe(document.body, {subtree: true, childList: true});
});
"""


def _load(browser, out: Path) -> str:
    """Open the report in a fresh page and say when each part became usable."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(MILESTONES)
    page.goto(out.as_uri(), timeout=120_000)
    page.wait_for_function("['findings-table', 'traces-table', 'panel'].every(k => window.__t[k])",
                           timeout=120_000)  # fmt: skip
    t = page.evaluate("window.__t")
    start = time.perf_counter()
    page.fill("#traces-table_wrapper input[type=search]", "failure")
    page.wait_for_selector("#traces-table_wrapper .dt-info:has-text('filtered')")
    search = time.perf_counter() - start
    page.close()
    return (
        f"HTML parsed {t['html']:.1f} s, findings table {t['findings-table']:.1f} s, trace "
        f"table {t['traces-table']:.1f} s, plotly.js ready {t['plotly']:.1f} s, first panel "
        f"drawn {t['panel']:.1f} s; a search {search:.2f} s; page errors {errors or 'none'}"
    )


if __name__ == "__main__":
    main()
