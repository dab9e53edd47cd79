"""Spark local[2] against DuckDB: every analysis, row for row, on simulated and real traces.

One Spark session for the module (start-up is most of the cost); floats compared to rtol=1e-9,
everything else exactly.
"""

from __future__ import annotations

import os
import shutil
import sys

import pandas as pd
import pytest

import toolkit
from tests.conftest import FIXTURES
from toolkit.simulate import FAULT_KINDS

pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None:  # pragma: no cover - Java 17 is part of the machine
    pytest.skip("no Java for Spark", allow_module_level=True)

from toolkit import spark as tspark  # noqa: E402

# py4j leaves its sockets to the garbage collector
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    # pyspark 4.0's Arrow path still passes pandas 3 a deprecated ``copy=``
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning"),
]

ANALYSES = {
    "unhandled_events": toolkit.unhandled_events,
    "duplicates": toolkit.duplicates,
    "late_events": toolkit.late_events,
    "hangs": lambda con: toolkit.hangs(con, timeout=5, as_of="2030-01-01T00:00:00+00:00"),
    "escalations": toolkit.escalations,
    "errors": toolkit.errors,
    "findings": toolkit.findings,
    "summary": lambda con: toolkit.summary(con, by="session"),
    "sessions": toolkit.sessions,
    "traces": toolkit.traces,
    "flow_edges": toolkit.flow_edges,
    "latency": lambda con: toolkit.latency(con, by="handler"),
    "filtered findings": lambda con: toolkit.findings(con, system="autogen-app"),
}


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]").appName("toolkit-parity")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )  # fmt: skip
    spark.sparkContext.setLogLevel("ERROR")
    tmp = tmp_path_factory.mktemp("parity")
    sim = toolkit.simulate(tmp / "sim", traces=200, seed=5, faults=dict.fromkeys(FAULT_KINDS, 0.2))
    con = toolkit.connect()
    toolkit.ingest(con, sim["events"])
    for framework in ("autogen", "openai_agents", "smolagents", "langgraph"):
        toolkit.ingest(con, sorted((FIXTURES / "frameworks" / framework).glob("*.jsonl")))
    yield con, tspark.from_duckdb(spark, con)
    spark.stop()


# Known gaps, each a failing case until fixed (xfail_strict: a fix turns them red):
# a double in a detail text prints as 9.7401902911E7 on Spark, 97401902.911 on DuckDB; errors'
# `origin` CTE (NOT EXISTS over the fixpoint joined twice) hits a Spark 4.0 INTERNAL_ERROR.
GAPS = {"hangs": "double to text", "errors": "Spark INTERNAL_ERROR in origin",
        "findings": "errors, hangs", "summary": "errors", "filtered findings": "errors"}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    # the composites fail through errors / hangs, which run: not running them saves a minute
    [pytest.param(n, marks=pytest.mark.xfail(reason=GAPS[n], run=n in ("hangs", "errors")))
     if n in GAPS else n for n in ANALYSES],
)  # fmt: skip
def test_spark_returns_what_duckdb_returns(both, name):
    con, sc = both
    expected, got = ANALYSES[name](con), ANALYSES[name](sc)
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    if len(expected) == 0:
        return
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), expected.reset_index(drop=True),
        check_dtype=False, check_exact=False, rtol=1e-9,
    )  # fmt: skip
