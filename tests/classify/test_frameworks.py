"""MAST rules on real framework traces: span data is judged only on what it shows."""

from __future__ import annotations

import pytest

import toolkit
from tests.analyze.test_frameworks import CASES, FRAMEWORKS

HEALTHY = [(fw, name) for fw, name, facts in CASES if not any(r["faults"] for r in facts["runs"])]


@pytest.mark.parametrize(("framework", "name"), HEALTHY, ids=[f"{f}/{n}" for f, n in HEALTHY])
def test_healthy_runs_get_no_failure_mode(con, framework, name):
    # a parent span echoing its child, the conversation a model call re-sends, an absent
    # verifier span: none of these is a failure mode
    toolkit.ingest(con, FRAMEWORKS / framework / name)
    toolkit.classify(con)
    found = con.execute(
        "SELECT mode, evidence->>'reason' FROM annotations WHERE annotator = 'rules'"
    ).fetchall()
    assert found == []


@pytest.mark.parametrize(
    "name", ["max_turns_exceeded.otlp.jsonl", "max_turns_exceeded.native.jsonl"]
)
def test_an_agent_looping_until_its_turn_limit_repeats_its_steps(con, name):
    toolkit.ingest(con, FRAMEWORKS / "openai_agents" / name)
    toolkit.classify(con)
    assert [m for (m,) in con.execute("SELECT mode FROM annotations").fetchall()] == ["FM-1.3"]


def test_openinference_task_is_the_root_input(con):
    toolkit.ingest(con, FRAMEWORKS / "langgraph" / "healthy_supervisor.jsonl")
    root_input = con.execute(
        "SELECT attrs->>'$.\"input.value\"' FROM events WHERE parent_span_id IS NULL"
    ).fetchall()[0][0]
    assert con.execute("SELECT task FROM traces").fetchall() == [(root_input,)]
