"""Every event-flow detector against the simulator's ground truth: precision = recall = 1."""

from __future__ import annotations

import pandas as pd
import pytest

import toolkit
from toolkit.simulate import FAULT_KINDS

# The simulator injects no failed operations (status error): every other kind it does.
EVENT_FLOW = set(toolkit.FINDING_KINDS) - {"error"}


def _compare(tmp_path, seed, faults, **kwargs):
    out = toolkit.simulate(tmp_path, traces=300, seed=seed, faults=faults)
    con = toolkit.connect()
    toolkit.ingest(con, out["events"])
    truth = pd.read_csv(out["truth"])
    truth = truth[truth["kind"].isin(EVENT_FLOW)]
    found = toolkit.findings(con, **kwargs)[["trace_id", "event_id", "kind"]]
    merged = found.merge(truth, how="outer", indicator=True)
    return merged, truth


@pytest.mark.parametrize(
    ("seed", "rate"), [(0, None), (1, 0.05), (2, 0.2), (3, 0.4), (4, 0.5), (8, 0.5)]
)
def test_findings_match_the_injected_faults_exactly(tmp_path, seed, rate):
    faults = None if rate is None else dict.fromkeys(FAULT_KINDS, rate)
    merged, truth = _compare(tmp_path, seed, faults)
    wrong = merged[merged["_merge"] != "both"]
    assert wrong.empty, f"false positives / negatives:\n{wrong.head(20)}"
    assert set(truth["kind"]) == EVENT_FLOW  # every kind was injected and found
    # several faults hit the same trace, and still nothing is missed
    assert (truth.groupby("trace_id")["kind"].nunique() > 1).any()


@pytest.mark.parametrize(("seed", "rate"), [(7, 0.6), (10, 0.7), (5, 0.8), (6, 1.0)])
def test_when_most_runs_break_off_declared_terminal_types_keep_it_exact(tmp_path, seed, rate):
    # When (nearly) no trace reaches task.completed, the data cannot show what the end looks
    # like (a human's reply is the last event of most runs), so the user declares it.
    merged, _ = _compare(
        tmp_path, seed, dict.fromkeys(FAULT_KINDS, rate), terminal_types=["task.completed"]
    )
    wrong = merged[merged["_merge"] != "both"]
    assert wrong.empty, f"false positives / negatives:\n{wrong.head(20)}"


@pytest.mark.parametrize("kind", sorted(EVENT_FLOW))
def test_each_fault_alone_is_found_by_its_detector_only(tmp_path, kind):
    merged, truth = _compare(tmp_path, 11, {kind: 0.3})
    assert (merged["_merge"] == "both").all()
    assert set(merged["kind"]) == {kind} and len(truth) > 10


def test_clean_runs_yield_nothing_from_any_detector(tmp_path):
    out = toolkit.simulate(tmp_path, traces=300, seed=9, faults={})
    con = toolkit.connect()
    toolkit.ingest(con, out["events"])
    for detector in (toolkit.unhandled_events, toolkit.duplicates, toolkit.late_events, toolkit.hangs,
                     toolkit.escalations, toolkit.errors, toolkit.findings):  # fmt: skip
        assert detector(con).empty, detector.__name__
    assert toolkit.summary(con)["findings"].tolist() == [0]
