"""Seeded mutation fuzzing of every reader: the ingest rule holds for each outcome.

Eighty mutants per format (byte flips, truncation, removed and repeated lines, values of
the wrong JSON type, impossible dates, deep nesting, BOMs, CRLF, blank lines, duplicate keys,
odd file names), each ingested with its format forced and, for one in eight, detected; the
formats run in two processes.
The long campaign is ``benchmarks/fuzz_ingest.py``.
"""

from __future__ import annotations

from collections import Counter

from tests.ingest.fuzzing import run_parallel, seeds

PER_FORMAT = 80
# The readers this rule was built into; a reader added later joins when it follows it.
FORMATS = {
    "adamast", "agentrx", "atif", "cloudevents", "jaeger", "langfuse", "mast", "openinference",
    "otel_sdk", "otlp", "parquet", "tau_bench", "who_and_when", "zipkin",
}  # fmt: skip


def test_every_reader_follows_the_ingest_rule(tmp_path):
    found = [s for s in seeds(tmp_path) if s.format in FORMATS]
    assert {s.format for s in found} == FORMATS
    results = run_parallel(found, PER_FORMAT, tmp_path, seed=20261130, detect_every=8)
    outcomes = Counter(outcome for _, _, _, outcome, _ in results)
    failures = [r for r in results if r[3] not in ("ok", "error")]
    assert failures == []
    assert outcomes["ok"] > outcomes["error"] > 0
    assert len(results) >= PER_FORMAT * len(FORMATS)
