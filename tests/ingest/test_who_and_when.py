"""Who&When reader: every shared file, step indices, role split, attribution."""

from __future__ import annotations

import json

import pytest

import toolkit
from tests.conftest import shared
from toolkit.ingest import detect_format, who_and_when


@pytest.fixture
def loaded(con):
    result = toolkit.ingest(con, shared("who_and_when"))
    assert set(result["format"]) == {"who_and_when"}
    return con


def test_every_file_loads_with_no_rejects(loaded):
    files = sorted(shared("who_and_when").rglob("*.json"))
    assert len(files) == 84 + 39
    assert loaded.execute("SELECT count(*) FROM rejects").fetchall() == [(0,)]
    steps = sum(len(json.loads(f.read_text())["history"]) for f in files)
    assert loaded.execute("SELECT count(*) FROM events").fetchall() == [(steps,)]
    assert steps == 732 + 2016  # counted from the files: history steps per subset
    rows = loaded.execute(
        "SELECT system, count(*), count_if(outcome = 'failure') FROM traces GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert rows == [("CaptainAgent", 84, 84), ("Magentic-One", 39, 39)]


def test_step_index_is_history_index(loaded):
    path = shared("who_and_when", "Algorithm-Generated", "1.json")
    history = json.loads(path.read_text())["history"]
    rows = loaded.execute(
        """SELECT seq, event_id, parent_id, source, content FROM events
           WHERE trace_id = 'whowhen:Algorithm-Generated:1' ORDER BY seq"""
    ).fetchall()
    assert len(rows) == len(history) == 6
    for i, (seq, event_id, parent, source, content) in enumerate(rows):
        assert (seq, event_id, parent) == (i, str(i), str(i - 1) if i else None)
        assert (source, content) == (history[i]["name"], history[i]["content"])


def test_hand_crafted_role_split(loaded):
    path = shared("who_and_when", "Hand-Crafted", "14.json")
    history = json.loads(path.read_text())["history"]
    assert history[14]["role"] == "Orchestrator (-> ComputerTerminal)"
    row = loaded.execute(
        """SELECT source, target, attrs->>'role' FROM events
           WHERE trace_id = 'whowhen:Hand-Crafted:14' AND seq = 14"""
    ).fetchall()
    assert row == [("Orchestrator", "ComputerTerminal", "Orchestrator (-> ComputerTerminal)")]
    thought = loaded.execute(
        "SELECT count(*) FROM events WHERE attrs->>'detail' = 'thought' AND target IS NULL"
    ).fetchall()
    assert thought == [(1056,)]  # "Orchestrator (thought)" steps in the hand-crafted files


def test_attribution(loaded):
    assert loaded.execute("SELECT count(*) FROM annotations").fetchall() == [(123,)]
    row = loaded.execute(
        """SELECT mode, annotator, confidence, evidence->>'agent', (evidence->>'step')::INT,
                  t.task, t.attrs->>'ground_truth'
           FROM annotations JOIN traces t USING (trace_id)
           WHERE trace_id = 'whowhen:Algorithm-Generated:1'"""
    ).fetchall()
    # 1.json: "mistake_agent": "Excel_Expert", "mistake_step": "0", "ground_truth": "8"
    assert row[0][:5] == ("attribution", "human", 1.0, "Excel_Expert", 0)
    assert row[0][5].startswith("This spreadsheet contains a list of clients")
    assert row[0][6] == "8"


def test_reingest_adds_nothing(loaded):
    before = loaded.execute("SELECT count(*) FROM events").fetchall()
    loaded.execute("DELETE FROM ingests")
    again = toolkit.ingest(loaded, shared("who_and_when"))
    assert again["rows"].sum() == 0
    assert loaded.execute("SELECT count(*) FROM events").fetchall() == before
    assert loaded.execute("SELECT count(*) FROM annotations").fetchall() == [(123,)]


def test_bad_step_rejected_rest_loads(con, tmp_path):
    folder = tmp_path / "Hand-Crafted"
    folder.mkdir()
    doc = {
        "history": [
            {"content": "q", "role": "human"},
            "oops",
            {"content": "a", "role": "WebSurfer"},
        ],
        "question": "q",
        "mistake_agent": "WebSurfer",
        "mistake_step": "2",
    }
    (folder / "x.json").write_text(json.dumps(doc))
    assert detect_format(folder / "x.json") == "who_and_when"
    toolkit.ingest(con, folder / "x.json")
    assert con.execute("SELECT origin FROM rejects").fetchall() == [(f"{folder / 'x.json'}#1",)]
    rows = con.execute("SELECT seq, parent_id FROM events ORDER BY seq").fetchall()
    assert rows == [(0, None), (2, "0")]


def test_sniff_only_who_and_when():
    head = shared("mast", "MAD_human_labelled_dataset.json").read_bytes()[:65536]
    assert not who_and_when.sniff(head)
    # a long history pushes mistake_agent past the head: still recognised
    assert detect_format(shared("who_and_when", "Hand-Crafted", "15.json")) == "who_and_when"
    assert detect_format(shared("who_and_when", "Algorithm-Generated", "80.json")) == "who_and_when"
