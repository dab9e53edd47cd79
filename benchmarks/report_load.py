"""The explorer report at scale: simulate N runs, write the report, load it in Chromium.

Prints the seconds to simulate+ingest, to write the report, its size, and the browser's time
until both tables are interactive and until a trace panel is drawn. Not a test (minutes at
100k traces): `python benchmarks/report_load.py [--traces 100000] [--db PATH]` (with ``--db``
the simulated database is kept there and reused by the next run). The CPU may be shared with
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
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

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
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            t = time.perf_counter()
            page.goto(out.as_uri(), timeout=120_000)
            loaded = time.perf_counter() - t
            page.wait_for_selector("#traces-table tbody a.trace-link", timeout=120_000)
            page.wait_for_selector("#findings-table tbody a.trace-link", timeout=120_000)
            tables = time.perf_counter() - t
            page.wait_for_function("document.querySelector('#trace-panel .lazy-figure .main-svg')")
            panel = time.perf_counter() - t
            t = time.perf_counter()
            page.fill("#traces-table_wrapper input[type=search]", "failure")
            page.wait_for_timeout(50)
            search = time.perf_counter() - t
            print(f"chromium: load event {loaded:.1f} s, tables interactive {tables:.1f} s, "
                  f"first panel drawn {panel:.1f} s, a search {search:.2f} s; "
                  f"page errors {errors or 'none'}")  # fmt: skip
            browser.close()


if __name__ == "__main__":
    main()
