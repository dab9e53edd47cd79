"""`toolkit ingest|simulate|demo|report`: a thin shell over the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from toolkit.db import connect, query
from toolkit.ingest import ingest
from toolkit.simulate import FAULT_KINDS, simulate

ROOT = Path(__file__).resolve().parents[1]


def _fault(text: str) -> tuple[str, float]:
    kind, _, rate = text.partition("=")
    if kind not in FAULT_KINDS or not rate:
        raise argparse.ArgumentTypeError(
            f"expected KIND=RATE with KIND one of {', '.join(FAULT_KINDS)}"
        )
    return kind, float(rate)


def _print_table(title: str, df: pd.DataFrame, limit: int = 12) -> None:
    print(f"\n{title}")
    if df.empty:
        print("  (none)")
        return
    text = df.head(limit).to_string(index=False)
    print("\n".join("  " + line for line in text.splitlines()))
    if len(df) > limit:
        print(f"  ... {len(df) - limit} more")


def print_summary(con) -> None:
    """Print a short overview of what the database holds."""
    _print_table(
        "Traces by system",
        query(
            con,
            """
        SELECT coalesce(t.system, '(unknown)') AS system, count(DISTINCT t.trace_id) AS traces,
               count(e.event_id) AS events
        FROM traces t LEFT JOIN events e USING (trace_id) GROUP BY ALL ORDER BY events DESC""",
        ),
    )
    _print_table(
        "Events by type",
        query(
            con,
            """
        SELECT type, count(*) AS events, count(DISTINCT trace_id) AS traces
        FROM events GROUP BY ALL ORDER BY events DESC, type""",
        ),
    )
    _print_table(
        "Events by source",
        query(
            con,
            """
        SELECT coalesce(source, '(none)') AS source, count(*) AS events
        FROM events GROUP BY ALL ORDER BY events DESC, source""",
        ),
    )
    _print_table(
        "Rejected records",
        query(
            con,
            """
        SELECT reason, count(*) AS records, min(origin) AS first_at
        FROM rejects GROUP BY ALL ORDER BY records DESC, reason""",
        ),
    )


def _cmd_ingest(args: argparse.Namespace) -> int:
    con = connect(args.db)
    result = ingest(con, args.paths, args.format)
    print(result.to_string(index=False))
    print_summary(con)
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    faults = dict(args.fault) if args.fault else (None if not args.clean else {})
    out = simulate(args.out_dir, traces=args.traces, seed=args.seed, faults=faults)
    print(f"wrote {out['events_written']} events of {out['traces']} traces to {out['events']}")
    print(f"wrote {out['findings']} ground-truth findings to {out['truth']}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from toolkit.analyze import summary
    from toolkit.classify import classify, failure_breakdown
    from toolkit.viz.report import report

    sim_dir = ROOT / "data" / "sim"
    out = simulate(sim_dir, traces=args.traces, seed=args.seed)
    print(f"simulated {out['traces']} runs ({out['events_written']} events) into {sim_dir}")
    con = connect(args.db)
    result = ingest(con, [out["events"], ROOT / "data" / "samples"])
    print(f"\nIngested into {args.db}:")
    print(result[["path", "format", "status", "rows", "rejected"]].to_string(index=False))
    print_summary(con)
    _print_table("Where the event flow snaps (findings per system)", summary(con), limit=20)
    classify(con)
    breakdown = failure_breakdown(con, group_by="all")
    found = breakdown[breakdown["traces"].fillna(0) > 0]
    _print_table(
        "MAST failure modes found by the rules (traces; share of flags)",
        found[["category", "mode", "mode_name", "traces", "flag_share"]]
        .astype({"traces": int})
        .round(3),
    )
    path = report(con, args.out)
    print(f"\nReport: {Path(path).resolve()}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from toolkit.viz.report import report

    if not Path(args.db).exists():
        print(
            f"no database at {args.db}: run `toolkit ingest` or `toolkit demo` first",
            file=sys.stderr,
        )
        return 2
    con = connect(args.db)
    out = report(con, args.out, title=args.title)
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB; open it in a browser, no network needed)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="toolkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="load trace files, folders or globs into a DuckDB file")
    p.add_argument("paths", nargs="+")
    p.add_argument("--db", default="data/traces.duckdb")
    p.add_argument("--format", default=None, help="skip detection and read every file as FORMAT")
    p.set_defaults(run=_cmd_ingest)

    p = sub.add_parser("simulate", help="write simulated runs (events.jsonl) and their truth.csv")
    p.add_argument("out_dir")
    p.add_argument("--traces", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--fault",
        type=_fault,
        action="append",
        metavar="KIND=RATE",
        help="fault rate per trace (repeatable); default: the documented defaults",
    )
    p.add_argument("--clean", action="store_true", help="no faults at all")
    p.set_defaults(run=_cmd_simulate)

    p = sub.add_parser("demo", help="simulate, ingest the bundled samples, summarise")
    p.add_argument("--db", default="data/traces.duckdb")
    p.add_argument("--out", default="out/report.html")
    p.add_argument("--traces", type=int, default=200)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(run=_cmd_demo)

    p = sub.add_parser("report", help="write one self-contained HTML report of a database")
    p.add_argument("--db", default="data/traces.duckdb")
    p.add_argument("--out", default="out/report.html")
    p.add_argument("--title", default="Event-flow report")
    p.set_defaults(run=_cmd_report)

    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
