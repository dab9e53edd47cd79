"""failure_breakdown's column contract and the taxonomy data."""

from __future__ import annotations

import math

import pytest

from toolkit.classify import CATEGORIES, TAXONOMY, classify, failure_breakdown, taxonomy_frame
from toolkit.classify.breakdown import BREAKDOWN_COLUMNS

from .helpers import pipeline


def test_taxonomy():
    assert list(TAXONOMY) == [
        f"FM-{c}.{m}" for c, n in ((1, 5), (2, 6), (3, 3)) for m in range(1, n + 1)
    ]
    assert set(CATEGORIES) == {"FC1", "FC2", "FC3"}
    assert TAXONOMY["FM-3.2"].name == "No or incomplete verification"
    assert round(taxonomy_frame()["prevalence_pct"].sum()) == 100


def test_empty(con):
    df = failure_breakdown(con)
    assert list(df.columns) == BREAKDOWN_COLUMNS and len(df) == 14
    assert (df["group"] == "all").all()


def test_counts_and_shares(con):
    for i in range(5):
        pipeline(con, f"ok{i}")
    pipeline(con, "t", verify=False)
    classify(con)
    flat = failure_breakdown(con, group_by="system")
    assert list(flat.columns) == BREAKDOWN_COLUMNS and len(flat) == 14
    df = flat.set_index("mode")
    assert df.loc["FM-3.1", "traces"] == 1 and df.loc["FM-3.1", "flags"] == 1
    assert df.loc["FM-3.1", "trace_share"] == pytest.approx(1 / 6)
    assert df.loc["FM-3.1", "flag_share"] == pytest.approx(0.5)
    assert df.loc["FM-1.3", "traces"] == 0 and df.loc["FM-1.3", "assessed"]
    assert not df.loc["FM-1.1", "assessed"] and math.isnan(df.loc["FM-1.1", "traces"])
    assert (df["group"] == "pipe").all()
    with pytest.raises(ValueError):
        failure_breakdown(con, group_by="colour")
