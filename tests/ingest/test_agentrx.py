"""AgentRx reader: Magentic-One trajectories (1-based steps) and ground-truth failures."""

from __future__ import annotations

import json

import pytest

import toolkit
from tests.conftest import shared
from toolkit.ingest import agentrx, detect_format

DATA = ("agentrx", "data")


@pytest.fixture
def loaded(con):
    toolkit.ingest(con, shared(*DATA, "magentic_dataset"))
    toolkit.ingest(con, shared(*DATA, "ground_truth"))
    return con


def test_dataset_loads_with_no_rejects(loaded):
    files = [f for f in shared(*DATA, "magentic_dataset").glob("*.json") if f.stem != "steps_by_id"]
    assert len(files) == 58
    assert loaded.execute("SELECT count(*) FROM rejects").fetchall() == [(0,)]
    steps = sum(len(json.loads(f.read_text())) for f in files)
    assert loaded.execute("SELECT count(*) FROM events").fetchall() == [(steps,)] == [(2993,)]
    # steps_by_id.json (step counts) is not a trace file; magentic_count.jsonl is empty
    by_id = json.loads(shared(*DATA, "magentic_dataset", "steps_by_id.json").read_text())
    counts = dict(
        loaded.execute(
            "SELECT split_part(trace_id, ':', 3), count(*) FROM events GROUP BY 1"
        ).fetchall()
    )
    assert counts == by_id


def test_steps_are_one_based(loaded):
    path = shared(*DATA, "magentic_dataset", "5f982798-16b9-4051-ab57-cfc7ebdb2a91.json")
    steps = json.loads(path.read_text())
    rows = loaded.execute(
        """SELECT seq, source, target, attrs->>'role' FROM events
           WHERE trace_id = 'agentrx:magentic:5f982798-16b9-4051-ab57-cfc7ebdb2a91' ORDER BY seq"""
    ).fetchall()
    assert [r[0] for r in rows] == list(range(1, len(steps) + 1))
    assert [r[3] for r in rows] == [s["role"] for s in steps]
    # ground truth: step_number 33, failed_agent FileSurfer -> the 33rd step, list index 32
    assert steps[32]["role"] == "FileSurfer" and rows[32][:2] == (33, "FileSurfer")


def test_ground_truth_annotations(loaded):
    gt = json.loads(shared(*DATA, "ground_truth", "magentic_one_ground_truth.json").read_text())
    tau = json.loads(shared(*DATA, "ground_truth", "tau_retail.json").read_text())
    failures = sum(len(e["failures"]) for e in gt + tau)
    rows = loaded.execute(
        "SELECT count_if(mode = 'attribution'), count_if(mode LIKE 'agentrx:%') FROM annotations"
    ).fetchall()
    assert rows == [(failures, failures)]
    paired = loaded.execute(
        """SELECT count(DISTINCT a.trace_id) FROM annotations a
           WHERE a.trace_id LIKE 'agentrx:magentic:%'
             AND EXISTS (SELECT 1 FROM events e WHERE e.trace_id = a.trace_id)"""
    ).fetchall()
    assert paired == [(len(gt),)] == [(44,)]  # every labelled magentic trajectory has its events
    # 5f982798: failure 3 (step 33, FileSurfer, "Invention of new information") is the root cause
    row = loaded.execute(
        """SELECT evidence->>'agent', (evidence->>'step')::INT, evidence->>'category'
           FROM annotations WHERE trace_id = 'agentrx:magentic:5f982798-16b9-4051-ab57-cfc7ebdb2a91'
             AND mode = 'attribution' AND (evidence->>'root_cause')::BOOLEAN"""
    ).fetchall()
    assert row == [("FileSurfer", 33, "Invention of new information")]


def test_whole_folder_and_reingest(con):
    result = toolkit.ingest(con, shared("agentrx"))
    formats = result.groupby("format")["path"].count().to_dict()
    # 58 trajectories + 2 ground truths; 7 tau-retail runs are tau-bench files
    assert formats == {"agentrx": 58 + 2 + 16 + 10, "tau_bench": 7}
    # the 16 magentic_dataset_whowhen files and 10 named samples are byte copies: skipped
    assert (result["status"] == "skipped").sum() == 26
    assert con.execute("SELECT count(*) FROM rejects").fetchall() == [(0,)]
    before = con.execute("SELECT count(*) FROM events").fetchall()
    con.execute("DELETE FROM ingests")
    assert toolkit.ingest(con, shared("agentrx"))["rows"].sum() == 0
    assert con.execute("SELECT count(*) FROM events").fetchall() == before


def test_sniff():
    assert agentrx.sniff(shared(*DATA, "ground_truth", "tau_retail.json").read_bytes()[:65536])
    assert not agentrx.sniff(shared("who_and_when", "Hand-Crafted", "1.json").read_bytes())
    assert detect_format(shared("agentrx", "trajectories", "test_random_format.json")) is None
