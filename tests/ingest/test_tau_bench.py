"""τ-bench reader: one trace per run, tool calls linked to their results."""

from __future__ import annotations

import json

import pytest

import toolkit
from tests.conftest import shared
from toolkit.ingest import tau_bench

AIRLINE = ("tau_bench", "historical_trajectories", "gpt-4o-airline.json")


@pytest.fixture
def loaded(con):
    result = toolkit.ingest(con, shared(*AIRLINE))
    assert result["format"].tolist() == ["tau_bench"]
    return con


def test_runs_and_outcomes(loaded):
    runs = json.loads(shared(*AIRLINE).read_text())
    assert loaded.execute("SELECT count(*) FROM rejects").fetchall() == [(0,)]
    rows = loaded.execute(
        "SELECT count(*), count_if(outcome = 'success'), count(task) FROM traces"
    ).fetchall()
    assert rows == [(200, sum(r["reward"] == 1 for r in runs), 200)] == [(200, 84, 200)]


def test_event_counts(loaded):
    runs = json.loads(shared(*AIRLINE).read_text())
    calls = sum(len(m.get("tool_calls") or []) for r in runs for m in r["traj"])
    results = sum(m["role"] == "tool" for r in runs for m in r["traj"])
    texts = sum(
        m["role"] != "tool" and (bool(m.get("content")) or not m.get("tool_calls"))
        for r in runs
        for m in r["traj"]
    )
    rows = loaded.execute(
        "SELECT count_if(type = 'tool_call'), count_if(type = 'tool_result'), "
        "count_if(type = 'message') FROM events"
    ).fetchall()
    assert rows == [(calls, results, texts)]
    assert (calls, results) == (1164, 1164)
    first = loaded.execute(
        "SELECT count(*) FROM events WHERE trace_id = 'taubench:gpt-4o-airline:0:0'"
    ).fetchall()
    assert first == [(len(runs[0]["traj"]),)] == [(32,)]  # run 1: no call carries text


def test_tool_result_parent_is_its_call(loaded):
    rows = loaded.execute(
        """SELECT r.seq, c.seq, c.target, r.source FROM events r JOIN events c
             ON c.trace_id = r.trace_id AND c.event_id = r.parent_id
           WHERE r.trace_id = 'taubench:gpt-4o-airline:0:0' AND r.type = 'tool_result'
           ORDER BY r.seq"""
    ).fetchall()
    assert all(rs == cs + 1 and tool == name for rs, cs, tool, name in rows)
    unlinked = loaded.execute(
        "SELECT count(*) FROM events WHERE type = 'tool_result' AND parent_id NOT LIKE '%.%'"
    ).fetchall()
    assert unlinked == [(0,)]
    # call ids repeat within a run, so they are correlation ids, not event ids
    dup = loaded.execute(
        "SELECT count(*) FROM (SELECT trace_id, event_id FROM events GROUP BY ALL HAVING count(*) > 1)"
    ).fetchall()
    assert dup == [(0,)]


def test_reingest_adds_nothing(loaded):
    loaded.execute("DELETE FROM ingests")
    assert toolkit.ingest(loaded, shared(*AIRLINE))["rows"].tolist() == [0]
    assert loaded.execute("SELECT count(*) FROM traces").fetchall() == [(200,)]


def test_sniff():
    assert not tau_bench.sniff(
        shared("mast", "MAD_human_labelled_dataset.json").read_bytes()[:65536]
    )
    assert not tau_bench.sniff(
        shared("who_and_when", "Hand-Crafted", "1.json").read_bytes()[:65536]
    )
