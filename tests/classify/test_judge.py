"""The judge protocol with scripted judges: good, partial, malformed, raising."""

from __future__ import annotations

import json

import pandas as pd

from toolkit.classify import TAXONOMY, build_prompt, classify, parse_answer
from toolkit.classify.judge import render_trace

from .helpers import chat


def three_traces(con):
    for t in ("a", "b", "c"):
        chat(con, t, [("user", f"task {t}"), ("solver", "answer"), ("checker", "fine")])


def good(prompt: str) -> str:
    answer = {m: {"answer": "no", "evidence": "", "steps": []} for m in TAXONOMY}
    answer["FM-1.3"] = {"answer": "yes", "evidence": "step 1 repeats", "steps": [1, 2]}
    return "Here you go:\n```json\n" + json.dumps(answer) + "\n```"


def test_good_judge_stores_yes_only(con):
    three_traces(con)
    df = classify(con, judge=good)
    assert (df["status"] == "ok").all() and len(df) == 3 * 14
    assert set(df.loc[df["verdict"] == "yes", "mode"]) == {"FM-1.3"}
    stored = con.execute("SELECT DISTINCT annotator, mode FROM annotations").fetchall()
    assert stored == [("good", "FM-1.3")]
    ev = json.loads(df.loc[df["verdict"] == "yes", "evidence"].iloc[0])
    assert ev == {"event_ids": ["1", "2"], "reason": "step 1 repeats"}


def test_partial_answer_is_unknown_not_no(con):
    three_traces(con)
    df = classify(con, judge=lambda p: '{"1.5": "yes", "FM-2.1": false}', annotator="partial")
    one = df[df["trace_id"] == "a"].set_index("mode")["verdict"]
    assert one["FM-1.5"] == "yes" and one["FM-2.1"] == "no" and one["FM-1.1"] == "unknown"
    assert (one == "unknown").sum() == 12


def test_malformed_and_raising_judges_lose_nothing_else(con):
    three_traces(con)

    def flaky(prompt: str) -> str:
        if "Trace id: a" in prompt:
            raise TimeoutError("model timed out")
        if "Trace id: b" in prompt:
            return "I think there is step repetition."
        return good(prompt)

    df = classify(con, judge=flaky)
    status = df.groupby("trace_id")["status"].first()
    assert status["a"].startswith("error: TimeoutError")
    assert status["b"] == "malformed"
    assert status["c"] == "ok"
    stored = con.execute("SELECT trace_id, mode, annotator FROM annotations").fetchall()
    assert stored == [("c", "FM-1.3", "flaky")]


def test_parse_answer_cases():
    assert parse_answer("no json here")[0] == "malformed"
    status, v = parse_answer('{"modes": {"FM-3.2": {"answer": "YES", "confidence": 0.4}}}')
    assert status == "ok" and v["FM-3.2"][0] == "yes" and v["FM-3.2"][3] == 0.4
    assert v["FM-3.3"][0] == "unknown"


def test_prompt_states_truncation():
    events = pd.DataFrame({"seq": range(500), "source": "a", "target": None, "type": "message",
                           "content": ["x" * 1000] * 500})  # fmt: skip
    body, note = render_trace(events, max_chars=6000)
    assert "left out" in note and "cut to" in note and len(body) < 7000
    prompt = build_prompt("t", "do it", events, max_chars=6000)
    assert "FM-3.3 Incorrect verification" in prompt and note in prompt
