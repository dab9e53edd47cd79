"""Process-mining export throughput: the PM4Py frame, XES, OCEL 2.0 JSON and SQLite, against
pandas doing the same jobs in the same run.

Simulates N events (default 1M) into a DuckDB file, then times each step in a fresh process
(so its peak RSS is its own), reading the file read-only:

* ``to_pm4py``: the frame (DuckDB: distinct events, sort, PM4Py columns);
  baseline ``pandas_frame``: the events table read into pandas, deduplicated, renamed and
  sorted by pandas;
* ``export_xes``: streamed XES; baseline ``pandas_to_xml``: the pandas frame written as flat
  XML by ``DataFrame.to_xml`` (etree; not XES: a floor for writing XML from pandas);
* ``export_ocel_json`` / ``export_ocel_sqlite``; baseline ``pandas_to_json``: the frame as
  JSON records (``DataFrame.to_json``) and ``pandas_to_sql``: the frame into SQLite;
* ``export_xes`` again on a database of a tenth of the events (``export_xes@N/10``): XES
  memory should not grow with the log (the frame steps hold every event).

    python benchmarks/export.py [--events 1000000] [--skip-pandas]
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
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


def _pandas_frame(con):  # type: ignore[no-untyped-def]
    df = con.sql("SELECT * FROM events").df()
    df = df.sort_values(["trace_id", "event_id", "ts", "seq"]).drop_duplicates(
        ["trace_id", "event_id"]
    )
    df = df[df["ts"].notna() | df["end_ts"].notna()]
    df["time:timestamp"] = df["end_ts"].fillna(df["ts"])
    df = df.rename(columns={"trace_id": "case:concept:name", "type": "concept:name",
                            "ts": "start_timestamp", "source": "org:resource"})  # fmt: skip
    return df.sort_values(["case:concept:name", "start_timestamp", "time:timestamp", "seq"])


_FLAT = {"case:concept:name": "case", "concept:name": "activity", "time:timestamp": "time",
         "org:resource": "resource", "content": "content"}  # fmt: skip


def _step(kind: str, db: str, out: str) -> dict:
    import toolkit

    con = toolkit.connect(db, read_only=True)
    started = time.perf_counter()
    if kind == "to_pm4py":
        rows = len(toolkit.to_pm4py(con))
    elif kind == "export_xes":
        rows = toolkit.export_xes(con, out)
    elif kind in ("export_ocel_json", "export_ocel_sqlite"):
        rows = toolkit.export_ocel(con, out)  # the format from the suffix
    else:
        df = _pandas_frame(con)
        flat = df[list(_FLAT)].rename(columns=_FLAT)  # XML names cannot hold ':' unbound
        if kind == "pandas_frame":
            rows = len(df)
        elif kind == "pandas_to_xml":
            flat.to_xml(out, index=False, parser="etree", pretty_print=False)
            rows = len(df)
        elif kind == "pandas_to_json":
            df.to_json(out, orient="records", date_format="iso")
            rows = len(df)
        elif kind == "pandas_to_sql":
            db_out = sqlite3.connect(out)
            flat.to_sql("event", db_out, index=False)  # fmt: skip
            db_out.close()
            rows = len(df)
    seconds = time.perf_counter() - started
    size = Path(out).stat().st_size / 1e6 if Path(out).exists() else 0.0
    return {"step": kind, "rows": rows, "seconds": seconds, "peak_rss_mb": _peak_rss_mb(),
            "file_mb": size}  # fmt: skip


def _run(kind: str, db: Path, out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--step", kind, "--db", str(db), "--out", str(out)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def _database(path: Path, events: int, tmp: Path) -> int:
    import toolkit

    sim = toolkit.simulate(tmp / path.stem, traces=max(1, events // 20), seed=0)
    con = toolkit.connect(path)
    toolkit.ingest(con, sim["events"])
    n = con.sql("SELECT count(*) FROM events").fetchall()[0][0]
    con.close()
    return int(n)


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--step")
    parser.add_argument("--db")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.step:
        print(json.dumps(_step(args.step, args.db, args.out)))
        return

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        big, small = tmp / "big.duckdb", tmp / "small.duckdb"
        n = _database(big, args.events, tmp)
        n_small = _database(small, args.events // 10, tmp)
        print(f"simulated and loaded {n:,} + {n_small:,} event records in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        steps = [("to_pm4py", big, "frame"), ("export_xes", big, "log.xes"),
                 ("export_ocel_json", big, "log.json"), ("export_ocel_sqlite", big, "log.sqlite")]  # fmt: skip
        if not args.skip_pandas:
            steps += [("pandas_frame", big, "frame"), ("pandas_to_xml", big, "pandas.xml"),
                      ("pandas_to_json", big, "pandas.json"), ("pandas_to_sql", big, "pandas.sqlite")]  # fmt: skip
        results = {}
        for kind, db, out in steps:
            results[kind] = _run(kind, db, tmp / out)
            (tmp / out).unlink(missing_ok=True)
        results["export_xes@N/10"] = _run("export_xes", small, tmp / "small.xes")

    print(
        f"\n{'step':<20}{'events':>12}{'seconds':>10}{'events/s':>14}{'peak RSS MB':>14}{'file MB':>10}"
    )
    for name, r in results.items():
        rate = r["rows"] / r["seconds"] if r["seconds"] else 0.0
        print(f"{name:<20}{r['rows']:>12,}{r['seconds']:>10.2f}{rate:>14,.0f}"
              f"{r['peak_rss_mb']:>14,.0f}{r['file_mb']:>10,.0f}")  # fmt: skip
    if not args.skip_pandas:
        for ours, theirs in (("to_pm4py", "pandas_frame"), ("export_xes", "pandas_to_xml"),
                             ("export_ocel_json", "pandas_to_json"),
                             ("export_ocel_sqlite", "pandas_to_sql")):  # fmt: skip
            ratio = results[theirs]["seconds"] / results[ours]["seconds"]
            print(f"{ours} vs {theirs}: {ratio:.2f}x the baseline's speed")
    grow = results["export_xes"]["peak_rss_mb"] / results["export_xes@N/10"]["peak_rss_mb"]
    print(f"export_xes peak RSS at N / at N/10: {grow:.2f} (bounded memory: close to 1)")


if __name__ == "__main__":
    main()
