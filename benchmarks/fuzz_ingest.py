"""The long fuzz campaign for ``toolkit.ingest``: mutated trace files of every format, each
ingested with its format forced and detected, and the outcome table of the ingest rule.

Uses the seeds, mutations and oracle of ``tests/ingest/fuzzing.py`` (the test suite runs the
same engine on a hundred mutants per format). An ingest running longer than ``--timeout``
seconds is interrupted and counted as a hang.

    python benchmarks/fuzz_ingest.py [--per-format 720] [--seed 1] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ingest.fuzzing import OUTCOMES, run_parallel, seeds

LABELS = {
    "ok": "loaded, every bad record in `rejects`",
    "error": "clear error: an IngestError naming the file (the database unchanged)",
    "bug": "a reader failed unexpectedly (IngestError saying so)",
    "other": "other exception",
    "lost": "records silently lost, or a reject/event not naming its file",
    "hang": "hang (interrupted)",
}


def main() -> None:
    """Run the campaign and print the outcome tables."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-format", type=int, default=720)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        found = seeds(Path(tmp))
        formats = sorted({s.format for s in found})
        print(f"{len(found)} seed files in {len(formats)} formats: {', '.join(formats)}")
        started = time.perf_counter()
        results = run_parallel(
            found, args.per_format, Path(tmp), args.seed, 1, args.timeout, args.workers
        )
        seconds = time.perf_counter() - started
    inputs = len(results) // 2
    print(f"{inputs:,} mutated files, {len(results):,} ingests (format forced and detected) "
          f"in {seconds:,.0f} s\n")  # fmt: skip
    by_outcome = Counter(r[3] for r in results)
    print("| outcome | ingests |\n|---|---|")
    for outcome in OUTCOMES:
        print(f"| {LABELS[outcome]} | {by_outcome[outcome]:,} |")
    errors = Counter(r[4] for r in results if r[3] == "error")
    print("\nclear errors, by problem:")
    for problem, n in errors.most_common(12):
        print(f"  {n:>6,}  {problem}")
    print("\n| format | " + " | ".join(OUTCOMES) + " |")
    print("|---|" + "---|" * len(OUTCOMES))
    for fmt in formats:
        counts = Counter(r[3] for r in results if r[0] == fmt)
        print(f"| {fmt} | " + " | ".join(f"{counts[o]:,}" for o in OUTCOMES) + " |")
    bad = [r for r in results if r[3] not in ("ok", "error")]
    if bad:
        print(f"\n{len(bad)} ingests broke the rule (first 30):")
        for fmt, what, mode, outcome, detail in bad[:30]:
            print(f"  {fmt:<14} {what:<16} {mode:<9} {outcome:<6} {detail[:160]}")


if __name__ == "__main__":
    main()
