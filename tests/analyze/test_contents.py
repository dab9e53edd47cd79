"""The counts a report prints beside its charts, and findings placed in their system and time."""

from __future__ import annotations

import pandas as pd
from pandas.testing import assert_frame_equal

import toolkit
from toolkit.analyze.contents import ANNOTATOR_COLUMNS, annotators, contents
from toolkit.analyze.findings import with_event_context


def test_contents_of_an_empty_store(con):
    assert_frame_equal(contents(con), pd.DataFrame({"systems": [0], "rejected": [0]}),
                       check_dtype=False)  # fmt: skip
    assert list(annotators(con).columns) == ANNOTATOR_COLUMNS and annotators(con).empty


def test_annotators_rules_first_and_per_system(loaded_con):
    toolkit.classify(loaded_con)
    everyone = annotators(loaded_con)
    assert everyone["annotator"].iloc[0] == "rules" and (everyone["annotations"] > 0).all()
    desk = annotators(loaded_con, system="support-desk")
    assert 0 < desk["annotations"].sum() <= everyone["annotations"].sum()
    assert annotators(loaded_con, system="no-such-system").empty


def test_with_event_context_adds_system_and_first_time(loaded_con):
    rows = pd.DataFrame({"trace_id": ["ticket-100", "ticket-100", "nowhere"],
                         "event_id": ["no-such-event", "q-101", "x"], "kind": ["a", "b", "c"],
                         "system": ["stale", "stale", "stale"]})  # fmt: skip
    before = rows.copy()
    out = with_event_context(loaded_con, rows).sort_values("kind", ignore_index=True)
    assert_frame_equal(rows, before)  # the input is not changed
    assert list(out.columns) == ["trace_id", "event_id", "kind", "system", "ts"]
    assert out["system"].tolist() == ["support-desk", "support-desk", "(unknown)"]
    assert pd.isna(out["ts"].iloc[0]) and pd.isna(out["ts"].iloc[2])
    assert out["ts"].iloc[1] == pd.Timestamp("2026-03-02 09:00:01.200", tz="UTC")


def test_with_event_context_of_no_rows(con):
    out = with_event_context(con, pd.DataFrame(columns=["trace_id", "event_id", "kind"]))
    assert out.empty and list(out.columns) == ["trace_id", "event_id", "kind", "system", "ts"]
