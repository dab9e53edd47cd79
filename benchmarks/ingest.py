"""Ingest throughput: toolkit's JSONL and Parquet readers against raw DuckDB and pandas.

Simulates N events (default 1M), then times, each in a fresh process (so peak RSS is its own):
toolkit ingest of the JSONL, toolkit ingest of the same events as canonical Parquet, DuckDB's
bare ``read_json`` of the JSONL (no validation, no rejects, no identity: the floor), and pandas
``read_json(lines=True)``. Prints events/s, seconds, peak RSS and the ratios.

    python benchmarks/ingest.py [--events 1000000] [--skip-pandas]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _step(kind: str, path: str) -> dict:
    import duckdb
    import pandas as pd

    import toolkit

    started = time.perf_counter()
    if kind in ("jsonl", "parquet"):
        con = toolkit.connect()
        rows = int(toolkit.ingest(con, path).loc[0, "rows"])
    elif kind == "duckdb_read_json":
        con = duckdb.connect()
        rows = con.execute(
            f"CREATE TABLE t AS SELECT * FROM read_json('{path}', format='newline_delimited'); "
            "SELECT count(*) FROM t"
        ).fetchall()[0][0]
    elif kind == "pandas_read_json":
        rows = len(pd.read_json(path, lines=True))
    seconds = time.perf_counter() - started
    rss_mb = _peak_rss_mb()
    return {"step": kind, "rows": rows, "seconds": seconds, "peak_rss_mb": rss_mb}


def _run(kind: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--step", kind, "--path", str(path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--step")
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.step:
        print(json.dumps(_step(args.step, args.path)))
        return

    import toolkit

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        sim = toolkit.simulate(tmp / "sim", traces=max(1, args.events // 20), seed=0)
        print(
            f"simulated {sim['events_written']:,} events in {time.perf_counter() - started:.1f} s"
        )
        con = toolkit.connect()
        toolkit.ingest(con, sim["events"])
        toolkit.export_parquet(con, tmp / "events.parquet")
        con.close()
        steps = [("jsonl", sim["events"]), ("parquet", tmp / "events.parquet"),
                 ("duckdb_read_json", sim["events"])]  # fmt: skip
        if not args.skip_pandas:
            steps.append(("pandas_read_json", sim["events"]))
        results = {kind: _run(kind, path) for kind, path in steps}

    print(f"\n{'step':<20}{'events':>12}{'seconds':>10}{'events/s':>14}{'peak RSS MB':>14}")
    for r in results.values():
        rate = r["rows"] / r["seconds"]
        print(
            f"{r['step']:<20}{r['rows']:>12,}{r['seconds']:>10.2f}{rate:>14,.0f}{r['peak_rss_mb']:>14,.0f}"
        )
    raw = results["duckdb_read_json"]["seconds"]
    print(
        f"\ntoolkit JSONL / raw DuckDB read_json: {results['jsonl']['seconds'] / raw:.2f}x (target <= 1.5x)"
    )
    if "pandas_read_json" in results:
        print(
            f"pandas read_json / toolkit JSONL: {results['pandas_read_json']['seconds'] / results['jsonl']['seconds']:.2f}x"
        )
    for kind, target in (("parquet", 2_000_000), ("jsonl", 1_000_000)):
        rate = results[kind]["rows"] / results[kind]["seconds"]
        print(
            f"{kind}: {rate:,.0f} events/s (target >= {target:,}): {'met' if rate >= target else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
