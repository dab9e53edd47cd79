"""Zipkin v2 JSON: every shared Zipkin file, shared RPC spans, Kafka links, skew, rejects."""

from __future__ import annotations

import json

import pytest

import toolkit
from tests.conftest import FIXTURES, shared

LENS = ("traces", "zipkin", "zipkin-lens", "testdata")
BENCH = ("traces", "zipkin", "benchmarks", "src", "test", "resources")

# (path, spans, annotation events, shared server halves, error spans): literal counts read
# from the files (a span with tag "error", even empty, is an error in Zipkin).
FILES = [
    ((*LENS, "ascend.json"), 8, 0, 2, 0),
    ((*LENS, "envoy.json"), 1, 0, 1, 0),
    ((*LENS, "messaging-kafka.json"), 28, 0, 0, 3),
    ((*LENS, "messaging.json"), 4, 0, 0, 0),
    ((*LENS, "simple-db-p6.json"), 5, 0, 0, 0),
    ((*LENS, "skew.json"), 4, 0, 1, 0),
    ((*LENS, "smartthings-oauth-authorization.json"), 175, 9, 45, 2),
    ((*LENS, "yelp.json"), 16, 1, 4, 0),
    ((*BENCH, "zipkin2-client.json"), 1, 2, 0, 0),  # a single span object, not a list
    ((*BENCH, "zipkin2-chinese.json"), 1, 0, 0, 1),
]


def _one(con, sql: str):
    return con.execute(sql).fetchall()[0][0]


def _spans(parts) -> list[dict]:
    doc = json.loads(shared(*parts).read_text())
    return doc if isinstance(doc, list) else [doc]


@pytest.mark.parametrize(
    "parts, spans, annotations, servers, errors", FILES, ids=[f[0][-1] for f in FILES]
)
def test_every_shared_zipkin_file_loads_auto_detected(
    con, parts, spans, annotations, servers, errors
):
    raw = _spans(parts)  # independent count: the JSON itself
    assert (len(raw), sum(len(s.get("annotations", [])) for s in raw)) == (spans, annotations)
    assert sum(1 for s in raw if s.get("shared")) == servers
    result = toolkit.ingest(con, shared(*parts))
    assert list(result["format"]) == ["zipkin"] and list(result["rejected"]) == [0]
    assert _one(con, "SELECT count(*) FROM events") == spans + annotations
    assert _one(con, "SELECT count(DISTINCT trace_id) FROM events") == 1
    assert _one(con, "SELECT count(*) FROM events WHERE event_id LIKE '%:ann:%'") == annotations
    halves = "SELECT count(*) FROM events WHERE regexp_matches(event_id, ':server(:\\d+)?$')"
    assert _one(con, halves) == servers
    assert _one(con, "SELECT count(*) FROM events WHERE status = 'error'") == errors
    # shared spans are not duplicates: no (trace_id, source, event_id) repeats
    assert (
        _one(con, "SELECT count(*) - count(DISTINCT (trace_id, source, event_id)) FROM events") == 0
    )
    # every span keeps its recorded timestamp (skew is not corrected)
    recorded = sorted(s["timestamp"] for s in raw)
    got = con.execute(
        "SELECT epoch_us(ts) FROM events WHERE event_id NOT LIKE '%:ann:%' ORDER BY 1"
    ).fetchall()
    assert [g[0] for g in got] == recorded


def test_shared_rpc_is_a_client_to_server_edge(con):
    toolkit.ingest(con, FIXTURES / "zipkin" / "skew.json")
    rows = con.execute(
        "SELECT event_id, coalesce(parent_span_id, parent_id), source, attrs->>'kind' FROM events ORDER BY event_id"
    ).fetchall()
    assert rows == [
        ("43210ae0c10d1234", "74280ae0c10d8062:server", "serviceb", None),  # child of the server
        ("74280ae0c10d8062", "bf396325699c84bf", "servicea", "CLIENT"),
        ("74280ae0c10d8062:server", "74280ae0c10d8062", "serviceb", "SERVER"),
        ("bf396325699c84bf", None, "servicea", "SERVER"),
    ]
    # skew as recorded: the server half starts before the client half that called it
    skew = _one(
        con,
        """
        SELECT epoch_us(s.ts) - epoch_us(c.ts) FROM events s JOIN events c ON s.parent_span_id = c.event_id
        WHERE s.event_id = '74280ae0c10d8062:server'""",
    )
    assert skew == 1470150004008761 - 1470150004074202


def test_every_shared_client_server_pair_is_linked(con):
    parts = (*LENS, "smartthings-oauth-authorization.json")
    raw = _spans(parts)
    client_ids = {s["id"] for s in raw if not s.get("shared")}
    paired = sum(1 for s in raw if s.get("shared") and s["id"] in client_ids)
    toolkit.ingest(con, shared(*parts))
    edges = _one(
        con,
        """
        SELECT count(*) FROM events s JOIN events c
          ON c.trace_id = s.trace_id AND c.event_id = s.parent_span_id
        WHERE s.event_id LIKE s.parent_span_id || ':server%' AND c.attrs->>'kind' = 'CLIENT'""",
    )
    assert edges == paired == 45


def test_fan_out_server_halves_get_distinct_ids_and_keep_their_children(con):
    # smartthings: one CLIENT "send iot-events360" and five SERVER "receive" halves sharing its id,
    # received on two hosts; each processing span belongs to the receive on its host just before it.
    toolkit.ingest(con, shared(*LENS, "smartthings-oauth-authorization.json"))
    rows = con.execute("""
        SELECT event_id, coalesce(parent_span_id, parent_id) FROM events
        WHERE coalesce(parent_span_id, parent_id) LIKE '9d2d35b746db84f3%' ORDER BY event_id""").fetchall()
    assert rows == [
        ("975e74022b72e1cd", "9d2d35b746db84f3:server"),  # .79 at ...550479 -> receive at ...549997
        ("9d2d35b746db84f3:server", "9d2d35b746db84f3"),
        ("9d2d35b746db84f3:server:2", "9d2d35b746db84f3"),
        ("9d2d35b746db84f3:server:3", "9d2d35b746db84f3"),
        ("9d2d35b746db84f3:server:4", "9d2d35b746db84f3"),
        ("9d2d35b746db84f3:server:5", "9d2d35b746db84f3"),
        ("d645461738ed0e17", "9d2d35b746db84f3:server:5"),  # .187 at ...564862 -> ...564455
        ("de67d452708a545a", "9d2d35b746db84f3:server:2"),  # .79 at ...553777 -> ...553308
    ]


def test_kafka_consumers_point_to_their_producers(con):
    parts = (*LENS, "messaging-kafka.json")
    raw = _spans(parts)
    producers = {s["id"] for s in raw if s.get("kind") == "PRODUCER"}
    linked = sum(1 for s in raw if s.get("kind") == "CONSUMER" and s.get("parentId") in producers)
    toolkit.ingest(con, shared(*parts))
    got = _one(
        con,
        """
        SELECT count(*) FROM events c JOIN events p ON p.event_id = c.parent_id
        WHERE c.attrs->>'kind' = 'CONSUMER' AND p.attrs->>'kind' = 'PRODUCER'""",
    )
    assert got == linked == 6
    assert (
        _one(con, "SELECT count(DISTINCT target) FROM events WHERE attrs->>'kind' = 'PRODUCER'")
        == 1
    )


def test_annotations_are_child_events(con):
    toolkit.ingest(con, shared(*BENCH, "zipkin2-client.json"))
    rows = con.execute(
        "SELECT event_id, coalesce(parent_span_id, parent_id), type, source, target, epoch_us(ts) FROM events ORDER BY event_id"
    ).fetchall()
    assert rows == [
        ("4d1e00c0db9010db", "86154a4ba6e91385", "get", "frontend", "backend", 1472470996199000),
        (
            "4d1e00c0db9010db:ann:1",
            "4d1e00c0db9010db",
            "foo",
            "frontend",
            "backend",
            1472470996238000,
        ),
        (
            "4d1e00c0db9010db:ann:2",
            "4d1e00c0db9010db",
            "bar",
            "frontend",
            "backend",
            1472470996403000,
        ),
    ]


def test_reingest_adds_nothing(con, tmp_path):
    toolkit.ingest(con, FIXTURES / "zipkin" / "skew.json")
    copy = tmp_path / "skew-compact.json"
    copy.write_text(json.dumps(json.loads((FIXTURES / "zipkin" / "skew.json").read_text())))
    assert list(toolkit.ingest(con, copy)["rows"]) == [0]
    assert _one(con, "SELECT count(*) FROM events") == 4


def test_server_half_without_its_client_keeps_the_recorded_parent(con, tmp_path):
    path = tmp_path / "server.json"
    path.write_text(
        json.dumps(
            [
                {
                    "traceId": "t",
                    "id": "b",
                    "parentId": "a",
                    "kind": "SERVER",
                    "shared": True,
                    "timestamp": 1,
                    "localEndpoint": {"serviceName": "s"},
                }
            ]
        )
    )
    toolkit.ingest(con, path)
    assert con.execute(
        "SELECT event_id, coalesce(parent_span_id, parent_id), end_ts FROM events"
    ).fetchall() == [("b:server", "a", None)]


def test_bad_span_is_rejected_and_the_rest_loads(con, tmp_path):
    path = tmp_path / "spans.json"
    ok = {"traceId": "t", "id": "a", "timestamp": 1, "localEndpoint": {"serviceName": "s"}}
    path.write_text(json.dumps([ok, {"id": "b"}, ok | {"id": "c", "timestamp": "x"}, 7]))
    result = toolkit.ingest(con, path)
    assert list(result["rows"]) == [1] and list(result["rejected"]) == [3]
    assert con.execute("SELECT origin, reason FROM rejects ORDER BY origin").fetchall() == [
        (f"{path}#2", "span lacks traceId or id"),
        (f"{path}#3", "timestamp is not a number of microseconds: 'x'"),
        (f"{path}#4", "span is not a JSON object but number"),
    ]
