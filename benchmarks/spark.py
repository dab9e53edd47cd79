"""The analyses on Spark local[2] against DuckDB, on the same simulated events.

Start-up (the JVM and session) and the derived tables are timed apart from the analyses; each
analysis prints its Spark and DuckDB seconds and the ratio. Spark reads the canonical tables
from Parquet, as it would from a lake.

    python benchmarks/spark.py [--events 1000000] [--only findings errors ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import toolkit

ANALYSES = ["unhandled_events", "duplicates", "late_events", "hangs", "escalations", "errors",
            "findings", "summary", "sessions", "traces", "flow_edges", "latency"]  # fmt: skip


def _time(fn):
    started = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # a known Spark gap: reported, the run goes on
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
    return time.perf_counter() - started, ""


def main() -> None:
    """Simulate, load both engines, time each analysis on each."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--only", nargs="+", choices=ANALYSES, default=ANALYSES,
                        help="time these analyses only")  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from toolkit import spark as tspark

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        sim = toolkit.simulate(tmp_path / "sim", traces=args.events // 20, seed=1)
        con = toolkit.connect(tmp_path / "bench.duckdb")
        toolkit.ingest(con, sim["events"])
        n = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
        for table in ("events", "traces"):
            con.execute(f"COPY (SELECT * REPLACE (attrs::VARCHAR AS attrs) FROM {table}) "
                        f"TO '{tmp_path / table}.parquet' (FORMAT parquet)")  # fmt: skip
        print(f"== {n:,} events: Spark local[2] vs DuckDB ==")
        started = time.perf_counter()
        spark = (
            SparkSession.builder.master("local[2]").appName("toolkit-bench")
            .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "4").config("spark.driver.memory", "3g")
            .getOrCreate()
        )  # fmt: skip
        spark.sparkContext.setLogLevel("ERROR")
        print(f"  Spark start-up                 {time.perf_counter() - started:8.2f} s")
        started = time.perf_counter()
        sc = tspark.connect(spark, events=str(tmp_path / "events.parquet"),
                            traces=str(tmp_path / "traces.parquet"))  # fmt: skip
        print(f"  Spark derived tables (cached)  {time.perf_counter() - started:8.2f} s")
        total = {"spark": 0.0, "duckdb": 0.0}
        for name in args.only:
            fn = getattr(toolkit, name)
            s, err = _time(lambda fn=fn: fn(sc))
            d, _ = _time(lambda fn=fn: fn(con))
            if s is None or d is None:
                print(f"  {name:<30} failed on Spark: {err}")
                continue
            total["spark"] += s
            total["duckdb"] += d
            print(f"  {name:<30} {s:8.2f} s   DuckDB {d:6.2f} s   {s / d:6.1f}x")
        print(f"  analyses that ran on both: Spark {total['spark']:.1f} s, DuckDB "
              f"{total['duckdb']:.1f} s, {total['spark'] / max(total['duckdb'], 1e-9):.1f}x")  # fmt: skip
        spark.stop()
        con.close()


if __name__ == "__main__":
    main()
