"""Benchmark: OTLP/JSON ingest (JSONL, as the Collector's file exporter writes) against baselines.

Generates a synthetic but realistic file (several services, GenAI agent/LLM/tool spans with
token counts and message text, messaging publish/process spans, exception events), ingests it
with ``toolkit.ingest`` and, in the same run, measures two baselines on the same file:

* DuckDB ``read_json`` of the raw requests plus an ``unnest`` to spans (no mapping at all: the
  floor of what a DuckDB reader can cost);
* a plain Python converter: ``json.loads`` per line and a loop over spans building row dicts
  (the usual hand-written importer; rows are not even inserted).

Prints spans/s, seconds, CPU seconds (all threads), peak RSS (``resource.getrusage``), the
ratios and the load average (the machine may be shared). Then what the live receiver pays per
batch: :func:`toolkit.ingest.spans.stage_spans` over the first ``--batch`` spans (ids in their
normal form, as the receiver keeps them), median of 20 runs.

Usage: ``python benchmarks/ingest_otlp.py [--spans 200000] [--batch 2000]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

import toolkit
from toolkit.ingest import otlp
from toolkit.ingest.base import create_stage
from toolkit.ingest.spans import normal_ids, stage_spans

SERVICES = ["gateway", "planner-agent", "coder-agent", "tool-runner", "billing"]


def _kv(attrs: dict) -> list[dict]:
    out = []
    for k, v in attrs.items():
        if isinstance(v, bool):
            out.append({"key": k, "value": {"boolValue": v}})
        elif isinstance(v, int):
            out.append({"key": k, "value": {"intValue": str(v)}})
        else:
            out.append({"key": k, "value": {"stringValue": v}})
    return out


def generate(path: Path, n_spans: int, spans_per_request: int = 20, seed: int = 7) -> int:
    """Write about ``n_spans`` spans as JSONL ExportTraceServiceRequests; return the span count."""
    rng = random.Random(seed)
    t0 = 1_760_000_000_000_000_000
    written = 0
    with path.open("w") as fh:
        while written < n_spans:
            trace = f"{rng.getrandbits(128):032x}"
            root = f"{rng.getrandbits(64):016x}"
            by_service: dict[str, list[dict]] = {s: [] for s in SERVICES}
            start = t0 + written * 1_000_000
            by_service["gateway"].append(
                _span(
                    trace,
                    root,
                    None,
                    "POST /task",
                    2,
                    start,
                    {"http.request.method": "POST", "url.path": "/task"},
                )
            )
            parent = root
            for i in range(1, spans_per_request):
                sid = f"{rng.getrandbits(64):016x}"
                begin = start + i * 50_000
                kind = i % 5
                if kind == 1:
                    svc, name, attrs = (
                        "planner-agent",
                        "invoke_agent planner",
                        {
                            "gen_ai.operation.name": "invoke_agent",
                            "gen_ai.agent.name": "planner",
                            "gen_ai.conversation.id": trace[:12],
                        },
                    )
                    parent = sid
                elif kind == 2:
                    svc, name, attrs = (
                        "planner-agent",
                        "chat gpt-4o",
                        {
                            "gen_ai.operation.name": "chat",
                            "gen_ai.request.model": "gpt-4o",
                            "gen_ai.usage.input_tokens": rng.randint(50, 4000),
                            "gen_ai.usage.output_tokens": rng.randint(5, 800),
                            "gen_ai.input.messages": json.dumps(
                                [
                                    {
                                        "role": "user",
                                        "parts": [
                                            {
                                                "type": "text",
                                                "content": f"Plan step {i} of task {trace[:6]}",
                                            }
                                        ],
                                    }
                                ]
                            ),
                            "gen_ai.output.messages": json.dumps(
                                [
                                    {
                                        "role": "assistant",
                                        "parts": [
                                            {
                                                "type": "text",
                                                "content": "Call the search tool with the query.",
                                            }
                                        ],
                                    }
                                ]
                            ),
                        },
                    )
                elif kind == 3:
                    svc, name, attrs = (
                        "tool-runner",
                        "execute_tool search",
                        {
                            "gen_ai.operation.name": "execute_tool",
                            "gen_ai.tool.name": "search",
                            "gen_ai.tool.call.id": sid[:8],
                            "gen_ai.tool.call.result": "3 results",
                        },
                    )
                elif kind == 4:
                    svc, name, attrs = (
                        "coder-agent",
                        "orders publish",
                        {
                            "messaging.system": "kafka",
                            "messaging.operation.type": "publish",
                            "messaging.destination.name": "orders",
                            "messaging.message.id": sid,
                        },
                    )
                else:
                    svc, name, attrs = (
                        "billing",
                        "orders process",
                        {
                            "messaging.system": "kafka",
                            "messaging.operation.type": "process",
                            "messaging.destination.name": "orders",
                            "messaging.message.id": f"{rng.getrandbits(64):016x}",
                        },
                    )
                span = _span(
                    trace, sid, parent, name, 1 if kind < 4 else 4 + (kind == 0), begin, attrs
                )
                if rng.random() < 0.05:
                    span["status"] = {"code": 2, "message": "failed"}
                    span["events"] = [
                        {
                            "name": "exception",
                            "timeUnixNano": str(begin + 10_000),
                            "attributes": _kv(
                                {
                                    "exception.type": "TimeoutError",
                                    "exception.message": "upstream timed out",
                                }
                            ),
                        }
                    ]
                by_service[svc].append(span)
            request = {
                "resourceSpans": [
                    {
                        "resource": {
                            "attributes": _kv(
                                {
                                    "service.name": s,
                                    "service.version": "1.4.2",
                                    "telemetry.sdk.language": "python",
                                }
                            )
                        },
                        "scopeSpans": [
                            {
                                "scope": {"name": "opentelemetry.instrumentation.genai"},
                                "spans": spans,
                            }
                        ],
                    }
                    for s, spans in by_service.items()
                    if spans
                ]
            }
            fh.write(json.dumps(request, separators=(",", ":")) + "\n")
            written += spans_per_request
    return written


def _span(trace, sid, parent, name, kind, start, attrs) -> dict:
    span = {
        "traceId": trace,
        "spanId": sid,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 40_000),
        "attributes": _kv(attrs),
        "status": {},
    }
    if parent:
        span["parentSpanId"] = parent
    return span


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline_duckdb(path: Path) -> int:
    con = duckdb.connect()
    return con.execute(
        """
        SELECT count(*) FROM (
            SELECT unnest(ss.spans, recursive := true) FROM (
                SELECT unnest(rs.scopeSpans) AS ss FROM (
                    SELECT unnest(resourceSpans) AS rs
                    FROM read_json($p, format = 'newline_delimited'))))""",
        {"p": str(path)},
    ).fetchall()[0][0]


def baseline_python(path: Path) -> int:
    rows = 0
    with path.open() as fh:
        for line in fh:
            req = json.loads(line)
            for rs in req["resourceSpans"]:
                res = {
                    a["key"]: next(iter(a["value"].values())) for a in rs["resource"]["attributes"]
                }
                for ss in rs["scopeSpans"]:
                    for s in ss["spans"]:
                        attrs = {a["key"]: next(iter(a["value"].values())) for a in s["attributes"]}
                        row = {
                            "trace_id": s["traceId"],
                            "event_id": s["spanId"],
                            "parent_id": s.get("parentSpanId"),
                            "type": attrs.get("gen_ai.operation.name") or s["name"],
                            "source": attrs.get("gen_ai.agent.name") or res.get("service.name"),
                            "ts": int(s["startTimeUnixNano"]) // 1000,
                            "attrs": json.dumps({**res, **attrs}),
                        }
                        rows += bool(row)
    return rows


def batch_cost(path: Path, spans: int, repeats: int = 20) -> tuple[float, float]:
    """Median wall and CPU seconds of one ``stage_spans`` call over the spans of the file's
    first requests (at least ``spans`` of them), as the live receiver maps a batch."""
    requests, n = [], 0
    with path.open() as fh:
        for number, line in enumerate(fh, 1):
            requests.append((number, line))
            n += sum(
                len(ss["spans"])
                for rs in json.loads(line)["resourceSpans"]
                for ss in rs["scopeSpans"]
            )
            if n >= spans:
                break
    con = toolkit.connect()
    create_stage(con)
    otlp.read_requests(con, requests, "bench:")
    con.execute(f"CREATE TEMP TABLE batch AS SELECT * REPLACE ({normal_ids()}) FROM otel_spans")
    walls, cpus = [], []
    for _ in range(repeats):
        create_stage(con)
        wall, cpu = time.perf_counter(), time.process_time()
        stage_spans(con, "(SELECT * FROM batch)", normalized=True)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    con.close()
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spans.otlp.jsonl"
        started = time.perf_counter()
        n = generate(path, args.spans)
        print(
            f"generated {n:,} spans, {path.stat().st_size / 1e6:.0f} MB in "
            f"{time.perf_counter() - started:.1f} s (peak RSS {_rss_mb():.0f} MB)"
        )

        con = toolkit.connect()
        started, cpu = time.perf_counter(), time.process_time()
        result = toolkit.ingest(con, path)
        ours = time.perf_counter() - started
        cpu = time.process_time() - cpu
        events = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
        assert result["rejected"].tolist() == [0], result
        print(
            f"toolkit.ingest:      {ours:6.2f} s  {n / ours:10,.0f} spans/s  {cpu:.2f} CPU s "
            f"({events:,} events incl. span events; peak RSS {_rss_mb():.0f} MB)"
        )
        con.close()

        started = time.perf_counter()
        assert baseline_duckdb(path) == n
        raw = time.perf_counter() - started
        print(
            f"DuckDB read_json:    {raw:6.2f} s  {n / raw:10,.0f} spans/s  (unnest only, no mapping; "
            f"peak RSS {_rss_mb():.0f} MB)"
        )

        started = time.perf_counter()
        assert baseline_python(path) == n
        py = time.perf_counter() - started
        print(
            f"Python json + loop:  {py:6.2f} s  {n / py:10,.0f} spans/s  (rows built, not stored; "
            f"peak RSS {_rss_mb():.0f} MB)"
        )
        print(
            f"ratio: toolkit is {py / ours:.1f}x the Python loop; read_json alone is "
            f"{ours / raw:.1f}x faster than toolkit"
        )
        wall, cpu = batch_cost(path, args.batch)
        print(
            f"stage_spans per batch of {args.batch:,} spans: {wall * 1e3:.1f} ms "
            f"({cpu * 1e3:.1f} ms CPU), median of 20"
        )
        print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
