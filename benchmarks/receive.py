"""Benchmark: the live receiver against the file ingest of the same spans, in the same run.

Records the requests an OTel SDK exporter would send (``BatchSpanProcessor``: up to 512 spans
per request, protobuf) for a synthetic multi-agent program (runs of a planner agent with model
calls, tool calls with span events and sub-agents), then, each phase in its own process so that
CPU and peak memory are its own:

* ``receive``: ``toolkit.receive`` on an in-memory database; a separate client process replays
  the requests over ``--clients`` keep-alive connections (each waits for its answer, as an
  exporter does). Spans/s *accepted* (queued for the writer) and *committed* (stored and
  answered), CPU seconds per 1k spans and peak RSS of the receiving process.
* ``file``: the same requests as OTLP/JSON lines (the Collector's file exporter), loaded by
  ``toolkit.ingest`` into an in-memory database.

Rates are measured from the first request received to the last one answered (the client
process's start-up is not counted). The load average is printed with the figures: on a
shared machine it says how far wall times can be trusted (CPU seconds are steadier).

Usage: ``python benchmarks/receive.py [--spans 50000] [--clients 4,16]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def record(n_spans: int, per_request: int = 512) -> list[bytes]:
    """Protobuf ``ExportTraceServiceRequest`` bodies of about ``n_spans`` spans."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.trace import Status, StatusCode

    ended: list = []

    class Keep(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            ended.extend(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider(resource=Resource.create({"service.name": "bench-agents"}))
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    tracer = provider.get_tracer("bench")
    run = 0
    while len(ended) < n_spans:
        with tracer.start_as_current_span("invoke_agent planner", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner",
            "session.id": f"session-{run // 3}",
        }) as root:  # fmt: skip
            for step in range(4):
                with tracer.start_as_current_span("chat gpt", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-x",
                    "gen_ai.usage.input_tokens": 100 + step, "gen_ai.usage.output_tokens": 20,
                    "gen_ai.output.messages": json.dumps(
                        [{"role": "assistant", "content": f"step {step} of run {run}: " + "ok " * 30}]),
                }):  # fmt: skip
                    pass
                with tracer.start_as_current_span("execute_tool search", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search",
                }) as tool:  # fmt: skip
                    tool.add_event("log", {"message": "searching"})
                    sub = {
                        "gen_ai.operation.name": "invoke_agent",
                        "gen_ai.agent.name": "researcher",
                    }
                    with (
                        tracer.start_as_current_span("invoke_agent researcher", attributes=sub),
                        tracer.start_as_current_span(
                            "chat gpt", attributes={"gen_ai.operation.name": "chat"}
                        ),
                    ):
                        pass
            if run % 10 == 0:
                root.set_status(Status(StatusCode.ERROR, "gave up"))
        run += 1
    provider.shutdown()
    return [
        encode_spans(ended[i : i + per_request]).SerializeToString()
        for i in range(0, len(ended), per_request)
    ]


def _usage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss / 1024


def phase_client(url: str, bodies_path: str, clients: int) -> None:
    bodies: list[bytes] = pickle.loads(Path(bodies_path).read_bytes())
    host, port = url.split("//")[1].split("/")[0].split(":")
    todo = list(enumerate(bodies))
    lock = threading.Lock()
    failures: list[int | str] = []

    def work() -> None:
        try:
            send()
        except Exception as e:  # a lost request must fail the run, not leave it waiting
            failures.append(f"{type(e).__name__}: {e}")

    def send() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        while True:
            with lock:
                if not todo:
                    return
                _, data = todo.pop(0)
            while True:
                conn.request("POST", "/v1/traces", body=data,
                             headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
                resp = conn.getresponse()
                resp.read()
                if resp.status == 503:  # full queue: retry, as an exporter does
                    time.sleep(float(resp.getheader("Retry-After", "1")) / 10)
                    continue
                if resp.status != 200:
                    failures.append(resp.status)
                break

    threads = [threading.Thread(target=work) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        sys.exit(f"{len(failures)} requests failed: {sorted(set(map(str, failures)))}")


def phase_receive(bodies_path: str, spans: int, clients: int) -> dict:
    import toolkit

    con = toolkit.connect()
    receiver = toolkit.receive(con, port=0)
    n_requests = len(pickle.loads(Path(bodies_path).read_bytes()))
    cpu0, _ = _usage()
    client = subprocess.Popen(
        [sys.executable, str(HERE), "--phase", "client", "--url", receiver.url,
         "--bodies", bodies_path, "--clients", str(clients)]
    )  # fmt: skip
    while receiver.counters.requests == 0:  # from the first request on
        if client.poll() not in (None, 0):
            raise SystemExit("the client failed")
        time.sleep(0.001)
    t0 = time.perf_counter()
    accepted_at = committed_at = None
    while committed_at is None:
        c = receiver.counters
        now = time.perf_counter() - t0
        if accepted_at is None and c.accepted >= n_requests:
            accepted_at = now
        if c.committed >= n_requests:
            committed_at = now
        if client.poll() not in (None, 0):
            raise SystemExit("the client failed")
        time.sleep(0.005)
    client.wait()
    cpu1, rss = _usage()
    stored = con.execute("SELECT count(*) FROM events WHERE kind = 'span'").fetchall()[0][0]
    counters = receiver.stop()
    assert stored == spans, (stored, spans)
    return {
        "accepted_s": accepted_at, "committed_s": committed_at, "cpu_s": cpu1 - cpu0,
        "rss_mb": rss, "batches": counters.batches, "refused": counters.refused,
    }  # fmt: skip


def phase_file(bodies_path: str, spans: int) -> dict:
    import toolkit
    from toolkit.receive.protocol import parse_protobuf, request_to_json

    bodies: list[bytes] = pickle.loads(Path(bodies_path).read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spans.jsonl"
        path.write_text("\n".join(request_to_json(parse_protobuf(b))[0] for b in bodies) + "\n")
        con = toolkit.connect()
        cpu0, _ = _usage()
        t0 = time.perf_counter()
        toolkit.ingest(con, path)
        seconds = time.perf_counter() - t0
        cpu1, rss = _usage()
    stored = con.execute("SELECT count(*) FROM events WHERE kind = 'span'").fetchall()[0][0]
    assert stored == spans, (stored, spans)
    return {"seconds": seconds, "cpu_s": cpu1 - cpu0, "rss_mb": rss}


def _child(phase: str, bodies_path: str, spans: int, clients: int) -> dict:
    out = subprocess.run(
        [sys.executable, str(HERE), "--phase", phase, "--bodies", bodies_path,
         "--spans", str(spans), "--clients", str(clients)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--clients", default="4,16", help="concurrent clients, comma-separated")
    parser.add_argument("--phase", default="all", choices=["all", "receive", "file", "client"])
    parser.add_argument("--bodies")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.phase == "client":
        phase_client(args.url, args.bodies, int(args.clients))
        return
    if args.phase == "receive":
        print(json.dumps(phase_receive(args.bodies, args.spans, int(args.clients))))
        return
    if args.phase == "file":
        print(json.dumps(phase_file(args.bodies, args.spans)))
        return
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    bodies = record(args.spans)
    spans = 0
    for b in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(b)
        spans += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    clients = [int(c) for c in args.clients.split(",")]
    load = os.getloadavg()
    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as fh:
        fh.write(pickle.dumps(bodies))
    try:
        lives = {n: _child("receive", fh.name, spans, n) for n in clients}
        file = _child("file", fh.name, spans, 1)
    finally:
        os.unlink(fh.name)
    mb = sum(map(len, bodies)) / 1e6
    print(f"{spans} spans in {len(bodies)} protobuf requests ({mb:.1f} MB), {os.cpu_count()} cores, "
          f"load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after")  # fmt: skip
    print(f"{'':28}{'spans/s':>10}{'seconds':>10}{'CPU s/1k spans':>16}{'peak RSS MB':>13}")
    rows = []
    for n, live in lives.items():
        rows += [
            (f"receive {n:>2} clients: accepted", spans / live["accepted_s"], live["accepted_s"],
             None, None),
            (f"receive {n:>2} clients: committed", spans / live["committed_s"],
             live["committed_s"], live["cpu_s"] / spans * 1e3, live["rss_mb"]),
        ]  # fmt: skip
    rows.append(("file ingest (OTLP JSONL)", spans / file["seconds"], file["seconds"],
                 file["cpu_s"] / spans * 1e3, file["rss_mb"]))  # fmt: skip
    for name, rate, secs, cpu, rss in rows:
        cpu_text = f"{cpu:16.3f}" if cpu is not None else f"{'':16}"
        rss_text = f"{rss:13.0f}" if rss is not None else f"{'':13}"
        print(f"{name:30}{rate:8.0f}{secs:10.2f}{cpu_text}{rss_text}")
    for n, live in lives.items():
        print(f"receive {n:>2} clients: {live['batches']} transactions "
              f"({spans / live['batches']:.0f} spans each), {live['refused']} answers 503 "
              f"(retried); committed rate / file rate = {file['seconds'] / live['committed_s']:.2f}")  # fmt: skip
    print("target: 20000 spans/s committed")


if __name__ == "__main__":
    main()
