"""Each rule on small literal traces: the mode present, and absent."""

from __future__ import annotations

import json

import pytest

from toolkit.classify import classify
from toolkit.classify.classify import CLASSIFY_COLUMNS

from .helpers import chat, load, pipeline

TASK = "Compute the average monthly rainfall in Seattle for 2020 from the weather archive"


def modes(con, trace_id):
    df = classify(con)
    return set(df.loc[df["trace_id"] == trace_id, "mode"])


def clean_pipelines(con, n=5):
    for i in range(n):
        pipeline(con, f"ok{i}")


def test_empty_database(con):
    df = classify(con)
    assert list(df.columns) == CLASSIFY_COLUMNS and df.empty


@pytest.mark.parametrize(
    ("messages", "present"),
    [
        ([("coder", "I will now run the test suite for the parser module"),
          ("tester", "ok"),
          ("coder", "I will now run the test suite for the parser module!")], True),
        ([("coder", "Fetching page 1 of the results from the archive"),
          ("coder", "Fetching page 2 of the results from the archive")], False),  # numbers differ
        ([("coder", "I will now run the test suite for the parser module"),
          ("tester", "I will now run the test suite for the parser module")], False),  # two agents
    ],
)  # fmt: skip
def test_step_repetition_near_identical(con, messages, present):
    chat(con, "t", messages)
    assert ("FM-1.3" in modes(con, "t")) is present


def test_step_repetition_redelivery(con):
    clean_pipelines(con)
    pipeline(con, "t", extra=[("e3", "subtask.completed", "worker-1", "planner", "e2", "Result 1")])
    assert modes(con, "t") == {"FM-1.3"}


@pytest.mark.parametrize(
    ("messages", "present"),
    [
        ([("a", "The answer is 42. TERMINATE"), ("b", "Let me double check the sum again")], True),
        ([("a", "Working on it"), ("b", "The answer is 42. TERMINATE")], False),
        ([("a", "Working on it"), ("a", "Terminated: Reached max steps (20)")], True),
    ],
)
def test_unaware_of_termination_content(con, messages, present):
    chat(con, "t", messages)
    assert ("FM-1.5" in modes(con, "t")) is present


def test_unaware_of_termination_after_terminal(con):
    clean_pipelines(con)
    pipeline(con, "t", extra=[("e11", "subtask.accepted", "planner", None, "e6", "Accepted again")])
    found = classify(con)
    row = found[(found["trace_id"] == "t") & (found["mode"] == "FM-1.5")]
    assert json.loads(row["evidence"].iloc[0])["event_ids"] == ["e11"]
    assert not (found["trace_id"] != "t").any()


@pytest.mark.parametrize(
    ("messages", "present"),
    [
        ([("u", "Plan the offsite"), ("a", "Draft agenda"), ("a", "Let's start over from scratch.")], True),
        ([("u", "Plan the offsite"), ("a", "Draft agenda"), ("u", "Plan the offsite")], True),
        ([("u", "Plan the offsite"), ("a", "Draft agenda"), ("a", "Reset the grid and retry")], False),
    ],
)  # fmt: skip
def test_conversation_reset(con, messages, present):
    chat(con, "t", messages)
    assert ("FM-2.1" in modes(con, "t")) is present


def _long(words):
    return " ".join(words * 2)


@pytest.mark.parametrize("drifts", [True, False])
def test_task_derailment(con, drifts):
    on = [
        "average",
        "monthly",
        "rainfall",
        "seattle",
        "2020",
        "weather",
        "archive",
        "computed",
        "values",
        "rows",
        "table",
        "station",
        "daily",
        "precipitation",
        "inches",
        "totals",
    ]
    off = [
        "lunch",
        "menu",
        "pizza",
        "pasta",
        "salad",
        "dessert",
        "coffee",
        "napkins",
        "chairs",
        "music",
        "playlist",
        "balloons",
        "cake",
        "candles",
        "guests",
    ]
    msgs = (
        [("user", TASK)]
        + [("analyst", _long(on))] * 3
        + [("analyst", _long(off if drifts else on))] * 3
    )
    chat(con, "t", msgs, task=TASK)
    assert ("FM-2.3" in modes(con, "t")) is drifts


def test_ignored_input_vs_dropped_handler(con):
    clean_pipelines(con)
    pipeline(con, "ignored", drop={"e4"})  # planner never accepts result 1, but keeps acting
    pipeline(con, "dropped", drop={"e6", "e7"})  # worker-2 never acts on its assignment
    found = classify(con)
    assert set(found.loc[found["trace_id"] == "ignored", "mode"]) == {"FM-2.5"}
    assert "FM-2.5" not in set(found.loc[found["trace_id"] == "dropped", "mode"])


def test_premature_termination_and_no_verification(con):
    clean_pipelines(con)
    pipeline(con, "t", verify=False)
    assert modes(con, "t") == {"FM-3.1", "FM-3.2"}


def test_open_request_at_completion(con):
    clean_pipelines(con)
    ask = ("q1", "tool.requested", "worker-1", "tool", "a0", "Call", {"timeoutms": 2000})
    answer = ("r1", "tool.responded", "tool", "worker-1", "q1", "Data")
    end = ("a2", "task.completed", "planner", "user", "a0", "Done")
    start = ("a0", "task.created", "user", "planner", None, "Go")
    load(con, "open", [start, ask, end], system="pipe")
    load(con, "answered", [start, ask, answer, end], system="pipe")
    found = classify(con)
    assert "FM-3.1" in set(found.loc[found["trace_id"] == "open", "mode"])
    assert "FM-3.1" not in set(found.loc[found["trace_id"] == "answered", "mode"])


@pytest.mark.parametrize(
    ("outcome", "present"), [("failure", True), ("success", False), (None, False)]
)
def test_incorrect_verification(con, outcome, present):
    chat(con, "t", [("user", "What is 2+2?"), ("solver", "It is 5"),
                    ("checker", "I verified the result: it is correct.")], outcome=outcome)  # fmt: skip
    assert ("FM-3.3" in modes(con, "t")) is present


def test_rerun_replaces_and_stores_only_found_modes(con):
    clean_pipelines(con)
    pipeline(con, "t", verify=False)
    first = classify(con)
    second = classify(con)
    stored = con.execute("SELECT trace_id, mode FROM annotations ORDER BY ALL").fetchall()
    assert stored == [("t", "FM-3.1"), ("t", "FM-3.2")]
    assert first.equals(second)
    ev = json.loads(first["evidence"].iloc[0])
    assert set(ev) == {"event_ids", "reason"} and ev["event_ids"]
