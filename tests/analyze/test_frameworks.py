"""Real traces from seven agent frameworks (tests/fixtures/frameworks, written offline by the
frameworks' own test models; expected.json holds what each generator saw in the raw spans).

For every file: every span loads, the counts match the raw file, each agent is named, each run
gets its outcome, healthy runs raise no flow finding, and planted faults are found where they
started (a failure the frameworks re-raise through its callers is one finding, not three).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import toolkit
from tests.conftest import FIXTURES

# Another run of the generators (their ids and timings differ) can be checked by pointing
# TOOLKIT_FRAMEWORK_TRACES at the folder they wrote.
FRAMEWORKS = Path(os.environ.get("TOOLKIT_FRAMEWORK_TRACES", FIXTURES / "frameworks"))
FLOW_KINDS = {"unhandled", "duplicate", "error", "hang", "missing_terminal", "late",
              "out_of_order", "idempotency_violation"}  # fmt: skip


def _cases() -> list[tuple[str, str, dict]]:
    cases = []
    for expected in sorted(FRAMEWORKS.glob("*/expected.json")):
        for name, facts in json.loads(expected.read_text())["files"].items():
            if (expected.parent / name).exists():
                cases.append((expected.parent.name, name, facts))
    return cases


CASES = _cases()
IDS = [f"{fw}/{name}" for fw, name, _ in CASES]


def _runs(facts: dict) -> list[dict]:
    return [r | {"trace_ids": r.get("trace_ids") or [r["trace_id"]]} for r in facts["runs"]]


@pytest.fixture
def loaded(con, request):
    framework, name, facts = request.param
    result = toolkit.ingest(con, FRAMEWORKS / framework / name)
    return con, result, facts


def _one(con, sql, **params):
    return con.execute(sql, params).fetchall()[0][0]


def test_seven_frameworks_are_covered():
    assert {fw for fw, _, _ in CASES} >= {"autogen", "crewai", "langgraph", "openai_agents",
                                          "otel_sdk", "pydantic_ai", "smolagents"}  # fmt: skip


@pytest.mark.parametrize("loaded", CASES, ids=IDS, indirect=True)
def test_every_span_loads_and_the_counts_match_the_raw_file(loaded):
    con, result, facts = loaded
    assert result["rejected"].tolist() == [0]
    counts = {
        "spans": "SELECT count(*) FROM events WHERE kind IN ('span', 'message')",
        "span_events": "SELECT count(*) FROM events WHERE kind = 'span_event'",
        "spans_with_parent": "SELECT count(parent_span_id) FROM events WHERE kind <> 'span_event'",
        "links": "SELECT coalesce(sum(json_array_length(attrs->'links')), 0) FROM events",
        "exception_events": "SELECT count(*) FROM events WHERE kind = 'span_event' AND type = 'exception'",
    }  # fmt: skip
    for key, sql in counts.items():
        if key in facts:  # the OpenAI Agents SDK's own export has no span events or links
            assert _one(con, sql) == facts[key], key
    # every span the file marks failed is failed here (an exception event fails its span too)
    failed = "SELECT count(*) FROM events WHERE status = 'error' AND kind <> 'span_event'"
    assert _one(con, failed) >= facts["error_spans"]
    assert {t for (t,) in con.execute("SELECT DISTINCT trace_id FROM events").fetchall()} == set(
        facts["trace_ids"]
    )


@pytest.mark.parametrize("loaded", CASES, ids=IDS, indirect=True)
def test_each_agent_is_named(loaded):
    con, _, facts = loaded
    for run in _runs(facts):
        sources = {s for (s,) in con.execute(
            "SELECT DISTINCT source FROM events WHERE list_contains($t, trace_id)",
            {"t": run["trace_ids"]}).fetchall()}  # fmt: skip
        assert set(run["agents"]) <= sources, run.get("scenario")
        # the agent of each span, where the framework makes it knowable
        expected = run.get("agent_of_span_inherited") or run.get("agent_of_span") or {}
        got = dict(con.execute(
            "SELECT event_id, source FROM events WHERE list_contains($ids, event_id)",
            {"ids": list(expected)}).fetchall())  # fmt: skip
        wrong = {span: (agent, got.get(span)) for span, agent in expected.items()
                 if span in got and got[span] != agent}  # fmt: skip
        assert not wrong, wrong


@pytest.mark.parametrize("loaded", CASES, ids=IDS, indirect=True)
def test_each_run_is_one_session_with_its_outcome(loaded):
    con, _, facts = loaded
    runs = toolkit.sessions(con)
    for run in _runs(facts):
        # Traces join a session by a shared session id or span links. A run started from
        # several places outside any span (AutoGen's core API called from plain code, agents
        # traced as unlinked roots) has one session per such entry point; AutoGen's agent
        # registrations (create_agent spans) stand apart.
        sessions = {s for (s,) in con.execute("""
            SELECT DISTINCT coalesce(session_id, trace_id) FROM traces t
            WHERE list_contains($t, trace_id) AND EXISTS (SELECT 1 FROM events e
                WHERE e.trace_id = t.trace_id AND e.name NOT LIKE 'create_agent %')""",
            {"t": run["trace_ids"]}).fetchall()}  # fmt: skip
        entry_points = _one(con, """
            SELECT count(*) FROM events WHERE list_contains($t, trace_id)
               AND parent_span_id IS NULL AND parent_id IS NULL AND kind <> 'span_event'
               AND name NOT LIKE 'create_agent %'""", t=run["trace_ids"])  # fmt: skip
        assert 1 <= len(sessions) <= max(entry_points, 1), (run.get("scenario"), sessions)
        outcomes = set(runs.loc[runs["session_id"].isin(sessions), "outcome"])
        if run["outcome"] == "failure":
            assert "failure" in outcomes, run.get("scenario")
        else:
            assert outcomes == {run["outcome"]}, run.get("scenario")


@pytest.mark.parametrize("loaded", CASES, ids=IDS, indirect=True)
def test_healthy_runs_are_silent_and_planted_faults_are_found(loaded):
    con, _, facts = loaded
    found = toolkit.findings(con)
    found = found[found["kind"].isin(FLOW_KINDS)]
    planted = [f for run in _runs(facts) for f in run["faults"]]
    by_span = {(f["span_id"], f["kind"]) for f in planted if f.get("span_id")}
    if not planted:
        assert found.empty, found.to_string()
        return
    # nothing found that was not planted (a failure passed on to callers may be listed too)
    spans = dict(con.execute("SELECT event_id, name FROM events").fetchall())
    for row in found.itertuples():
        assert (row.event_id, row.kind) in by_span or any(
            f["kind"] == row.kind and f["span_name"] == spans.get(row.event_id) for f in planted
        ), row
    # where each run's faults start: the first of each kind is found
    for run in _runs(facts):
        firsts = {}
        for fault in run["faults"]:
            firsts.setdefault(fault["kind"], fault)
        for kind, fault in firsts.items():
            hits = found[found["kind"] == kind]
            names = {spans.get(e) for e in hits["event_id"]}
            assert fault.get("span_id") in set(hits["event_id"]) or fault["span_name"] in names, (
                run.get("scenario"),
                fault,
            )
            if kind == "error":
                row = hits[hits["event_id"].map(spans.get) == fault["span_name"]].iloc[0]
                assert (row["severity"] == "warning") == fault["recovered"], fault


def test_summary_by_session_counts_a_run_over_many_traces_once(con):
    toolkit.ingest(con, FRAMEWORKS / "autogen" / "core_unhandled_message.jsonl")
    by_session = toolkit.summary(con, by="session")
    by_trace = toolkit.summary(con, by="trace")
    assert by_session["traces"].sum() == len(by_trace) > len(by_session)
    assert by_session["unhandled"].sum() == by_trace["unhandled"].sum() == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda con: toolkit.summary(con, by="agent"),
        lambda con: toolkit.latency(con, by="agent"),
        lambda con: toolkit.flow_edges(con, by="agent"),
    ],
)
def test_an_unknown_grouping_names_the_valid_ones(con, call):
    with pytest.raises(ValueError, match=r"by must be one of .*not 'agent'"):
        call(con)
