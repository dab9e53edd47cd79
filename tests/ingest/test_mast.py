"""MAST / MAD readers: the shared human-labelled file and a hand-made file in the full schema."""

from __future__ import annotations

import json
import re

import pytest

import toolkit
from tests.conftest import FIXTURES, shared
from toolkit.ingest import detect_format
from toolkit.ingest.mast_codes import final_code

HUMAN = ("mast", "MAD_human_labelled_dataset.json")


def _records() -> list[dict]:
    return json.loads(shared(*HUMAN).read_text())


@pytest.fixture
def human(con):
    result = toolkit.ingest(con, shared(*HUMAN))
    assert result["format"].tolist() == ["mast"]
    return con


def test_human_file_loads_with_no_rejects(human):
    assert human.execute("SELECT count(*) FROM rejects").fetchall() == [(0,)]
    assert human.execute("SELECT count(*) FROM traces").fetchall() == [(19,)]


def test_votes_one_row_per_vote_given(human):
    records = _records()
    votes = [
        a[k] for r in records for a in r["annotations"] for k in a if k.startswith("annotator_")
    ]
    given = [v for v in votes if isinstance(v, bool)]
    assert len(votes) - len(given) == 2  # the two bare NaN votes: no vote, no row
    assert human.execute("SELECT count(*) FROM annotations").fetchall() == [(len(given),)]
    assert len(given) == 946  # 5x18x3 + 10x17x3 + 4x14x3 - 2 NaN, counted from the file
    rows = human.execute(
        "SELECT annotator, count(*), sum(confidence) FROM annotations GROUP BY 1 ORDER BY 1"
    ).fetchall()
    # yes votes per annotator, counted by reading the file: 60, 50, 56 true values
    assert rows == [("human:1", 316, 60.0), ("human:2", 316, 50.0), ("human:3", 314, 56.0)]


@pytest.mark.parametrize(
    ("trace_id", "yes_modes"),
    [
        # record 3 (0-based 2), AG2 round 1: "1.5 Unaware of stopping conditions" and
        # "3.3 Ignoring suggestions from agents" are true for all three annotators; old 3.3 = FM-2.5
        ("mad:AG2:2:round-1", ["FM-1.5", "FM-2.5"]),
        # record 18 (0-based 17), Magentic-One final round: 1.1 [T, F, T], 3.2 [T, F, T],
        # 3.3 [T, T, T]; no other mode has a true vote
        ("mad:Magentic:17:generlazability", ["FM-1.1", "FM-3.2", "FM-3.3"]),
    ],
)
def test_majority_vote_read_off_the_file(human, trace_id, yes_modes):
    rows = human.execute(
        """SELECT mode FROM annotations WHERE trace_id = $t AND mode LIKE 'FM-%'
           GROUP BY mode HAVING sum(confidence) >= 2 ORDER BY mode""",
        {"t": trace_id},
    ).fetchall()
    assert [r[0] for r in rows] == yes_modes


def test_no_vote_is_not_a_zero_vote(human):
    # the NaN votes are annotator_3's on two records: those modes have 2 rows, not 3
    rows = human.execute(
        "SELECT trace_id, mode, count(*) FROM annotations GROUP BY ALL HAVING count(*) < 3"
    ).fetchall()
    assert len(rows) == 2
    zero = human.execute(
        "SELECT count(*) FROM annotations WHERE confidence = 0 AND evidence->>'vote' = '0'"
    ).fetchall()
    assert zero == [(946 - 166,)]


@pytest.mark.parametrize(
    ("round_name", "code", "final"),
    [
        ("Round 1", "2.6", "1.2"),
        ("Round 1", "4.2", "3.2"),
        ("Round 1", "3.4", None),
        ("Round 2", "1.7", "1.2"),
        ("Round 3", "3.2", "3.3"),
        ("Round 3", "2.4", None),
        ("Generlazability", "3.2", "3.2"),
        (None, "2.6", "2.6"),
    ],
)
def test_final_code(round_name, code, final):
    assert final_code(round_name, code) == final


def test_swapped_names_fixed_and_recorded(human):
    rows = human.execute(
        """SELECT system, attrs->>'benchmark', attrs->'swapped_fields'->>'mas_name'
           FROM traces WHERE attrs->>'swapped_fields' IS NOT NULL ORDER BY 1"""
    ).fetchall()
    assert rows == [("Magentic-One", "GAIA", "GAIA"), ("OpenManus", "GAIA", "GAIA")]


def test_identical_chatdev_traces_kept_apart(human):
    rows = human.execute(
        """SELECT trace_id, t.attrs->'same_trajectory_as'->>0, count(e.event_id)
           FROM traces t JOIN events e USING (trace_id)
           WHERE t.attrs->>'same_trajectory_as' IS NOT NULL GROUP BY ALL ORDER BY 1"""
    ).fetchall()
    # records 4 and 9 (trace_id 3 and 8) have byte-identical logs: two traces, same events
    assert rows == [
        ("mad:ChatDev:3:round-1", "mad:ChatDev:8:round-2", 212),
        ("mad:ChatDev:8:round-2", "mad:ChatDev:3:round-1", 212),
    ]


def test_events_per_framework(human):
    records = _records()
    counts = dict(human.execute("SELECT trace_id, count(*) FROM events GROUP BY 1").fetchall())
    ag2 = json.loads(records[2]["trace"])["trajectory"]
    assert counts["mad:AG2:2:round-1"] == len(ag2) == 10
    chatdev = records[3]["trace"].split("\n")
    headers = [x for x in chatdev if re.match(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+\] ", x)]
    assert counts["mad:ChatDev:3:round-1"] == len(headers) == 212
    magentic = records[17]["trace"].split("\n")
    speakers = [x for x in magentic if re.match(r"-{10} .+ -{10}$", x)]
    assert counts["mad:Magentic:17:generlazability"] == len(speakers) + 1 == 14  # + pip preamble
    metagpt = json.loads(records[4]["trace"])["content"]
    assert counts["mad:MetaGPT:4:round-1"] == metagpt.count(" | INFO     | ") == 5


def test_message_fields(human):
    rows = human.execute(
        """SELECT seq, event_id, parent_id, source, target, ts FROM events
           WHERE trace_id = 'mad:ChatDev:3:round-1' AND type = 'message' ORDER BY seq LIMIT 1"""
    ).fetchall()
    seq, event_id, parent, source, target, ts = rows[0]
    assert (event_id, parent) == (str(seq), str(seq - 1))
    assert (source, target) == ("Chief Executive Officer", "Chief Product Officer")
    # ChatDev writes YYYY-DD-MM: [2025-17-01 11:36:43 INFO] is 17 January
    assert (ts.month, ts.day) == (1, 17)
    tasks = dict(human.execute("SELECT trace_id, task FROM traces").fetchall())
    assert tasks["mad:ChatDev:3:round-1"].startswith("Develop a classic Sudoku puzzle")
    assert tasks["mad:OpenManus:18:generlazability"] is None  # the prompt is not in the log
    single = human.execute("SELECT count(*) FROM events WHERE attrs->>'split' = 'none'").fetchall()
    assert single == [(0,)]  # every human-file trajectory was split


def test_reingest_adds_nothing(human):
    before = [
        human.execute(f"SELECT count(*) FROM {t}").fetchall() for t in ("events", "annotations")
    ]
    toolkit.ingest(human, shared(*HUMAN), format="mast")  # same bytes: skipped
    human.execute("DELETE FROM ingests")
    again = toolkit.ingest(human, shared(*HUMAN))
    assert again["rows"].tolist() == [0]
    after = [
        human.execute(f"SELECT count(*) FROM {t}").fetchall() for t in ("events", "annotations")
    ]
    assert after == before


def test_full_schema_hand_made_file(con):
    # Hand-made in the published MAD_full_dataset.json schema (see tests/fixtures/mast/PROVENANCE.md)
    path = FIXTURES / "mast" / "mad_full_sample.json"
    assert detect_format(path) == "mast"
    toolkit.ingest(con, path)
    traces = con.execute(
        "SELECT split_part(trace_id, ':', 2), system, task, attrs->>'llm' FROM traces ORDER BY 1"
    ).fetchall()
    assert traces == [
        ("AG2", "AG2", "What is 2 + 3?", "gpt-4o"),
        ("MetaGPT", "MetaGPT", None, "gpt-4o"),
        ("SomeNewFramework", "SomeNewFramework", None, "claude-3-7-sonnet"),
    ]
    events = con.execute(
        "SELECT split_part(trace_id, ':', 2), count(*), count(*) FILTER (attrs->>'split' = 'none') "
        "FROM events GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert events == [("AG2", 3, 0), ("MetaGPT", 1, 1), ("SomeNewFramework", 1, 1)]
    notes = con.execute(
        "SELECT annotator, count(*), sum(confidence) FROM annotations GROUP BY 1"
    ).fetchall()
    assert notes == [("mast-llm", 15, 4.0)]  # 13 + 1 + 1 votes given; nulls give no row
    rejects = con.execute("SELECT origin, reason FROM rejects ORDER BY reason").fetchall()
    assert [o.rsplit("#", 1)[1] for o, _ in rejects] == ["4", "3", "4"]
    assert "not a MAD record" in rejects[1][1]


@pytest.mark.parametrize(
    "parts",
    [
        ("who_and_when", "Hand-Crafted", "1.json"),
        ("tau_bench", "historical_trajectories", "gpt-4o-airline.json"),
        ("agentrx", "data", "ground_truth", "magentic_one_ground_truth.json"),
    ],
)
def test_sniff_rejects_other_datasets(parts):
    from toolkit.ingest import mast

    assert not mast.sniff(shared(*parts).read_bytes()[:65536])
