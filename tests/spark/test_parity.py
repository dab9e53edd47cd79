"""Spark local[2] against DuckDB: every analysis, row for row, on simulated and real traces.

One Spark session for the module (start-up is most of the cost); floats compared to rtol=1e-9,
everything else exactly.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import sys

import pandas as pd
import pytest

import toolkit
from tests.conftest import FIXTURES
from toolkit.classify import rules_content as rc
from toolkit.classify import rules_flow as rf
from toolkit.simulate import FAULT_KINDS

pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None:  # pragma: no cover - Java 17 is part of the machine
    pytest.skip("no Java for Spark", allow_module_level=True)

from toolkit import spark as tspark  # noqa: E402
from toolkit.spark.transpile import to_spark  # noqa: E402

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
    "filtered errors": lambda con: toolkit.errors(con, system="autogen-app"),
}
# The MAST rules (toolkit.classify), each a query run by the same engine: hits as rows.
RULES = {
    "repetition_flow": rf.repetition_flow,
    "repetition_content": rc.repetition_content,
    "after_terminal": lambda con: rf.after_terminal(con, None),
    "termination_content": rc.termination_content,
    "reset": rc.reset,
    "derailment": rc.derailment,
    "ignored_input": rf.ignored_input,
    "premature_termination": lambda con: rf.premature_termination(con, None),
    "no_verification": lambda con: rf.no_verification(con, None),
    "incorrect_verification": rf.incorrect_verification,
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


@pytest.mark.slow
@pytest.mark.parametrize("name", ANALYSES)
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


@pytest.mark.slow
@pytest.mark.parametrize("name", RULES)
def test_spark_finds_what_duckdb_finds(both, name):
    con, sc = both
    # list_distinct's order is unspecified on DuckDB (and first-seen on Spark): ids as sets
    expected, got = (
        rf.as_frame(RULES[name](c)).assign(event_ids=lambda d: d.event_ids.map(sorted))
        for c in (con, sc)
    )
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_exact=False, rtol=1e-9)


def _doubles() -> list[float]:
    """Doubles as the analyses print them (seconds rounded to 3 places) and then some: every
    magnitude, both signs, the edges of DuckDB's plain notation, zero, infinities."""
    rng = random.Random(7)
    values = [0.0, -0.0, 1e-4, 9.999e-5, 1e-5, 0.001, 1e7, 1e15, 9999999999999998.0, 1e16,
              1e-7, 5.0, 0.1 + 0.2, 97401902.911, 123456789012345680.0, 1.5e300, 5e-324,
              math.inf, -math.inf]  # fmt: skip
    for _ in range(1500):
        x = rng.choice([-1, 1]) * 10 ** rng.uniform(-9, 22)
        values += [x, round(x, 3), float(round(x))]
    return values


@pytest.mark.slow
def test_doubles_become_the_same_text(both):
    con, sc = both
    frame = pd.DataFrame({"i": range(len(_doubles())), "x": _doubles()})
    sc.frame(frame).createOrReplaceTempView("_doubles")
    sql = "SELECT i, x::DOUBLE::VARCHAR AS s FROM _doubles ORDER BY i"
    got = sc.spark.sql(to_spark(sql)).toPandas()
    con.register("_doubles", frame)
    expected = con.execute(sql).df()
    con.unregister("_doubles")
    mismatch = got.s != expected.s
    assert not mismatch.any(), pd.concat([expected[mismatch], got.s[mismatch]], axis=1).head()
