"""ATIF trajectories: every Phoenix fixture, steps/tool calls/results with causation, subagents."""

from __future__ import annotations

import json

import pytest

import toolkit
from tests.conftest import FIXTURES, shared

ATIF = (
    "traces",
    "phoenix",
    "packages",
    "phoenix-client",
    "tests",
    "client",
    "helpers",
    "atif",
    "fixtures",
)

# (file, trajectories, steps, tool calls, observation results): counted by reading the files.
FILES = [
    ("harbor_openhands.json", 1, 6, 2, 1),
    ("harbor_terminus2_continuation.json", 1, 5, 0, 4),
    ("harbor_terminus2_continuation_cont1.json", 1, 8, 0, 4),
    # Valid JSON and valid ATIF: "invalid json" is the agent's reply, which broke the harness's
    # JSON protocol; the harness's parse error is an observation result, not a bad record.
    ("harbor_terminus2_invalid_json.json", 1, 5, 3, 4),
    ("harbor_terminus2_sub_answers.json", 1, 7, 2, 2),
    ("harbor_terminus2_sub_questions.json", 1, 2, 0, 0),
    ("harbor_terminus2_sub_summary.json", 1, 5, 2, 2),
    ("harbor_terminus2_summarization.json", 1, 10, 7, 8),
    ("harbor_terminus2_timeout.json", 1, 4, 3, 3),
    ("multi_tool_trajectory.json", 1, 5, 4, 4),
    ("multimodal_trajectory.json", 1, 3, 1, 1),
    ("parallel_tools_mixed_results.json", 1, 3, 3, 3),
    ("simple_trajectory.json", 1, 3, 1, 1),
    ("subagent_trajectories.json", 2, 6, 1, 1),  # {"parent": ..., "child": ...}
    ("v17_embedded_subagents.json", 2, 6, 1, 2),  # subagent_trajectories embedded (v1.7)
]


def _one(con, sql: str):
    return con.execute(sql).fetchall()[0][0]


def _independent_counts(doc) -> tuple[int, int, int, int]:
    trajs = list(doc.values()) if "steps" not in doc else [doc]
    trajs += [s for t in trajs for s in t.get("subagent_trajectories") or []]
    steps = [s for t in trajs for s in t["steps"]]
    calls = sum(len(s.get("tool_calls") or []) for s in steps)
    results = sum(len((s.get("observation") or {}).get("results") or []) for s in steps)
    return len(trajs), len(steps), calls, results


@pytest.mark.parametrize(
    "name, trajectories, steps, calls, results", FILES, ids=[f[0] for f in FILES]
)
def test_every_shared_trajectory_loads_auto_detected(
    con, name, trajectories, steps, calls, results
):
    path = shared(*ATIF, name)
    assert _independent_counts(json.loads(path.read_text())) == (
        trajectories,
        steps,
        calls,
        results,
    )
    result = toolkit.ingest(con, path)
    assert list(result["format"]) == ["atif"] and list(result["rejected"]) == [0]
    assert _one(con, "SELECT count(*) FROM events") == steps + calls + results
    assert _one(con, "SELECT count(*) FROM traces") == trajectories
    kinds = dict(con.execute("SELECT type, count(*) FROM events GROUP BY 1").fetchall())
    assert kinds.get("tool_call", 0) == calls and kinds.get("tool_result", 0) == results
    # every event but each trajectory's first step has a cause
    roots = _one(con, "SELECT count(*) FROM events WHERE parent_id IS NULL")
    linked = 1 if name in ("subagent_trajectories.json", "v17_embedded_subagents.json") else 0
    assert roots == trajectories - linked
    again = toolkit.ingest(con, path)
    assert list(again["status"]) == ["skipped"]


def test_invalid_json_fixture_keeps_the_parse_error_as_data(con):
    toolkit.ingest(con, shared(*ATIF, "harbor_terminus2_invalid_json.json"))
    row = con.execute(
        "SELECT parent_id, source, content FROM events WHERE event_id = 'step:2:result:1'"
    ).fetchall()[0]
    assert row[0] == "step:2" and row[1] == "environment"
    assert row[2].startswith("Previous response had parsing errors")


def test_steps_tool_calls_and_results_chain(con):
    toolkit.ingest(con, shared(*ATIF, "simple_trajectory.json"))
    rows = con.execute(
        "SELECT event_id, parent_id, type, source, target FROM events ORDER BY seq"
    ).fetchall()
    assert rows == [
        ("step:1", None, "user_step", "user", None),
        ("step:2", "step:1", "agent_step", "finance-assistant", None),
        (
            "step:2:tool:call_9f1a2b3c",
            "step:2",
            "tool_call",
            "finance-assistant",
            "financial_search",
        ),
        (
            "step:2:result:1",
            "step:2:tool:call_9f1a2b3c",
            "tool_result",
            "financial_search",
            "finance-assistant",
        ),
        ("step:3", "step:2:result:1", "agent_step", "finance-assistant", None),
    ]
    assert con.execute("SELECT trace_id, system, task FROM traces").fetchall() == [
        ("sess-abc123-simple", "finance-assistant", "What is the current price of GOOGL?")
    ]
    assert (
        str(_one(con, "SELECT ts FROM events WHERE event_id = 'step:3'"))
        == "2025-01-15 10:30:05+00:00"
    )


def test_subagent_trajectory_is_caused_by_the_delegating_tool_call(con):
    toolkit.ingest(con, FIXTURES / "atif" / "subagent_trajectories.json")
    row = con.execute("""
        SELECT trace_id, parent_id, attrs->>'parent_trace_id' FROM events
        WHERE trace_id = 'sess-child-summary-001' AND event_id = 'step:1'""").fetchall()
    assert row == [("sess-child-summary-001", "step:2:tool:call_summarize", "sess-parent-001")]


def test_embedded_v17_subagent_and_continuation(con):
    toolkit.ingest(con, shared(*ATIF, "v17_embedded_subagents.json"))
    toolkit.ingest(con, shared(*ATIF, "harbor_terminus2_continuation_cont1.json"))
    traces = con.execute(
        "SELECT trace_id, system, attrs->>'continues' FROM traces ORDER BY 1"
    ).fetchall()
    assert traces == [
        ("harbor-terminus2-continuation-cont-1", "terminus-2", "harbor-terminus2-continuation"),
        ("run-v17-001/child-doc", "researcher", None),
        ("run-v17-001/parent-doc", "orchestrator", None),
    ]
    assert (
        _one(
            con,
            """SELECT parent_id FROM events
        WHERE trace_id = 'run-v17-001/child-doc' AND event_id = 'step:1'""",
        )
        == "step:2:tool:call_delegate"
    )


def test_bad_steps_are_rejected_and_the_rest_loads(con, tmp_path):
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": "ATIF-v1.6",
                "session_id": "s",
                "agent": {"name": "a"},
                "steps": [
                    {"step_id": 1, "source": "user", "message": "hi"},
                    {"step_id": 2, "message": "who?"},
                    "x",
                    {
                        "step_id": 4,
                        "source": "agent",
                        "message": "ok",
                        "timestamp": "2025-01-01T01:00:00+01:00",
                    },
                ],
            }
        )
    )
    result = toolkit.ingest(con, path)
    assert list(result["rows"]) == [2] and list(result["rejected"]) == [2]
    assert con.execute("SELECT origin, reason FROM rejects ORDER BY 1").fetchall() == [
        (f"{path}#2", "step has no source"),
        (f"{path}#3", "step is not an object but string"),
    ]
    row = con.execute(
        "SELECT parent_id, source, ts FROM events WHERE event_id = 'step:4'"
    ).fetchall()[0]
    assert row[:2] == ("step:1", "a") and str(row[2]) == "2025-01-01 00:00:00+00:00"


def test_not_json_is_rejected_whole(con, tmp_path):
    path = tmp_path / "t.json"
    path.write_text('{"schema_version": "ATIF-v1.6", "steps": [')
    result = toolkit.ingest(con, path)
    assert list(result["format"]) == ["atif"] and list(result["rejected"]) == [1]
    assert _one(con, "SELECT origin FROM rejects") == f"{path}#0"
