"""toolkit.simulate: determinism, the truth contract, clean runs, valid CloudEvents."""

from __future__ import annotations

import pandas as pd
import pytest

import toolkit
from toolkit.simulate import DEFAULT_FAULTS, FAULT_KINDS


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = toolkit.simulate(tmp_path / "a", traces=40, seed=3)
    b = toolkit.simulate(tmp_path / "b", traces=40, seed=3)
    c = toolkit.simulate(tmp_path / "c", traces=40, seed=4)
    assert a["events"].read_bytes() == b["events"].read_bytes()
    assert a["truth"].read_bytes() == b["truth"].read_bytes()
    assert a["events"].read_bytes() != c["events"].read_bytes()


def test_output_is_valid_cloudevents_and_truth_points_at_recorded_events(tmp_path):
    out = toolkit.simulate(tmp_path, traces=300, seed=1, faults={k: 0.2 for k in FAULT_KINDS})
    con = toolkit.connect()
    result = toolkit.ingest(con, out["events"])
    assert result.loc[0, "rejected"] == 0 and result.loc[0, "rows"] == out["events_written"]
    truth = pd.read_csv(out["truth"])
    assert list(truth.columns) == ["trace_id", "event_id", "kind"]
    assert set(truth["kind"]) == set(FAULT_KINDS)
    con.register("truth", truth)
    missing = con.execute(
        "SELECT * FROM truth t ANTI JOIN events e USING (trace_id, event_id)"
    ).fetchall()
    assert missing == []
    assert len(truth) == out["findings"] and not truth.duplicated().any()


def test_clean_runs_have_empty_truth_and_no_fault_traces(tmp_path):
    out = toolkit.simulate(tmp_path, traces=50, seed=0, faults={})
    assert pd.read_csv(out["truth"]).empty
    con = toolkit.connect()
    toolkit.ingest(con, out["events"])
    per_trace = con.execute("""
        SELECT count(*) FILTER (type = 'task.completed'), count(*) FILTER (type LIKE 'escalation%'),
               count(*) - count(DISTINCT event_id)
        FROM events""").fetchall()[0]
    assert per_trace == (50, 0, 0)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_alone_produces_its_rows(tmp_path, kind):
    out = toolkit.simulate(tmp_path, traces=100, seed=2, faults={kind: 0.5})
    truth = pd.read_csv(out["truth"])
    expected = {kind, "unhandled"} if kind == "ignored_message" else {kind}
    assert set(truth["kind"]) == expected
    assert 25 <= truth["trace_id"].nunique() <= 75  # about half the traces


def test_duplicate_is_recorded_twice_and_missing_terminal_points_at_the_last_event(tmp_path):
    out = toolkit.simulate(
        tmp_path, traces=100, seed=5, faults={"duplicate": 0.3, "missing_terminal": 0.3}
    )
    con = toolkit.connect()
    toolkit.ingest(con, out["events"])
    con.register("truth", pd.read_csv(out["truth"]))
    dup_counts = con.execute("""
        SELECT DISTINCT count(*) FROM events JOIN truth USING (trace_id, event_id)
        WHERE truth.kind = 'duplicate' GROUP BY trace_id, event_id""").fetchall()
    assert dup_counts == [(2,)]
    not_last = con.execute("""
        SELECT t.trace_id FROM truth t JOIN events e USING (trace_id, event_id)
        WHERE t.kind = 'missing_terminal'
          AND e.ts < (SELECT max(ts) FROM events x WHERE x.trace_id = t.trace_id)""").fetchall()
    assert not_last == []


def test_bad_fault_arguments_are_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown fault kind"):
        toolkit.simulate(tmp_path, faults={"gremlins": 0.1})
    with pytest.raises(ValueError, match="between 0 and 1"):
        toolkit.simulate(tmp_path, faults={"late": 2.0})
    assert set(DEFAULT_FAULTS) == set(FAULT_KINDS)
