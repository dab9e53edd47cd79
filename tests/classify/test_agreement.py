"""Agreement metrics on literal votes, and the MAD human file's majorities read off by hand."""

from __future__ import annotations

import math

import pytest

import toolkit
from toolkit.classify import agreement, classify, reference_labels
from toolkit.ingest.base import create_stage, drop_stage, merge_annotations, stage_rows

from ..conftest import shared
from .helpers import chat


def votes(con, rows):
    create_stage(con)
    stage_rows(con, "annotations", [
        {"trace_id": t, "mode": m, "annotator": a, "confidence": c, "evidence": {"v": c}}
        for t, m, a, c in rows])  # fmt: skip
    merge_annotations(con)
    drop_stage(con)


def test_majority_vote_and_missing_votes(con):
    votes(con, [("t", "FM-1.3", "human:1", 1.0), ("t", "FM-1.3", "human:2", 1.0),
                ("t", "FM-1.3", "human:3", 0.0), ("t", "FM-2.1", "human:1", 1.0),
                ("t", "FM-2.1", "human:2", 0.0), ("t", "FM-3.1", "human:1", 0.0)])  # fmt: skip
    labels = reference_labels(con).set_index("mode")["label"].to_dict()
    assert labels == {"FM-1.3": True, "FM-3.1": False}  # FM-2.1 is a 1-1 tie: unknown


def test_scores_and_not_assessed(con):
    for t in "abcd":
        chat(con, t, [("u", "hi"), ("a", "ok")])
    votes(con, [("a", "FM-1.3", "human", 1.0), ("b", "FM-1.3", "human", 1.0),
                ("c", "FM-1.3", "human", 0.0), ("d", "FM-1.3", "human", 0.0),
                ("a", "FM-1.1", "human", 1.0),
                ("a", "FM-1.3", "rules", 0.7), ("c", "FM-1.3", "rules", 0.7)])  # fmt: skip
    df = agreement(con)
    row = df[df["mode"] == "FM-1.3"].iloc[0]
    assert (row.tp, row.fp, row.fn, row.tn) == (1, 1, 1, 1)
    assert row.accuracy == 0.5 and row.precision == 0.5 and row.kappa == 0.0
    fm11 = df[df["mode"] == "FM-1.1"].iloc[0]
    assert not fm11.assessed and math.isnan(fm11.kappa) and fm11.support == 1
    fc1 = df[(df["level"] == "category") & (df["category"] == "FC1")].iloc[0]
    assert fc1.modes_not_assessed == 3 and fc1.traces == 4  # FM-1.1's pair is left out


def test_perfect_agreement_kappa_one(con):
    votes(con, [("a", "FM-1.3", "human", 1.0), ("b", "FM-1.3", "human", 0.0),
                ("a", "FM-1.3", "judge", 1.0)])  # fmt: skip
    row = agreement(con, candidate="judge").set_index("mode").loc["FM-1.3"]
    assert row.kappa == 1.0 and row.f1 == 1.0


@pytest.fixture
def mad(con):
    toolkit.ingest(con, shared("mast", "MAD_human_labelled_dataset.json"))
    return con


def test_mad_majorities_read_off_the_file(mad):
    labels = reference_labels(mad).set_index(["trace_id", "mode"])["label"]
    # AG2 trace 2, round 1: all three annotators said yes to "Unaware of stopping conditions"
    # and "Ignoring suggestions from agents", no to "Step repetition" and "Conversation reset".
    ag2 = "mad:AG2:2:round-1"
    assert labels[(ag2, "FM-1.5")] and labels[(ag2, "FM-2.5")]
    assert not labels[(ag2, "FM-1.3")] and not labels[(ag2, "FM-2.1")]
    # ChatDev trace 3, round 1: yes to step repetition, conversation reset, derailment, disobey
    # role specification; no to ignoring suggestions.
    cd = "mad:ChatDev:3:round-1"
    assert all(labels[(cd, m)] for m in ("FM-1.3", "FM-2.1", "FM-2.3", "FM-1.2"))
    assert not labels[(cd, "FM-2.5")]


def test_mad_agreement_runs(mad):
    classify(mad)
    df = agreement(mad)
    print(df.round(3).to_string())
    assert set(df["level"]) == {"mode", "category", "all"} and len(df) == 14 + 3 + 1
    assert df.loc[df["level"] == "all", "traces"].iloc[0] > 0
