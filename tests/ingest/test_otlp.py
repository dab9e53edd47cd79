"""OTLP/JSON and OTel SDK span dumps: shared files, messaging, links, status, rejects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import toolkit
from tests.conftest import shared
from toolkit.ingest import detect_format, ingest_file

TRACES = ("traces",)
JAEGER_FIXTURES = "jaeger/internal/storage/integration/fixtures/traces"
UI_FIXTURES = "jaeger-ui/packages/jaeger-ui/src/utils/fixtures"
VERCEL = "openinference/js/packages/openinference-vercel/test/__fixtures__/v6-spans"
OTLP_FILES = [
    *(
        f"{JAEGER_FIXTURES}/{n}.json"
        for n in [
            "default",
            "dur_trace",
            "example_trace",
            "log_tags_trace",
            "max_dur_trace",
            "multi_index_trace",
            "multi_spot_tags_trace",
            "multiple1_trace",
            "multiple3_trace",
            "multispottag_dur_trace",
            "multispottag_maxdur_trace",
            "multispottag_opname_dur_trace",
            "multispottag_opname_maxdur_trace",
            "multispottag_opname_trace",
            "opname_dur_trace",
            "opname_maxdur_trace",
            "opname_trace",
            "process_tags_trace",
            "scope_attributes_trace",
            "scope_name_version_trace",
            "span_tags_trace",
            "tags_dur_trace",
            "tags_escaped_operator_trace_1",
            "tags_escaped_operator_trace_2",
            "tags_maxdur_trace",
            "tags_opname_dur_trace",
            "tags_opname_maxdur_trace",
            "tags_opname_trace",
            "tags_wildcard_regex_1",
            "tags_wildcard_regex_2",
        ]
    ),
    "jaeger/cmd/jaeger/internal/extension/jaegerquery/internal/fixture/otlp2jaeger-in.json",
    "opentelemetry-proto/examples/trace.json",
    # -in-error is a valid OTLP file: jaeger-ui's converter fails on it only because its
    # resource has no service.name; here that just leaves `source` empty.
    f"{UI_FIXTURES}/otlp2jaeger-in-error.json",
    f"{UI_FIXTURES}/otlp2jaeger-in.json",
    f"{UI_FIXTURES}/otlp2jaeger-multi-in-combined.json",
    f"{UI_FIXTURES}/otlp2jaeger-multi-in.json.txt",  # JSONL: one request per line
]
SDK_FILES = [
    *(
        f"any-agent/tests/assets/{n}_trace.json"
        for n in ["AGNO", "GOOGLE", "LANGCHAIN", "OPENAI", "TINYAGENT"]
    ),
    *(
        f"{VERCEL}/{n}.json"
        for n in [
            "ai-embed-doEmbed",
            "ai-embed",
            "ai-generateObject-doGenerate",
            "ai-generateObject",
            "ai-generateText-doGenerate",
            "ai-generateText",
            "ai-streamText-doStream",
            "ai-streamText",
            "all-spans",
            "spans-by-operation",
        ]
    ),
]


def _otlp_spans(path: Path) -> list[dict]:
    """The spans of an OTLP/JSON file, read independently of the importer."""
    text = path.read_text()
    try:
        requests = [json.loads(text)]
    except ValueError:
        requests = [json.loads(line) for line in text.splitlines() if line.strip()]
    out = []
    for r in requests:
        for rs in r["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    links = s.get("links", [])
                    # a link is causation for a root or consumer span
                    use_link = bool(links) and (not s.get("parentSpanId") or s.get("kind") == 5)
                    out.append(
                        {
                            "trace": s["traceId"].lower(),
                            "parent": s.get("parentSpanId") or use_link,
                            "events": len(s.get("events", [])),
                            "cross": use_link and links[0]["traceId"] != s["traceId"],
                        }
                    )
    return out


def _sdk_spans(path: Path) -> list[dict]:
    doc = json.loads(path.read_text())
    if isinstance(doc, dict):
        doc = doc["spans"] if "spans" in doc else [s for v in doc.values() for s in v]
    out = []
    for s in doc:
        ctx = s.get("spanContext") or s["context"]
        parent = (s.get("parent") or {}).get("span_id") or s.get("parentSpanId")
        out.append(
            {
                "trace": str(ctx.get("traceId") or ctx.get("trace_id")),
                "parent": parent,
                "events": len(s.get("events", [])),
                "cross": False,  # no SDK dump in the shared data carries links
            }
        )
    return out


def _counts(con) -> dict:
    row = con.execute("""
        SELECT count(*), count(DISTINCT trace_id), count(coalesce(parent_span_id, parent_id)),
               count(*) FILTER (WHERE event_id LIKE '%:event:%'), count(attrs->>'$.parent_trace_id')
        FROM events""").fetchall()[0]
    return dict(
        zip(["events", "traces", "parented", "span_events", "cross_trace"], row, strict=True)
    )


@pytest.mark.parametrize(
    ("rel", "fmt"), [(f, "otlp") for f in OTLP_FILES] + [(f, "otel_sdk") for f in SDK_FILES]
)
def test_shared_file_loads_whole(con, tmp_path, rel, fmt):
    path = shared(*TRACES, rel)
    spans = _otlp_spans(path) if fmt == "otlp" else _sdk_spans(path)
    assert detect_format(path) == fmt
    result = toolkit.ingest(con, path)
    n_events = sum(s["events"] for s in spans)
    assert result[["format", "rows", "rejected"]].values.tolist() == [
        [fmt, len(spans) + n_events, 0]
    ]
    assert _counts(con) == {
        "events": len(spans) + n_events,
        "traces": len({s["trace"] for s in spans}),
        "parented": sum(bool(s["parent"]) for s in spans) + n_events,
        "span_events": n_events,
        "cross_trace": sum(s["cross"] for s in spans),  # only tags_opname_trace has links
    }
    again = tmp_path / path.name  # the same records again, in a file with other bytes
    again.write_bytes(path.read_bytes() + b"\n")
    assert toolkit.ingest(con, again)[["status", "rows"]].values.tolist() == [["loaded", 0]]


@pytest.mark.parametrize(
    ("rel", "events", "traces", "system", "task"),
    [
        # 5 spans with 2 nameless events each, one trace, no parents.
        (
            f"{JAEGER_FIXTURES}/example_trace.json",
            15,
            1,
            "example-service-2",
            "example-operation-2",
        ),
        ("opentelemetry-proto/examples/trace.json", 1, 1, "my.service", "I'm a server span"),
        # The same span twice: a redelivery, kept as two events with one id.
        (f"{UI_FIXTURES}/otlp2jaeger-in.json", 2, 1, "telemetrygen", "okey-dokey-0"),
        (f"{UI_FIXTURES}/otlp2jaeger-multi-in.json.txt", 4, 1, "example-trace", "main"),
        (
            "any-agent/tests/assets/GOOGLE_trace.json",
            7,
            1,
            "any_agent",
            "Find what year it is in the America/New_York timezone and write the value (single number) "
            "to a file. Finally, return a list of the steps you have taken.",
        ),
        (
            f"{VERCEL}/ai-streamText-doStream.json",
            3,
            1,
            "openai.responses",
            "ai.streamText.doStream",
        ),
    ],
)
def test_literal_counts_and_trace_rows(con, rel, events, traces, system, task):
    toolkit.ingest(con, shared(*TRACES, rel))
    assert con.execute("SELECT count(*), count(DISTINCT trace_id) FROM events").fetchall() == [
        (events, traces)
    ]
    assert con.execute("SELECT system, task FROM traces").fetchall() == [(system, task)]


def test_proto_example_maps_fields(con):
    toolkit.ingest(con, shared(*TRACES, "opentelemetry-proto/examples/trace.json"))
    row = con.execute("""
        SELECT trace_id, event_id, coalesce(parent_span_id, parent_id), type, source, ts::VARCHAR, end_ts::VARCHAR, status,
               attrs->>'$."span.kind"', attrs->>'$."otel.scope.name"', attrs->>'$."my.scope.attribute"'
        FROM events""").fetchall()
    assert row == [
        (
            "5b8efff798038103d269b633813fc60c",
            "eee19b7ec3c1b174",
            "eee19b7ec3c1b173",
            "I'm a server span",
            "my.service",
            "2018-12-13 14:51:00+00",
            "2018-12-13 14:51:01+00",
            None,
            "server",
            "my.library",
            "some scope attribute",
        )
    ]


def test_any_agent_integer_ids_become_hex(con):
    toolkit.ingest(con, shared(*TRACES, "any-agent/tests/assets/OPENAI_trace.json"))
    root = con.execute(
        "SELECT trace_id, event_id, source, type FROM events WHERE coalesce(parent_span_id, parent_id) IS NULL"
    ).fetchall()
    assert root == [
        (
            f"{100927429609276267646756448943279827607:032x}",
            f"{12324293800750531911:016x}",
            "any_agent",
            "invoke_agent",
        )
    ]
    assert con.execute(
        "SELECT count(*) FROM events WHERE type = 'execute_tool' AND target IS NOT NULL"
    ).fetchall() == [(2,)]


# --- small literal OTLP cases --------------------------------------------------------------


def _kv(attrs: dict) -> list[dict]:
    def value(v):
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        return {"stringValue": v}

    return [{"key": k, "value": value(v)} for k, v in attrs.items()]


def _span(trace: str, span: str, name: str, start: int = 1, **extra) -> dict:
    attrs = extra.pop("attrs", {})
    return {
        "traceId": trace,
        "spanId": span,
        "name": name,
        "startTimeUnixNano": str(start * 10**9),
        "endTimeUnixNano": str(start * 10**9 + 5000),
        "attributes": _kv(attrs),
        **extra,
    }


def _request(spans: list[dict], service: str = "svc") -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _kv({"service.name": service})},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
            }
        ]
    }


T1, T2, T3 = "a" * 32, "b" * 32, "c" * 32


def _write(tmp_path: Path, name: str, requests: list[dict], jsonl: bool = False) -> Path:
    path = tmp_path / name
    if jsonl:
        path.write_text("\n".join(json.dumps(r) for r in requests) + "\n")
    else:
        path.write_text(json.dumps(requests[0], indent=2))
    return path


def test_messaging_publish_duplicate_delivery_and_cross_trace_link(con, tmp_path):
    msg = {"messaging.system": "kafka", "messaging.destination.name": "orders"}
    spans = [
        _span(
            T1,
            "1" * 16,
            "orders publish",
            1,
            kind=4,
            attrs={**msg, "messaging.operation.type": "publish", "messaging.message.id": "m1"},
        ),
        _span(
            T1,
            "2" * 16,
            "orders publish",
            2,
            kind=4,
            attrs={**msg, "messaging.operation.type": "publish", "messaging.message.id": "m2"},
        ),
    ]
    link = [{"traceId": T1, "spanId": "2" * 16}]
    consumers = [
        _span(
            T2,
            "3" * 16,
            "orders process",
            3,
            kind=5,
            links=link,
            attrs={**msg, "messaging.operation": "process", "messaging.message.id": "m2"},
        ),
        _span(
            T3,
            "4" * 16,
            "orders process",
            4,
            kind=5,
            links=link,
            attrs={
                **msg,
                "messaging.operation.type": "process",
                "messaging.message.id": "m2",
                "messaging.kafka.message.delivery_count": 2,
            },
        ),
    ]
    path = _write(
        tmp_path, "msg.jsonl", [_request(spans, "shop"), _request(consumers, "billing")], jsonl=True
    )
    assert detect_format(path) == "otlp"
    toolkit.ingest(con, path)
    rows = con.execute("""
        SELECT trace_id, event_id, coalesce(parent_span_id, parent_id), type, source, target, idempotency_key,
               attrs->>'parent_trace_id', origin[-7:]
        FROM events ORDER BY ts""").fetchall()
    assert rows == [
        (T1, "1" * 16, None, "publish", "shop", "orders", None, None, "jsonl:1"),
        (T1, "2" * 16, None, "publish", "shop", "orders", None, None, "jsonl:1"),
        (T2, "3" * 16, "2" * 16, "process", "billing", "orders", "m2", T1, "jsonl:2"),
        (T3, "4" * 16, "2" * 16, "process", "billing", "orders", "m2", T1, "jsonl:2"),
    ]
    # m1 is unhandled (nobody names it as parent); m2 was processed twice (one key, two events).
    unhandled = con.execute("""
        SELECT event_id FROM events p WHERE type = 'publish'
          AND NOT EXISTS (SELECT 1 FROM events c WHERE c.parent_id = p.event_id)""").fetchall()
    assert unhandled == [("1" * 16,)]
    assert con.execute(
        "SELECT idempotency_key, count(*) FROM events WHERE idempotency_key IS NOT NULL "
        "GROUP BY ALL"
    ).fetchall() == [("m2", 2)]
    assert con.execute(
        "SELECT attrs->'$.\"messaging.kafka.message.delivery_count\"' FROM events "
        "WHERE event_id = $e",
        {"e": "4" * 16},
    ).fetchall() == [("2",)]


def test_link_on_a_child_span_is_causation_and_its_tree_parent_containment(con, tmp_path):
    spans = [
        _span(
            T2,
            "5" * 16,
            "receive",
            1,
            kind=5,
            parentSpanId="6" * 16,
            links=[{"traceId": T1, "spanId": "7" * 16, "attributes": _kv({"why": "batch"})}],
        )
    ]
    toolkit.ingest(con, _write(tmp_path, "link.json", [_request(spans)]))
    row = con.execute("""SELECT parent_id, attrs->>'parent_trace_id', parent_span_id,
                                attrs->'links'->0->'attributes'->>'why' FROM events""").fetchall()
    assert row == [("7" * 16, T1, "6" * 16, "batch")]


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({}, None),
        ({"status": {"code": 1}}, "ok"),
        ({"status": {"code": "STATUS_CODE_OK"}}, "ok"),
        ({"status": {"code": 2, "message": "boom"}}, "error"),
        ({"status": {"code": "STATUS_CODE_ERROR"}}, "error"),
        ({"attrs": {"error.type": "timeout"}}, "error"),
        (
            {
                "status": {"code": 1},
                "events": [
                    {
                        "name": "exception",
                        "timeUnixNano": "1000000500",
                        "attributes": _kv({"exception.message": "bad", "exception.type": "E"}),
                    }
                ],
            },
            "error",
        ),
    ],
)
def test_status_mapping(con, tmp_path, extra, status):
    toolkit.ingest(
        con, _write(tmp_path, "s.json", [_request([_span(T1, "8" * 16, "op", **extra)])])
    )
    assert con.execute(
        "SELECT status FROM events WHERE event_id = $e", {"e": "8" * 16}
    ).fetchall() == [(status,)]


def test_exception_event_is_a_child_event(con, tmp_path):
    ev = {
        "name": "exception",
        "timeUnixNano": "1000000500",
        "attributes": _kv({"exception.message": "bad"}),
    }
    toolkit.ingest(
        con, _write(tmp_path, "e.json", [_request([_span(T1, "8" * 16, "op", events=[ev])])])
    )
    assert con.execute(
        "SELECT event_id, coalesce(parent_span_id, parent_id), type, status, content, ts::VARCHAR FROM events "
        "WHERE event_id LIKE '%:event:%'"
    ).fetchall() == [
        (
            "8" * 16 + ":event:1",
            "8" * 16,
            "exception",
            "error",
            "bad",
            "1970-01-01 00:00:01+00",
        )
    ]


def test_base64_ids_are_decoded(con, tmp_path):
    span = _span("W47/95gDgQPSabYzgT/GDA==", "7uGbfsPBsXQ=", "op")
    toolkit.ingest(con, _write(tmp_path, "b64.json", [_request([span])]))
    assert con.execute("SELECT trace_id, event_id FROM events").fetchall() == [
        ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
    ]


def test_one_broken_span_is_rejected_the_rest_loads(con, tmp_path):
    spans = [_span(T1, "1" * 16, "a"), _span(T1, "", "b"), _span(T1, "3" * 16, "c")]
    spans[2]["parentSpanId"] = "1" * 16
    path = _write(tmp_path, "broken.json", [_request(spans)])
    result = toolkit.ingest(con, path)
    assert result[["rows", "rejected"]].values.tolist() == [[2, 1]]
    assert con.execute("SELECT origin, reason FROM rejects").fetchall() == [
        (f"{path}#2", "missing span id")
    ]
    no_start = _span(T1, "9" * 16, "d")
    del no_start["startTimeUnixNano"]
    path2 = _write(
        tmp_path,
        "nostart.jsonl",
        [_request([_span(T2, "1" * 16, "x")]), {"oops": 1}, _request([no_start])],
        jsonl=True,
    )
    path2.write_text(path2.read_text() + "{not json\n")
    assert toolkit.ingest(con, path2)[["rows", "rejected"]].values.tolist() == [[1, 3]]
    assert con.execute(
        "SELECT origin[-15:], reason FROM rejects WHERE origin LIKE '%nostart%' ORDER BY 1"
    ).fetchall() == [
        ("nostart.jsonl:2", "no resourceSpans: not an ExportTraceServiceRequest"),
        ("nostart.jsonl:3", "missing or unreadable start time"),
        ("nostart.jsonl:4", "not valid JSON"),
    ]


def test_not_json_document_is_rejected_whole(con, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "resourceSpans": [\n')
    assert ingest_file(con, path, "otlp")["rejected"] == 1
    [(origin, reason)] = con.execute("SELECT origin, reason FROM rejects").fetchall()
    assert (origin, reason.split(":")[:2]) == (f"{path}#0", ["file", " not valid JSON"])


def test_reingest_adds_nothing(con, tmp_path):
    spans = [_span(T1, "1" * 16, "a", events=[{"name": "e", "timeUnixNano": "1000000001"}])]
    path = _write(tmp_path, "r.json", [_request(spans)])
    assert toolkit.ingest(con, path)["rows"].tolist() == [2]
    other = tmp_path / "r2.json"
    other.write_text(path.read_text() + "\n")
    assert toolkit.ingest(con, other)[["status", "rows"]].values.tolist() == [["loaded", 0]]
