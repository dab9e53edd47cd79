"""Langfuse trace exports: every shared export, both copies added once, scores, the mapping."""

from __future__ import annotations

import json

import pytest

import toolkit
from tests.conftest import FIXTURES, shared

SEEDER = (
    "traces",
    "langfuse",
    "packages",
    "shared",
    "scripts",
    "seeder",
    "utils",
    "framework-traces",
)
WORKER = ("traces", "langfuse", "worker", "src", "__tests__", "chatml", "framework-traces")

# (folder, file, observations, scores, observations with a parent): counted from the files.
FILES = [
    (SEEDER, "agno-2025-06-11.json", 6, 0, 5),
    (SEEDER, "autogen-2025-06-06.json", 2, 0, 1),
    (SEEDER, "beeai-2025-08-01.json", 29, 2, 28),
    (SEEDER, "google-adk-2025-08-28.json", 5, 2, 4),
    (SEEDER, "google-gemini-2025-08-01.json", 1, 2, 0),
    (SEEDER, "google-vertex-tools-langchain-2025-09-19.json", 1, 0, 0),
    (SEEDER, "koog-2025-08-26.json", 11, 0, 10),
    (SEEDER, "langgraph-2025-08-22.json", 9, 2, 8),
    (SEEDER, "llamaindex-2025-06-05.json", 2, 0, 1),
    (SEEDER, "microsoft-agent-2025-10-14.json", 4, 2, 3),
    (SEEDER, "openai-agents-2025-09-30.json", 5, 2, 4),
    (SEEDER, "openai-assistants-2024-05-29.json", 4, 0, 1),
    (SEEDER, "pydantic-ai-tools-2025-12-04.json", 12, 0, 11),
    (WORKER, "agno-2025-06-11.trace.json", 6, 0, 5),
    (WORKER, "autogen-2025-06-06.trace.json", 2, 0, 1),
    (WORKER, "beeai-2025-08-01.trace.json", 29, 2, 28),
    (WORKER, "google-adk-2025-08-28.trace.json", 5, 2, 4),
    (WORKER, "google-gemini-2025-08-01.trace.json", 1, 2, 0),
    (WORKER, "koog-2025-08-26.trace.json", 11, 0, 10),
    (WORKER, "langgraph-python-2025-08-22.trace.json", 9, 2, 8),
    (WORKER, "llamaindex-2025-06-05.trace.json", 2, 0, 1),
    (WORKER, "openai-agents-2025-09-30.trace.json", 5, 2, 4),
    (WORKER, "pydantic-ai-2025-06-06.trace.json", 3, 0, 2),
    (WORKER, "pydantic-ai-tools-2025-06-06.trace.json", 3, 0, 2),
    (WORKER, "pydantic-ai-tools-2025-12-04.trace.json", 12, 0, 11),
    (WORKER, "pydantic-ai-with-gemini-2025-12-24.trace.json", 1, 0, 0),
    (WORKER, "vertex-ai-2025-08-01.trace.json", 1, 2, 0),
]


def _one(con, sql: str):
    return con.execute(sql).fetchall()[0][0]


def _doc(folder, name) -> dict:
    return json.loads(shared(*folder, name).read_text())


@pytest.mark.parametrize(
    "folder, name, observations, scores, parents", FILES, ids=[f[1] for f in FILES]
)
def test_every_shared_export_loads_auto_detected(con, folder, name, observations, scores, parents):
    doc = _doc(folder, name)  # independent count: the JSON itself
    assert len(doc["observations"]) == observations
    assert len(doc["trace"].get("scores") or []) == scores
    assert sum(1 for o in doc["observations"] if o.get("parentObservationId")) == parents
    result = toolkit.ingest(con, shared(*folder, name))
    assert list(result["format"]) == ["langfuse"] and list(result["rejected"]) == [0]
    assert _one(con, "SELECT count(*) FROM events") == observations
    assert _one(con, "SELECT count(coalesce(parent_span_id, parent_id)) FROM events") == parents
    assert _one(con, "SELECT count(*) FROM annotations") == scores
    assert con.execute("SELECT trace_id FROM traces").fetchall() == [(doc["trace"]["id"],)]
    assert _one(con, "SELECT count(*) FROM events WHERE ts IS NULL") == 0
    types = {r[0] for r in con.execute("SELECT DISTINCT type FROM events").fetchall()}
    assert types == {o["type"].lower() for o in doc["observations"]}


def test_both_copies_add_each_record_once(con):
    """The two folders hold the same traces (some byte-identical, some re-exported)."""
    observations, scores, traces = set(), set(), set()
    for folder, name, *_ in FILES:
        doc = _doc(folder, name)
        traces.add(doc["trace"]["id"])
        observations |= {(o["traceId"], o["id"]) for o in doc["observations"]}
        scores |= {s["id"] for s in doc["trace"].get("scores") or []}
    toolkit.ingest(con, shared(*SEEDER))
    seeder_rows = _one(con, "SELECT count(*) FROM events")
    assert seeder_rows == 91
    result = toolkit.ingest(con, shared(*WORKER))
    assert (result["status"] == "loaded").sum() == 13  # pydantic-ai-tools-2025-12-04: same bytes
    assert _one(con, "SELECT count(*) FROM events") == len(observations) == 96
    assert _one(con, "SELECT count(*) FROM annotations") == len(scores) == 14
    assert _one(con, "SELECT count(*) FROM traces") == len(traces) == 16
    assert _one(con, "SELECT count(*) FROM rejects") == 0


def test_the_same_trace_in_another_order_adds_nothing(con):
    toolkit.ingest(con, shared(*WORKER, "pydantic-ai-2025-06-06.trace.json"))
    again = toolkit.ingest(con, shared(*WORKER, "pydantic-ai-tools-2025-06-06.trace.json"))
    assert list(again["rows"]) == [0]
    assert _one(con, "SELECT count(*) FROM events") == 3


def test_trace_row_and_scores(con):
    toolkit.ingest(con, shared(*SEEDER, "openai-agents-2025-09-30.json"))
    assert con.execute("SELECT system, task FROM traces").fetchall() == [
        ("openinference.instrumentation.openai_agents", "Agent workflow")
    ]
    rows = con.execute(
        "SELECT mode, annotator, confidence, evidence->>'score_id' FROM annotations ORDER BY mode"
    ).fetchall()
    assert rows == [
        ("hallucination", "langfuse:eval", 0.0, "f60dc1c4-17af-4512-ada9-f2440f437ce1"),
        ("toxicity", "langfuse:eval", 0.8, "0721bd4f-a35c-4d29-a2c6-38879e1d758e"),
    ]
    # observations under an AGENT take the nearest agent's name as source
    sources = con.execute("SELECT type, source FROM events ORDER BY ts, type").fetchall()
    assert ("agent", "Agent workflow") in sources
    assert {s for t, s in sources if t in ("generation", "tool")} == {"Hello world"}


def test_fixture_export_maps_fields():
    con = toolkit.connect()
    toolkit.ingest(con, FIXTURES / "langfuse" / "autogen-2025-06-06.json")
    assert con.execute("SELECT system, task FROM traces").fetchall() == [
        ("autogen,dev", "Say 'Hello World!'")
    ]
    gen = con.execute(
        "SELECT source, content, attrs->>'model', attrs->>'input' IS NOT NULL FROM events "
        "WHERE type = 'generation'"
    ).fetchall()
    doc = json.loads((FIXTURES / "langfuse" / "autogen-2025-06-06.json").read_text())
    o = next(o for o in doc["observations"] if o["type"] == "GENERATION")
    expected = o["output"] if isinstance(o["output"], str) else None
    assert gen[0][0] == o["name"] and gen[0][2] == o["model"] and gen[0][3]
    if expected is not None:
        assert gen[0][1] == expected
    else:
        assert json.loads(gen[0][1]) == o["output"]
    con.close()


def _export(tmp_path, observations, scores=()):
    path = tmp_path / "export.json"
    trace = {
        "id": "T",
        "projectId": "p",
        "name": "run",
        "input": "do it",
        "tags": [],
        "scores": list(scores),
    }
    path.write_text(json.dumps({"trace": trace, "observations": observations}))
    return path


def _obs(id_, **extra):
    return {
        "id": id_,
        "traceId": "T",
        "type": "SPAN",
        "name": id_,
        "parentObservationId": None,
        "startTime": "2025-01-01T00:00:00.000Z",
        "endTime": "2025-01-01T00:00:01.000Z",
        "level": "DEFAULT",
        "input": None,
        "output": None,
    } | extra


def test_small_cases(con, tmp_path):
    path = _export(
        tmp_path,
        [
            _obs("a", type="AGENT", name="planner"),
            {"name": "no id"},
            _obs("c", parentObservationId="a", level="ERROR", statusMessage="boom", input={"q": 1}),
            _obs("d", parentObservationId="c", type="GENERATION", output="hi", input="hello"),
            _obs("e", startTime="yesterday"),
        ],
        scores=[
            {"id": "s1", "name": "quality", "value": 3, "source": "API", "comment": "ok"},
            {"id": "s2", "value": 1},
        ],
    )
    result = toolkit.ingest(con, path)
    assert list(result["format"]) == ["langfuse"] and list(result["rejected"]) == [3]
    rows = con.execute(
        "SELECT event_id, coalesce(parent_span_id, parent_id), type, source, status, content, attrs->>'input' FROM events ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("a", None, "agent", "planner", None, None, None),
        ("c", "a", "span", "planner", "error", '{"q":1}', None),
        ("d", "c", "generation", "planner", None, "hi", "hello"),
    ]
    assert con.execute("SELECT origin, reason FROM rejects ORDER BY origin").fetchall() == [
        (f"{path}#2", "observation lacks id"),
        (f"{path}#5", "startTime is not a timestamp: yesterday"),
        (f"{path}#score:2", "score lacks name"),
    ]
    # a score outside [0, 1] has no confidence but keeps its value in the evidence
    assert con.execute(
        "SELECT mode, annotator, confidence, evidence->>'value' FROM annotations"
    ).fetchall() == [("quality", "langfuse:api", None, "3")]
    assert con.execute("SELECT system, task FROM traces").fetchall() == [("run", "do it")]


def test_not_json_is_rejected_whole(con, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"trace": {"projectId": "p", "bookmarked": false, ')
    result = toolkit.ingest(con, path)
    assert list(result["format"]) == ["langfuse"] and list(result["rejected"]) == [1]
    assert _one(con, "SELECT reason FROM rejects") == "file is not valid JSON"
