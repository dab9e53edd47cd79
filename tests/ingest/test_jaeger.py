"""Jaeger JSON: every shared Jaeger file, the span mapping, logs as child events, rejects."""

from __future__ import annotations

import json

import pytest

import toolkit
from tests.conftest import FIXTURES, shared

UI = ("traces", "jaeger-ui", "packages", "jaeger-ui", "src")
STATS = (*UI, "components", "TracePage", "TraceStatistics", "tableValuesTestTrace")
JAEGER = ("traces", "jaeger")

# (path, events, traces, events with a parent, log events): counted by reading the files
# (spans + logs; a span has a parent when it has a reference; a log always has one).
FILES = [
    ((*UI, "components", "TracePage", "TraceTimelineViewer", "genaiTestTrace.json"), 57, 1, 56, 0),
    ((*UI, "components", "TracePage", "TraceGraph", "testTrace.json"), 11, 1, 10, 0),
    ((*UI, "components", "TracePage", "TraceFlamegraph", "testTrace.json"), 4, 1, 3, 0),
    ((*STATS, "spanAmongEachOtherGroupedAndSpans.json"), 17, 1, 16, 0),
    ((*STATS, "spanLongerAsParent.json"), 8, 1, 7, 0),
    ((*STATS, "spansAmongEachOther.json"), 12, 1, 11, 0),
    ((*STATS, "spansAmongEachOtherGrouped.json"), 15, 1, 14, 0),
    ((*STATS, "testTrace.json"), 11, 1, 10, 0),
    ((*STATS, "testTraceNormal.json"), 5, 1, 4, 0),
    ((*STATS, "traceWithMultipleSpansWithTheSameValueInDifferentTags.json"), 4, 1, 0, 0),
    ((*STATS, "traceWithOverlappingChildren.json"), 3, 1, 2, 0),
    ((*STATS, "traceWithOverlappingChildrenLongerThanParent.json"), 4, 1, 3, 0),
    ((*STATS, "traceWithSingleChildLongerThanParentAndStartsAfterParent.json"), 2, 1, 1, 0),
    ((*STATS, "traceWithThreeShortChildren.json"), 4, 1, 3, 0),
    ((*STATS, "traceWithThreeShortOverlappingChildren.json"), 4, 1, 3, 0),
    ((*STATS, "traceWithTwoChildrenStartedAtTraceStart.json"), 3, 1, 2, 0),
    ((*STATS, "traceWithTwoNonOverlappingChildren.json"), 3, 1, 2, 0),
    ((*UI, "utils", "fixtures", "otlp2jaeger-out.json"), 2, 1, 2, 0),
    ((*UI, "utils", "fixtures", "oltp2jaeger-multi-out.json"), 4, 1, 3, 0),
    (
        (
            *JAEGER,
            "cmd",
            "jaeger",
            "internal",
            "extension",
            "jaegerquery",
            "internal",
            "fixture",
            "otlp2jaeger-out.json",
        ),
        2,
        1,
        2,
        0,
    ),
    (
        (*JAEGER, "internal", "uimodel", "converter", "v1", "json", "fixtures", "ui_01.json"),
        7,
        1,
        5,
        2,
    ),
    # The domain model (protobuf JSON) of the same trace: base64 ids, RFC 3339, "5000ns".
    (
        (*JAEGER, "internal", "uimodel", "converter", "v1", "json", "fixtures", "domain_01.json"),
        7,
        1,
        5,
        2,
    ),
    # The anonymizer's span list (inline process, no trace wrapper).
    ((*JAEGER, "cmd", "anonymizer", "app", "uiconv", "fixtures", "trace_success.json"), 2, 1, 2, 0),
    # trace-analysis: protobuf-JSON spans, one per line; 466 spans (the last line has no newline).
    (
        ("traces", "trace-analysis", "lib", "src", "test", "resources", "test_data.json"),
        466,
        20,
        446,
        0,
    ),
]


def _one(con, sql: str, **params):
    return con.execute(sql, params).fetchall()[0][0]


@pytest.mark.parametrize(
    "parts, events, traces, parents, logs", FILES, ids=[f[0][-1] for f in FILES]
)
def test_every_shared_jaeger_file_loads_auto_detected(con, parts, events, traces, parents, logs):
    result = toolkit.ingest(con, shared(*parts))
    assert list(result["format"]) == ["jaeger"]
    assert list(result["rejected"]) == [0]
    assert _one(con, "SELECT count(*) FROM events") == events
    assert _one(con, "SELECT count(DISTINCT trace_id) FROM events") == traces
    assert _one(con, "SELECT count(coalesce(parent_span_id, parent_id)) FROM events") == parents
    assert _one(con, "SELECT count(*) FROM events WHERE event_id LIKE '%:log:%'") == logs
    assert _one(con, "SELECT count(*) FROM events WHERE ts IS NULL OR end_ts IS NULL") == logs


def test_span_counts_match_an_independent_json_count():
    """The literal table above agrees with counting the JSON spans directly."""
    for parts, events, *_ in FILES:
        path = shared(*parts)
        text = path.read_text()
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            assert len([line for line in text.splitlines() if line.strip()]) == events
            continue
        doc = doc.get("data", doc) if isinstance(doc, dict) else doc
        traces = doc if isinstance(doc, list) else [doc]
        spans = [s for t in traces for s in t.get("spans", [t])]
        assert len(spans) + sum(len(s.get("logs") or []) for s in spans) == events, parts


def test_files_that_are_not_traces_are_listed_unknown(con):
    # Dependency links ({parent, child, callCount}) are an aggregate, not spans.
    result = toolkit.ingest(con, shared(*UI, "components", "DependencyGraph", "sample_data"))
    assert sorted(result["status"]) == ["unknown", "unknown"]
    assert _one(con, "SELECT count(*) FROM events") == 0


def test_genai_multi_agent_trace(con):
    toolkit.ingest(con, shared(*FILES[0][0]))
    agents = con.execute(
        "SELECT source, count(*) FROM events WHERE attrs->>'gen_ai.agent.name' IS NOT NULL GROUP BY 1"
    ).fetchall()
    doc = json.loads(shared(*FILES[0][0]).read_text())
    named = [t["value"] for s in doc["spans"] for t in s["tags"] if t["key"] == "gen_ai.agent.name"]
    assert sorted(agents) == sorted((n, named.count(n)) for n in set(named))
    assert (
        _one(con, "SELECT count(*) FROM events WHERE attrs->>'gen_ai.operation.name' IS NOT NULL")
        == 17
    )
    assert _one(con, "SELECT count(*) FROM events WHERE status = 'error'") == 1
    # source is the process service for spans without an agent name
    services = {p["serviceName"] for p in doc["processes"].values()}
    assert {
        r[0] for r in con.execute("SELECT DISTINCT source FROM events").fetchall()
    } <= services | set(named)


def test_ui_json_logs_references_and_duplicates(con):
    toolkit.ingest(con, FIXTURES / "jaeger" / "ui_01.json")
    logs = con.execute(
        "SELECT event_id, coalesce(parent_span_id, parent_id), type, attrs->>'x' FROM events WHERE event_id LIKE '%:log:%' ORDER BY 1"
    ).fetchall()
    assert logs == [
        ("0000000000000002:log:1", "0000000000000002", "some-event", None),
        ("0000000000000002:log:2", "0000000000000002", "log", "y"),
    ]
    # span 2 is recorded twice: a duplicate delivery, kept
    assert _one(con, "SELECT count(*) FROM events WHERE event_id = '0000000000000002'") == 2
    # reference-test: CHILD_OF into another trace first, then CHILD_OF in this trace
    row = con.execute(
        "SELECT coalesce(parent_span_id, parent_id), attrs->>'parent_trace_id', attrs->>'ref_type' FROM events "
        "WHERE type = 'reference-test'"
    ).fetchall()
    assert row == [("0000000000000002", None, "CHILD_OF")]
    assert _one(con, "SELECT count(*) FROM events WHERE status = 'error'") == 1
    assert (
        _one(con, "SELECT target FROM events WHERE attrs->>'peer.service' IS NOT NULL")
        == "service-y"
    )


def test_protobuf_json_gives_the_same_events_as_the_ui_json(con):
    base = (*JAEGER, "internal", "uimodel", "converter", "v1", "json", "fixtures")
    toolkit.ingest(con, shared(*base, "ui_01.json"))
    cols = "event_id, coalesce(parent_id, ''), type, source, ts, end_ts, coalesce(status, '')"
    ui = con.execute(f"SELECT {cols} FROM events ORDER BY ALL").fetchall()
    other = toolkit.connect()
    toolkit.ingest(other, shared(*base, "domain_01.json"))
    assert other.execute(f"SELECT {cols} FROM events ORDER BY ALL").fetchall() == ui
    other.close()


def test_reingest_adds_nothing(con, tmp_path):
    path = shared(*FILES[0][0])
    toolkit.ingest(con, path)
    again = toolkit.ingest(con, path)
    assert list(again["status"]) == ["skipped"]
    copy = tmp_path / "copy.json"  # same records, other bytes
    copy.write_text(json.dumps(json.loads(path.read_text())))
    assert list(toolkit.ingest(con, copy)["rows"]) == [0]
    assert _one(con, "SELECT count(*) FROM events") == 57


def _span(span_id, **extra):
    return {
        "traceID": "t1",
        "spanID": span_id,
        "operationName": "op",
        "startTime": 1_000_000,
        "duration": 5,
        "processID": "p1",
    } | extra


def _write(tmp_path, spans, name="trace.json"):
    path = tmp_path / name
    path.write_text(
        json.dumps(
            {
                "data": [
                    {"traceID": "t1", "spans": spans, "processes": {"p1": {"serviceName": "svc"}}}
                ]
            }
        )
    )
    return path


@pytest.mark.parametrize(
    "span, parent, parent_trace, status",
    [
        (
            _span("b", references=[{"refType": "FOLLOWS_FROM", "traceID": "t1", "spanID": "a"}]),
            "a",
            None,
            None,
        ),
        (
            _span("b", references=[{"refType": "CHILD_OF", "traceID": "t9", "spanID": "x"}]),
            "x",
            "t9",
            None,
        ),
        (
            _span("b", tags=[{"key": "otel.status_code", "type": "string", "value": "OK"}]),
            None,
            None,
            "ok",
        ),
        (
            _span("b", tags=[{"key": "otel.status_code", "type": "string", "value": "ERROR"}]),
            None,
            None,
            "error",
        ),
        (_span("b", tags=[{"key": "error", "type": "bool", "value": "true"}]), None, None, "error"),
    ],
)
def test_span_cases(con, tmp_path, span, parent, parent_trace, status):
    toolkit.ingest(con, _write(tmp_path, [span]))
    row = con.execute(
        "SELECT coalesce(parent_span_id, parent_id), attrs->>'parent_trace_id', status, source, ts, end_ts FROM events"
    ).fetchall()
    assert row[0][:4] == (parent, parent_trace, status, "svc")
    assert str(row[0][4]) == "1970-01-01 00:00:01+00:00"
    assert (row[0][5] - row[0][4]).microseconds == 5


def test_bad_span_is_rejected_and_the_rest_loads(con, tmp_path):
    path = _write(tmp_path, [_span("a"), {"operationName": "no ids"}, _span("c", startTime="soon")])
    result = toolkit.ingest(con, path)
    assert list(result["rows"]) == [1] and list(result["rejected"]) == [2]
    rejects = con.execute("SELECT origin, reason FROM rejects ORDER BY origin").fetchall()
    assert rejects[0] == (f"{path}#2", "span lacks traceID or spanID")
    assert rejects[1][0] == f"{path}#3" and rejects[1][1].startswith("bad startTime")


def test_jsonl_bad_line_is_rejected_with_its_line(con, tmp_path):
    path = tmp_path / "spans.json"
    good = {
        "traceId": "AAAAAAAAAAAAAAAAAAAAAQ==",
        "spanId": "AAAAAAAAAAI=",
        "operationName": "op",
        "startTime": "2022-05-16T07:58:38.503123Z",
        "duration": "0.000225s",
    }
    path.write_text(
        json.dumps(good) + "\n\n{broken\n" + json.dumps(good | {"spanId": "AAAAAAAAAAM="})
    )
    result = toolkit.ingest(con, path)
    assert list(result["format"]) == ["jaeger"] and list(result["rejected"]) == [1]
    assert _one(con, "SELECT origin FROM rejects") == f"{path}:3"
    rows = con.execute(
        "SELECT trace_id, event_id, end_ts - ts FROM events ORDER BY event_id"
    ).fetchall()
    assert [r[:2] for r in rows] == [
        ("0000000000000001", "0000000000000002"),
        ("0000000000000001", "0000000000000003"),
    ]
    assert rows[0][2].microseconds == 225


def test_fixture_copy_is_identical_to_the_shared_file():
    src = shared(
        *JAEGER, "internal", "uimodel", "converter", "v1", "json", "fixtures", "ui_01.json"
    )
    assert (FIXTURES / "jaeger" / "ui_01.json").read_bytes() == src.read_bytes()
