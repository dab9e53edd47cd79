"""AdaMAST unified traces: records AdaMAST's own converters wrote, ATLAS's sample, hostile ones."""

from __future__ import annotations

import json

import pytest

import toolkit
from tests.conftest import FIXTURES
from toolkit.ingest import detect_format
from toolkit.ingest.adamast import split_blocks

UNIFIED = FIXTURES / "adamast" / "unified.jsonl"
SAMPLE = FIXTURES / "adamast" / "sample_traces.jsonl"


def _events(con, trace_id: str) -> list[tuple]:
    return con.execute(
        "SELECT type, source, target FROM events WHERE trace_id = $t ORDER BY seq", {"t": trace_id}
    ).fetchall()


@pytest.fixture
def unified(con):
    result = toolkit.ingest(con, UNIFIED)
    assert result[["format", "status", "rejected"]].values.tolist() == [["adamast", "loaded", 0]]
    return con


def test_each_converter_s_blocks_become_events(unified):
    assert _events(unified, "adamast:tau_bench:tau_bench_retail_7_trial0") == [
        ("message", "system", None),
        ("message", "user", None),
        ("message", "assistant", None),
        ("tool_call", "assistant", "get_order_details"),
        ("tool_result", "get_order_details", "assistant"),
        ("message", "assistant", None),
        ("result", "harness", None),
    ]
    assert _events(unified, "adamast:claude_code:s-1") == [
        ("message", "user", None),
        ("message", "assistant", None),
        ("tool_call", "assistant", "Bash"),
        ("tool_result", "tool", "assistant"),
        ("message", "assistant", None),
        ("result", "harness", None),
    ]
    # an event log's sections: the prompts go to the section's agent, which answers
    assert _events(unified, "adamast:event_log:run-42") == [
        ("message", "system", "PLANNER"),
        ("message", "user", "PLANNER"),
        ("message", "PLANNER", None),
        ("message", "PLANNER", None),
        ("message", "system", "WRITER"),
        ("message", "user", "WRITER"),
        ("message", "WRITER", None),
        ("final_answer", "WRITER", None),
    ]
    assert _events(unified, "adamast:codex_session:codex_sre_rollout-1") == [
        ("message", "user", None),
        ("tool_call", "assistant", "shell"),
        ("tool_result", "tool", "assistant"),
        ("message", "assistant", None),
    ]
    # KIRA steps: [TASK_COMPLETE] under an action header is its text, not a header
    assert [t for t, _, _ in _events(unified, "adamast:kira:kira-1")] == [
        "message", "tool_call", "tool_result", "message", "tool_call",
    ]  # fmt: skip
    assert unified.execute(
        "SELECT content FROM events WHERE trace_id = 'adamast:kira:kira-1' AND seq = 4"
    ).fetchall() == [("[TASK_COMPLETE]",)]
    steps = unified.execute(
        "SELECT list(attrs->>'step' ORDER BY seq) FROM events WHERE trace_id = 'adamast:kira:kira-1'"
    ).fetchall()[0][0]
    assert steps == ["1", "1", "1", "2", "2"]


def test_events_chain_in_conversation_order(unified):
    rows = unified.execute("""
        SELECT count(*) FILTER (seq = 0 AND parent_id IS NULL),
               count(*) FILTER (seq > 0 AND parent_id = CAST(seq - 1 AS VARCHAR)), count(*)
        FROM events""").fetchall()  # fmt: skip
    assert rows == [(7, 32, 39)]


def test_trace_fields_from_the_record_and_its_verdict(unified):
    rows = {
        r[0]: r[1:]
        for r in unified.execute(
            "SELECT trace_id, system, task, outcome, attrs FROM traces"
        ).fetchall()
    }
    system, task, outcome, attrs = rows["adamast:tau_bench:tau_bench_retail_7_trial0"]
    assert (system, outcome) == ("tau_bench", "failure")
    assert task == "Cancel order #W123 and refund it to the gift card."
    attrs = json.loads(attrs)
    assert attrs["verdict"] == "FAILURE (reward=0.0)" and attrs["reward"] == 0.0
    assert (attrs["benchmark"], attrs["llm"], attrs["source_format"]) == (
        "retail",
        "gpt-4o",
        "tau_bench",
    )
    assert rows["adamast:claude_code:s-1"][2] == "failure"  # ERROR (error_max_turns)
    assert rows["adamast:kira:kira-1"][2] is None  # no verdict written: not judged
    # "unknown" is AdaMAST's placeholder for a missing name: not kept as a value
    assert "llm" not in json.loads(rows["adamast:kira:kira-1"][3])


def test_a_mast_record_is_split_by_its_log_and_keeps_its_labels(unified):
    trace = "adamast:AG2:AG2_GSM-Plus_7"
    assert unified.execute(
        f"SELECT system, task FROM traces WHERE trace_id = '{trace}'"
    ).fetchall() == [("AG2", "What is 2 + 3?")]
    assert [s for _, s, _ in _events(unified, trace)] == [
        "mathproxyagent",
        "assistant",
        "mathproxyagent",
    ]
    labels = json.loads(UNIFIED.read_text().splitlines()[-1])["metadata"]["mast_annotation"]
    given = {f"FM-{code}": float(v) for code, v in labels.items() if v is not None}
    rows = unified.execute(
        f"SELECT mode, confidence FROM annotations WHERE trace_id = '{trace}' AND annotator = 'mast-llm'"
    ).fetchall()
    assert dict(rows) == given and len(rows) == 13


def test_the_atlas_sample(con):
    assert toolkit.ingest(con, SAMPLE)["rows"].tolist() == [10]
    assert con.execute("SELECT count(*), count(DISTINCT system) FROM traces").fetchall() == [(5, 1)]
    assert con.execute(
        "SELECT list(DISTINCT source ORDER BY source), count(*) FILTER (type <> 'message') FROM events"
    ).fetchall() == [(["CHECKER", "SOLVER"], 0)]
    assert toolkit.ingest(con, SAMPLE)["status"].tolist() == ["skipped"]  # again: nothing added


def test_formats_are_told_apart():
    assert detect_format(UNIFIED) == "adamast"
    assert detect_format(SAMPLE) == "adamast"
    assert detect_format(FIXTURES / "mast" / "mad_full_sample.json") == "mast"


def test_a_json_list_and_hostile_records(con, tmp_path):
    good = json.loads(SAMPLE.read_text().splitlines()[0])
    records = [
        good,
        {"problem_id": "x", "task": "t"},  # no raw_trajectory
        good | {"problem_id": "m", "metadata": "not an object"},
        good | {"problem_id": "a", "metadata": {"mas_name": "AG2", "mast_annotation": [1]}},
        good | {"problem_id": "c", "metadata": {"mas_name": "AG2", "mast_annotation": {"9.9": 1}}},
        7,
    ]
    path = tmp_path / "list.json"
    path.write_text(json.dumps(records))
    assert toolkit.ingest(con, path)[["format", "status"]].values.tolist() == [
        ["adamast", "loaded"]
    ]
    rejects = dict(con.execute("SELECT origin, reason FROM rejects").fetchall())
    assert sorted(rejects) == [f"{path}#{n}" for n in (2, 3, 4, 5, 6)]
    assert "raw_trajectory" in rejects[f"{path}#2"] and "metadata" in rejects[f"{path}#3"]
    assert rejects[f"{path}#4"].startswith("mast_annotation") and "9.9" in rejects[f"{path}#5"]
    # a record whose labels are rejected still loads; the others are whole rejects
    assert con.execute("SELECT count(*) FROM traces").fetchall() == [(3,)]


def test_bad_lines_are_rejected_with_their_line_and_the_rest_loads(con, tmp_path):
    lines = SAMPLE.read_text().splitlines()
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join([lines[0], "{not json", "", lines[1]]) + "\n")
    toolkit.ingest(con, path)
    assert con.execute("SELECT origin FROM rejects").fetchall() == [(f"{path}:2",)]
    origins = con.execute(
        "SELECT DISTINCT regexp_replace(origin, '/\\d+$', '') FROM events ORDER BY 1"
    ).fetchall()
    assert origins == [(f"{path}:1",), (f"{path}:4",)]


def test_text_without_headers_is_one_log_block():
    messages, task, run = split_blocks("just a transcript\n[not a header] either")
    assert messages == [
        {
            "type": "log",
            "content": "just a transcript\n[not a header] either",
            "attrs": {"split": "none"},
        }
    ]
    assert (task, run) == (None, {})
