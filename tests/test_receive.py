"""The live receiver: the OTLP/HTTP protocol, one writer, live semantics. All on 127.0.0.1,
ephemeral ports, bounded waits."""

from __future__ import annotations

import gzip
import http.client
import json
import subprocess
import sys
import textwrap
import threading
import time
import zlib

import pandas as pd
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

import toolkit
from tests.analyze.test_derived import _assert_same_as_a_rebuild
from toolkit import db
from toolkit.analyze import derived
from toolkit.receive import deriver as deriver_module
from toolkit.receive.protocol import request_to_json

PB, JS = "application/x-protobuf", "application/json"


class _Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans):  # type: ignore[no-untyped-def]
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def agent_runs(runs: int = 3, steps: int = 3, fail_last: bool = True) -> list[ReadableSpan]:
    """Spans of ``runs`` agent runs (root agent span, a model call and a tool call per step),
    in the order they ended (children first, the root last); the last run fails."""
    keep = _Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "travel-desk"}))
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("tests.receive")
    for r in range(runs):
        with tracer.start_as_current_span(
            "invoke_agent planner",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner",
                        "session.id": f"s-{r}"},
        ) as root:  # fmt: skip
            for s in range(steps):
                with tracer.start_as_current_span(
                    "chat", attributes={"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 10 + s}
                ):  # fmt: skip
                    pass
                with tracer.start_as_current_span(
                    "execute_tool search",
                    attributes={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": "search",
                    },
                ) as tool:
                    tool.add_event("log", {"message": f"step {s}"})
            if fail_last and r == runs - 1:
                root.set_status(Status(StatusCode.ERROR, "gave up"))
    provider.shutdown()
    return keep.spans


def body(spans: list[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializeToString()


def json_body(spans: list[ReadableSpan]) -> bytes:
    return json_format.MessageToJson(encode_spans(spans)).encode()


def post(url: str, data: bytes, content_type: str | None = PB, encoding: str | None = None,
         method: str = "POST", path: str = "/v1/traces") -> tuple[int, dict, bytes]:  # fmt: skip
    host, port = url.split("//")[1].split("/")[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    headers = {}
    if content_type:
        headers["Content-Type"] = content_type
    if encoding:
        headers["Content-Encoding"] = encoding
    try:
        conn.request(method, path, body=data if method == "POST" else None, headers=headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


@pytest.fixture
def live():
    con = toolkit.connect()
    receiver = toolkit.receive(con, port=0, max_body=200_000, batch_delay=0.0)
    yield con, receiver
    receiver.stop()
    con.close()


def count(con, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


SPANS = agent_runs(runs=1, steps=1)  # 3 spans, 1 span event
BOMB = gzip.compress(b"{" + b" " * 5_000_000 + b"}")

PROTOCOL_CASES = [
    # (case, content type, encoding, body, method, path, status)
    ("protobuf", PB, None, body(SPANS), "POST", "/v1/traces", 200),
    ("protobuf, other name", "application/protobuf", None, body(SPANS), "POST", "/v1/traces", 200),
    ("json", JS, None, json_body(SPANS), "POST", "/v1/traces", 200),
    ("json, charset and case", "Application/JSON; charset=UTF-8", None, json_body(SPANS), "POST", "/v1/traces/", 200),
    ("gzip", PB, "gzip", gzip.compress(body(SPANS)), "POST", "/v1/traces", 200),
    ("deflate (zlib)", JS, "deflate", zlib.compress(json_body(SPANS)), "POST", "/v1/traces", 200),
    ("deflate (raw)", PB, "Deflate", zlib.compress(body(SPANS))[2:-4], "POST", "/v1/traces", 200),
    ("oversize", PB, None, b"\0" * 300_000, "POST", "/v1/traces", 413),
    ("gzip bomb", JS, "gzip", BOMB, "POST", "/v1/traces", 413),
    ("broken gzip", PB, "gzip", b"\x1f\x8b garbage", "POST", "/v1/traces", 400),
    ("bad protobuf", PB, None, b"\xff\xff\xff not protobuf", "POST", "/v1/traces", 400),
    ("bad json", JS, None, b'{"resourceSpans": [', "POST", "/v1/traces", 400),
    ("json but no request", JS, None, b'{"spans": []}', "POST", "/v1/traces", 400),
    ("other content type", "text/plain", None, b"hello", "POST", "/v1/traces", 415),
    ("no content type", None, None, body(SPANS), "POST", "/v1/traces", 415),
    ("other encoding", PB, "br", body(SPANS), "POST", "/v1/traces", 415),
    ("wrong method", PB, None, b"", "GET", "/v1/traces", 405),
    ("wrong path", PB, None, body(SPANS), "POST", "/v1/metrics", 404),
]  # fmt: skip


@pytest.mark.parametrize(
    ("content_type", "encoding", "data", "method", "path", "status"),
    [c[1:] for c in PROTOCOL_CASES],
    ids=[c[0] for c in PROTOCOL_CASES],
)
def test_protocol(live, content_type, encoding, data, method, path, status):
    con, receiver = live
    got, headers, answer = post(receiver.url, data, content_type, encoding, method, path)
    assert got == status, answer
    events = count(con, "events")
    if status == 200:
        assert events == 4  # 3 spans + 1 span event
        kind = headers["Content-Type"]
        if kind == PB:
            response = ExportTraceServiceResponse()
            response.ParseFromString(answer)
            assert response.partial_success.rejected_spans == 0
        else:
            assert kind == JS and json.loads(answer) == {}
    else:
        assert events == 0
        if status == 405:
            assert headers["Allow"] == "POST"
        if status in (400, 413, 415):  # a google.rpc.Status saying why
            assert answer and receiver.counters.refused == 1
    if status == 400 and data != b"\x1f\x8b garbage":  # a body that is no request is a reject
        assert con.execute("SELECT origin FROM rejects").fetchall() == [("otlp-http:1#0",)]


def test_partial_success_counts_the_rejected_spans(live):
    con, receiver = live
    request = json.loads(json_body(SPANS))
    spans = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({"spanId": "00f067aa0ba902b7", "name": "no trace id"})
    spans.append({"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b8"})
    status, _, answer = post(receiver.url, json.dumps(request).encode(), JS)
    assert status == 200
    partial = json.loads(answer)["partialSuccess"]
    assert partial["rejectedSpans"] == "2" and "missing" in partial["errorMessage"]
    assert sorted(o for (o,) in con.execute("SELECT origin FROM rejects").fetchall()) == [
        "otlp-http:1#4", "otlp-http:1#5"]  # fmt: skip
    assert count(con, "events") == 4 and receiver.counters.rejects == 2


def test_protobuf_spans_without_ids_are_rejects_with_their_request(live):
    con, receiver = live
    request = encode_spans(SPANS)
    broken = request.resource_spans[0].scope_spans[0].spans.add()
    broken.name = "no ids"
    status, _, answer = post(receiver.url, request.SerializeToString())
    assert status == 200
    response = ExportTraceServiceResponse()
    response.ParseFromString(answer)
    assert response.partial_success.rejected_spans == 1
    assert con.execute("SELECT origin, reason, record FROM rejects").fetchall() == [
        ("otlp-http:1#4", "missing trace id", '{"name": "no ids"}')
    ]
    assert count(con, "events") == 4


def test_a_full_queue_answers_503_then_the_retry_is_stored(live):
    con = toolkit.connect()
    receiver = toolkit.receive(con, port=0, queue_size=1, batch_delay=0.0)
    try:
        receiver.writer.gate.clear()  # the writer holds off: the queue fills
        assert receiver.writer.parked.wait(5)
        runs = agent_runs(runs=2, steps=1)
        first: list = []
        sender = threading.Thread(target=lambda: first.append(post(receiver.url, body(runs[:4]))))
        sender.start()
        deadline = time.monotonic() + 10
        while receiver.counters.queued < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        status, headers, _ = post(receiver.url, body(runs[4:]))
        assert status == 503 and headers["Retry-After"] == "1"
        receiver.writer.gate.set()
        sender.join(10)
        assert first[0][0] == 200
        assert post(receiver.url, body(runs[4:]))[0] == 200  # the exporter's retry
        assert count(con, "events") == len(runs) + 2  # + one span event per run
        assert receiver.counters.refused == 1
    finally:
        receiver.stop()


def test_a_retried_body_is_stored_once(live):
    con, receiver = live
    request = json.loads(json_body(SPANS))
    request["resourceSpans"][0]["scopeSpans"][0]["spans"].append({"name": "no ids"})
    data = json.dumps(request).encode()
    before = None
    for _ in range(3):
        status, _, answer = post(receiver.url, data, JS)
        assert status == 200 and json.loads(answer)["partialSuccess"]["rejectedSpans"] == "1"
        after = [count(con, t) for t in ("events", "traces", "rejects", "ingests")]
        assert before is None or after == before
        before = after
    assert before == [4, 1, 1, 1]
    # the same spans in another body (JSON instead of protobuf, gzip): one record each still
    assert post(receiver.url, gzip.compress(body(SPANS)), PB, "gzip")[0] == 200
    assert count(con, "events") == 4 and count(con, "ingests") == 2
    # a bad body retried: 400 each time, one reject
    assert [post(receiver.url, b"[1, 2", JS)[0] for _ in range(2)] == [400, 400]
    assert count(con, "rejects") == 2


def _frame(con) -> dict[str, pd.DataFrame]:
    events = toolkit.query(con, """
        SELECT * EXCLUDE (origin, seq) FROM events ORDER BY trace_id, event_id""")  # fmt: skip
    traces = toolkit.query(con, "SELECT * FROM traces ORDER BY trace_id")
    return {"events": events, "traces": traces}


def test_spans_in_any_order_over_many_requests_equal_the_file(live, tmp_path):
    """The protobuf path (children first, roots last, over several requests) and the file path
    (one OTLP/JSON file with the same spans) give the same tables."""
    con, receiver = live
    spans = agent_runs(runs=4, steps=2)
    for i in range(0, len(spans), 5):  # in the order they ended: roots come last
        assert post(receiver.url, body(spans[i : i + 5]))[0] == 200
    path = tmp_path / "spans.json"
    path.write_text(json_format.MessageToJson(encode_spans(spans)))
    file_con = toolkit.connect()
    toolkit.ingest(file_con, path)
    live_tables, file_tables = _frame(con), _frame(file_con)
    for name in ("events", "traces"):
        pd.testing.assert_frame_equal(live_tables[name], file_tables[name])
    traces = file_tables["traces"]
    assert traces["system"].tolist() == ["travel-desk"] * 4
    assert sorted(traces["outcome"]) == ["failure", "success", "success", "success"]
    assert set(live_tables["events"]["source"]) == {"planner"}  # inherited from the late root


def _json_span(trace: str, span: str, parent: str, name: str, start: int, **extra: object) -> dict:
    return {"traceId": trace, "spanId": span, "parentSpanId": parent, "name": name,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 10**6), **extra}  # fmt: skip


def test_json_ids_in_any_spelling_over_several_requests_equal_the_file(live, tmp_path):
    """OTLP/JSON requests whose ids are spelt differently (base64, upper-case hex, 0x, a parent
    of zeros) are one trace across requests, as in the file path."""
    con, receiver = live
    t_b64, t_hex = "q80BI0VniavN7wEjRWeJqw==", "ABCD0123456789ABCDEF0123456789AB"  # the same id
    t0 = 1_700_000_000_000_000_000
    child = _json_span(t_hex, "0X00000000000000B2", "0xa1000000000000a1".upper(), "chat", t0 + 5,
                       links=[{"traceId": "EjRWeJCrze8SNFZ4kKvN7w==", "spanId": "ABEiM0RVZnc="}],
                       attributes=[{"key": "gen_ai.operation.name",
                                    "value": {"stringValue": "chat"}}])  # fmt: skip
    root = _json_span(t_b64, "oQAAAAAAAKE=", "0000000000000000", "invoke_agent", t0,
                      attributes=[{"key": "gen_ai.agent.name",
                                   "value": {"stringValue": "planner"}}])  # fmt: skip
    requests = [{"resourceSpans": [{"scopeSpans": [{"spans": [s]}]}]} for s in (child, root)]
    for request in requests:  # the child first, the root in the next request
        assert post(receiver.url, json.dumps(request).encode(), JS)[0] == 200
    path = tmp_path / "spans.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in requests))
    file_con = toolkit.connect()
    toolkit.ingest(file_con, path)
    live_tables, file_tables = _frame(con), _frame(file_con)
    for name in ("events", "traces"):
        pd.testing.assert_frame_equal(live_tables[name], file_tables[name])
    events = live_tables["events"]
    assert events["trace_id"].tolist() == [t_hex.lower()] * 2
    assert events["source"].tolist() == ["planner"] * 2  # the child's agent is its parent's
    assert events[["event_id", "parent_span_id"]].fillna("-").values.tolist() == [
        ["00000000000000b2", "a1000000000000a1"],  # the child: its parent in its normal form
        ["a1000000000000a1", "-"],  # the root: a parent of zeros is none
    ]


def test_live_spans_are_bounded_the_traces_idle_longest_leave_first(live, monkeypatch):
    from toolkit.receive import writer

    con, receiver = live
    monkeypatch.setattr(writer, "RETAIN_SPANS", 10)
    spans = agent_runs(runs=3, steps=2)  # 5 spans a run, each run in a request of its own
    for i in range(0, len(spans), 5):
        assert post(receiver.url, body(spans[i : i + 5]))[0] == 200
        time.sleep(0.01)
    receiver.writer.gate.clear()  # the writer holds off: its cursor is free
    assert receiver.writer.parked.wait(5)
    receiver.writer.evict()
    kept = receiver.writer.cur.execute("SELECT DISTINCT tid FROM live_spans").fetchall()
    receiver.writer.gate.set()
    assert sorted(t for (t,) in kept) == sorted(
        {format(s.context.trace_id, "032x") for s in spans[5:]}
    )
    assert count(con, "events WHERE kind = 'span'") == 15  # what leaves memory stays stored


def test_the_writer_keeps_the_derived_tables_several_batches_at_a_time(live):
    """The analyses' derived tables are refreshed by the writer, not in every batch: an
    analysis on the connection asks it to catch up first, and then reads what a rebuild would
    make of everything committed."""
    con, receiver = live
    receiver.writer.gate.clear()  # the writer holds off: the requests share one batch
    assert receiver.writer.parked.wait(5)
    spans = agent_runs(runs=6, steps=2)
    senders = [
        threading.Thread(target=post, args=(receiver.url, body(spans[i : i + 7])))
        for i in range(0, len(spans), 7)
    ]
    for sender in senders:
        sender.start()
    deadline = time.monotonic() + 10
    while receiver.counters.queued < len(senders) and time.monotonic() < deadline:
        time.sleep(0.01)
    receiver.writer.gate.set()
    for sender in senders:
        sender.join(10)
    assert receiver.counters.spans == len(spans)
    sessions = toolkit.sessions(con)  # the writer catches up before the analysis reads
    assert len(sessions) == 6 and count(con, "_toolkit_uev") == count(con, "events")
    kept = {t: toolkit.query(con, f"SELECT * FROM {t} ORDER BY ALL") for t in derived.TABLES[:3]}
    derived.build(con)
    for table, frame in kept.items():
        pd.testing.assert_frame_equal(
            frame, toolkit.query(con, f"SELECT * FROM {table} ORDER BY ALL")
        )


def test_the_protobuf_converter_matches_message_to_dict():
    request = encode_spans(agent_runs(runs=2, steps=2))
    text, n = request_to_json(request)
    assert n == 10
    con_a, con_b = toolkit.connect(), toolkit.connect()
    from toolkit.ingest import otlp
    from toolkit.ingest.base import create_stage
    from toolkit.ingest.spans import stage_spans

    for con, doc in ((con_a, text), (con_b, json.dumps(json_format.MessageToDict(request)))):
        create_stage(con)
        otlp.read_requests(con, [(1, doc)], "x:")
        stage_spans(con)
    a = toolkit.query(con_a, "SELECT * FROM stage_events ORDER BY ord")
    b = toolkit.query(con_b, "SELECT * FROM stage_events ORDER BY ord")
    pd.testing.assert_frame_equal(a, b)


EXPORTER = textwrap.dedent("""
    import sys
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    url, runs = sys.argv[1], int(sys.argv[2])
    provider = TracerProvider(resource=Resource.create({"service.name": "exporter-test"}))
    # small export batches: children go out before their roots
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=url), max_export_batch_size=7, schedule_delay_millis=50))
    tracer = provider.get_tracer("exporter-test")
    for r in range(runs):
        with tracer.start_as_current_span("invoke_agent", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": f"agent-{r % 2}"}) as root:
            for s in range(4):
                with tracer.start_as_current_span("chat", attributes={"gen_ai.operation.name": "chat"}):
                    with tracer.start_as_current_span("execute_tool"):
                        pass
            if r == 0:
                root.set_status(Status(StatusCode.ERROR, "failed"))
    provider.shutdown()
""")


def test_the_real_exporter_in_another_process(live):
    con, receiver = live
    runs = 6
    done = subprocess.run(
        [sys.executable, "-c", EXPORTER, receiver.url, str(runs)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = runs * 9
    assert receiver.wait(expected, timeout=20), receiver.counters
    assert count(con, "events") == expected and count(con, "rejects") == 0
    c = receiver.counters
    assert c.requests >= expected // 7 and c.refused == 0 and c.last_error is None
    # every child's parent is stored, in its own trace
    orphans = con.execute("""
        SELECT count(*) FROM events c WHERE parent_span_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM events p WHERE p.trace_id = c.trace_id AND p.event_id = c.parent_span_id)
    """).fetchall()[0][0]
    assert orphans == 0
    shape = toolkit.query(
        con,
        """
        SELECT t.trace_id, t.system, t.task, t.outcome, count(*) AS spans,
               count(*) FILTER (e.parent_span_id IS NULL) AS roots,
               string_agg(DISTINCT e.source, ',') AS sources
        FROM traces t JOIN events e USING (trace_id) GROUP BY ALL ORDER BY sources, outcome""",
    )
    assert shape["system"].eq("exporter-test").all() and shape["task"].eq("invoke_agent").all()
    assert (shape["spans"] == 9).all() and (shape["roots"] == 1).all()
    assert shape["outcome"].tolist().count("failure") == 1
    assert sorted(set(shape["sources"])) == ["agent-0", "agent-1"]  # inherited from the roots


def test_a_reader_queries_while_the_receiver_writes(live):
    con, receiver = live
    spans = agent_runs(runs=12, steps=2)
    bodies = [body(spans[i : i + 8]) for i in range(0, len(spans), 8)]
    errors: list = []

    def send() -> None:
        for b in bodies:
            status = post(receiver.url, b)[0]
            if status != 200:
                errors.append(status)

    sender = threading.Thread(target=send)
    sender.start()
    seen: list[tuple[int, int]] = []
    while sender.is_alive() or not seen or seen[-1][0] < len(spans):
        n = count(con, "events WHERE kind = 'span'")
        runs = len(toolkit.sessions(con))
        toolkit.findings(con)
        seen.append((n, runs))
        if len(seen) > 500:
            break
    sender.join(30)
    assert errors == []
    assert [a for a, _ in seen] == sorted(a for a, _ in seen)  # counts only grow
    assert [b for _, b in seen] == sorted(b for _, b in seen)
    assert seen[-1] == (len(spans), 12) and len(seen) > 1


def test_open_traces_and_the_serve_command(live, tmp_path):
    con, receiver = live
    spans = agent_runs(runs=2, steps=1)
    children = [s for s in spans if s.parent is not None]
    assert post(receiver.url, body(children))[0] == 200
    now = max(s.end_time for s in spans) / 1e9
    at = pd.Timestamp(now, unit="s", tz="UTC").isoformat()
    opened = toolkit.open_traces(con, as_of=at)
    assert len(opened) == 2 and set(opened["why"]) == {"its root span has not arrived"}
    assert toolkit.open_traces(con, as_of=at, grace=0).empty
    assert post(receiver.url, body(spans))[0] == 200  # the roots arrive
    assert toolkit.open_traces(con, as_of=at).empty


def test_the_serve_command_stores_what_it_receives(tmp_path):
    import signal

    db = tmp_path / "live.duckdb"
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit.cli", "serve", "--db", str(db), "--port", "0"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stderr.readline()
        assert "receiving OTLP/HTTP traces on http://127.0.0.1:" in line, line
        url = line.split(" on ")[1].split(" into ")[0]
        assert post(url, body(SPANS))[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=20)[1]
    assert proc.returncode == 0 and "stopped: 3 spans stored from 1 requests" in out
    con = toolkit.connect(db, read_only=True)
    assert count(con, "events") == 4


def test_otlp_grpc_shares_the_writer():
    """OTLP/gRPC (the [grpc] extra): stored like OTLP/HTTP, a retry adds nothing, a body that
    is no request is INVALID_ARGUMENT, gzip from the client is undone by gRPC."""
    grpc = pytest.importorskip("grpc")
    con = toolkit.connect()
    receiver = toolkit.receive(con, port=0, grpc_port=0, batch_delay=0.0)
    channel = grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}")
    try:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=lambda b: b,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        assert export(body(SPANS), timeout=20).partial_success.rejected_spans == 0
        assert count(con, "events") == 4
        export(body(SPANS), timeout=20)  # the exporter's retry
        assert count(con, "events") == 4 and count(con, "ingests") == 1
        runs = agent_runs(runs=1, steps=2)
        export(body(runs), timeout=20, compression=grpc.Compression.Gzip)
        assert count(con, "events") == 4 + len(runs) + 2  # + one span event per step
        with pytest.raises(grpc.RpcError) as bad:
            export(b"\xff\xff\xff not protobuf", timeout=20)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        c = receiver.counters
        assert (c.requests, c.refused) == (4, 1)
    finally:
        channel.close()
        receiver.stop()


def test_a_trace_another_writer_stored_meanwhile_is_looked_up_in_events(live, tmp_path):
    """A trace whose rows all came from live spans is known complete without reading
    ``events``; once a file is ingested on the connection, the writer asks ``events`` again:
    the file's root stays, and the trace's fields are filled in, not recomputed."""
    con, receiver = live
    spans = agent_runs(runs=1, steps=2)  # 5 spans, the root last
    trace = format(spans[0].context.trace_id, "032x")
    assert post(receiver.url, body(spans[:2]))[0] == 200
    assert receiver.writer.whole == {trace}  # new to the database: complete
    path = tmp_path / "root.json"
    path.write_text(json_format.MessageToJson(encode_spans(spans[-1:])))
    toolkit.ingest(con, path)  # the root, by another writer
    assert post(receiver.url, body(spans[2:4]))[0] == 200
    assert receiver.writer.whole == set()  # its root is a stored row of no live span
    assert count(con, f"events WHERE trace_id = '{trace}' AND kind = 'span'") == 5


def test_a_trace_whose_rows_all_came_from_live_spans_is_not_looked_for_in_events(live):
    """Its earlier rows were just replaced: the merge's identity check, which reads the
    stored events of known traces (a scan that grows with the database), has none to read."""
    con, receiver = live
    spans = agent_runs(runs=1, steps=2)  # 5 spans, the root last
    assert post(receiver.url, body(spans[:2]))[0] == 200
    assert post(receiver.url, body(spans[2:]))[0] == 200
    assert receiver.writer.cur.execute("SELECT count(*) FROM stage_known").fetchall()[0][0] == 0
    assert count(con, "events WHERE kind = 'span'") == 5
    assert post(receiver.url, body(spans[2:]))[0] == 200  # a retry adds nothing
    assert count(con, "events WHERE kind = 'span'") == 5


def _sender(
    receiver, spans: list[ReadableSpan], per_request: int
) -> tuple[threading.Thread, list[int]]:
    """A thread (not started) that posts ``spans`` in requests of ``per_request``, one after
    another, and the list its answers' statuses go to."""
    statuses: list[int] = []
    bodies = [body(spans[i : i + per_request]) for i in range(0, len(spans), per_request)]
    sender = threading.Thread(
        target=lambda: statuses.extend(post(receiver.url, b)[0] for b in bodies)
    )
    return sender, statuses


def test_files_ingested_on_the_connection_while_the_receiver_writes(live, tmp_path):
    """A file ingest on the notebook's connection and the receiver's writer and deriver
    write the same tables (traces, the derived state): the ingest waits for the batch being
    merged instead of failing on a write-write conflict, and nothing is lost either way."""
    con, receiver = live
    spans = agent_runs(runs=12, steps=2)
    sender, statuses = _sender(receiver, spans, 4)
    paths = []
    for n in range(6):
        path = tmp_path / f"run-{n}.json"
        path.write_text(json_format.MessageToJson(encode_spans(agent_runs(runs=1, steps=1))))
        paths.append(path)
    sender.start()
    loaded = [toolkit.ingest(con, path)["status"].tolist() for path in paths]
    loaded.append(toolkit.ingest(con, paths)["status"].tolist())  # several: one deferred refresh
    sender.join(30)
    assert statuses == [200] * len(range(0, len(spans), 4))
    assert loaded == [["loaded"]] * 6 + [["skipped"] * 6]
    assert count(con, "events WHERE kind = 'span'") == len(spans) + 6 * 3
    assert count(con, "traces") == 12 + 6
    receiver.stop()
    _assert_same_as_a_rebuild(con)


def test_the_write_gate_lets_shared_holders_side_by_side_and_an_exclusive_one_alone():
    gate = db.WriteGate()
    order: list[str] = []
    with gate.shared(), gate.shared():  # two shared holders at once
        waiter = threading.Thread(target=lambda: _hold(gate.exclusive(), order, "exclusive"))
        waiter.start()
        time.sleep(0.05)
        late = threading.Thread(target=lambda: _hold(gate.shared(), order, "shared"))
        late.start()  # queued behind the waiting exclusive holder
        time.sleep(0.05)
        assert order == []
    waiter.join(5)
    late.join(5)
    assert order == ["exclusive", "shared"]
    with gate.exclusive(), gate.exclusive():  # re-entrant in one thread
        pass
    with gate.shared():
        pass


def _hold(context, order: list[str], name: str) -> None:
    with context:
        order.append(name)


def test_the_deriver_finds_new_rows_after_deleted_rows_were_compacted(live, monkeypatch):
    """Rowids are positions: the writer deletes the earlier rows of a trace it maps again, and
    a later commit can compact them away and move every later row down. The deriver's range
    for new traces then still covers their rows (the count of the events stored before them,
    less the events deleted since), so no refresh falls back to counting every trace's rows
    in ``events`` (a scan that grows with the database); the tables equal a rebuild."""
    con, receiver = live
    deriver = receiver.writer.deriver
    monkeypatch.setattr(deriver_module, "DERIVE_EVERY", 1e9)  # refresh when asked, below
    monkeypatch.setattr(deriver, "idle", lambda: False)
    ranges: list[int | None] = []
    rebuild = derived._rebuild
    monkeypatch.setattr(derived, "_rebuild", lambda con, m, first: ranges.append(first) or rebuild(con, m, first))  # fmt: skip
    spans = agent_runs(runs=1500, steps=3)  # 10,500 spans in 42 requests, each run across two
    for i in range(0, len(spans), 250):
        assert post(receiver.url, body(spans[i : i + 250]))[0] == 200
        if i // 250 % 3 == 2:
            derived.ensure(con)  # a refresh of the last three batches
    derived.ensure(con)
    stored = count(con, "events")
    slots = con.execute("SELECT max(rowid) + 1 FROM events").fetchall()[0][0]
    assert deriver.deleted > slots - stored  # rows were deleted, and some compacted away
    assert len(ranges) > 10 and None not in ranges
    receiver.stop()
    _assert_same_as_a_rebuild(con, repair=False)


def test_a_reader_on_another_cursor_repairs_the_tables_beside_the_deriver(live):
    """A cursor of the connection is not the connection the deriver keeps: its analyses
    refresh the derived tables themselves, in a transaction, beside the deriver's. When both
    update the same rows, the one that loses looks again instead of failing."""
    con, receiver = live
    spans = agent_runs(runs=200, steps=2)
    sender, statuses = _sender(receiver, spans, 20)
    sender.start()
    cursor = con.cursor()
    analyses = 0
    while sender.is_alive() or analyses < 2:
        toolkit.findings(cursor)  # raises if a conflict escapes
        analyses += 1
    sender.join(30)
    assert statuses == [200] * len(range(0, len(spans), 20))
    toolkit.findings(cursor)
    receiver.stop()
    _assert_same_as_a_rebuild(con, repair=False)
