"""No JVM: each analysis's Spark SQL against a golden copy, and the traps it must not fall into.

A sqlglot upgrade that changes the output fails here; regenerate the copies with
``TOOLKIT_UPDATE_GOLDEN=1 pytest tests/spark`` and read the diff before committing it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("sqlglot")

from toolkit.analyze import derived
from toolkit.analyze.delivery import duplicates_query, late_events_query
from toolkit.analyze.failures import errors_query
from toolkit.analyze.flow import escalations_query, hangs_query, unhandled_events_query
from toolkit.analyze.graphs import event_nodes_query, flow_edges_query, flow_nodes_query
from toolkit.analyze.latency import latency_distribution_query, latency_query
from toolkit.analyze.scope import Query
from toolkit.analyze.sessions import sessions_query, traces_query
from toolkit.classify import rules_content as rc
from toolkit.classify import rules_flow as rf
from toolkit.spark import _HANDLED, transpile
from toolkit.spark.transpile import bind, literal, plan

GOLDEN = Path(__file__).parent / "golden"
RULES = {
    "repetition_flow": rf.repetition_flow, "repetition_content": rc.repetition_content,
    "after_terminal": lambda con: rf.after_terminal(con, None),
    "termination_content": rc.termination_content, "reset": rc.reset,
    "derailment": rc.derailment, "ignored_input": rf.ignored_input,
    "premature_termination": lambda con: rf.premature_termination(con, None),
    "no_verification": lambda con: rf.no_verification(con, None),
    "incorrect_verification": rf.incorrect_verification,
}  # fmt: skip
_EDGES = derived.PARENT_SQL.format(
    edges=derived.EDGE_SQL.format(uev="_toolkit_uev0", scope="true"), uev="_toolkit_uev0"
)
QUERIES = {
    "unhandled_events": unhandled_events_query(subscriptions={"task.assigned": "worker"}),
    "duplicates": duplicates_query(),
    "late_events": late_events_query(terminal_types=["task.completed"]),
    "hangs": hangs_query(timeout=30, as_of="2026-01-01T00:00:00+00:00"),
    "escalations": escalations_query(),
    "errors": errors_query(),
    "sessions": sessions_query(system="support", start="2026-01-01"),
    "traces": traces_query(trace_id="t-1"),
    "flow_edges": flow_edges_query(by="source_type"),
    "flow_nodes": flow_nodes_query(),
    "latency": latency_query(by="handler"),
    "latency_distribution": latency_distribution_query(measure="duration"),
    "event_nodes": event_nodes_query("t-1"),
    "derived_uev": Query([], derived.UEV_SQL.format(scope="true"), {}, []),
    "derived_edge": Query([], _EDGES, {}, []),
    "derived_handled": Query([], _HANDLED, {}, []),
}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_spark_sql_matches_the_golden_copy(name):
    text = transpile(QUERIES[name]).text()
    path = GOLDEN / f"{name}.sql"
    if os.environ.get("TOOLKIT_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_no_trap_is_left(name):
    text = transpile(QUERIES[name]).text().upper()
    assert not re.search(r"(?<![A-Z0-9_])HASH\(", text)  # 32-bit on Spark: XXHASH64
    assert not re.search(r"\$[A-Z_]", text)  # every parameter bound
    assert "PERCENTILE_APPROX" not in text and "PERCENTILE_CONT" not in text
    for trap in ("TO_MICROSECONDS", "EPOCH_US", "HUGEINT", "REGEXP_FULL_MATCH", "WITH RECURSIVE", "ANY_VALUE",
                 "DISTINCT ON", "QUALIFY", "MATERIALIZED"):  # fmt: skip
        assert trap not in text, trap


def test_case_insensitive_regexes_keep_their_flag():
    text = transpile(escalations_query()).text()
    assert "RLIKE '(?i)escalat|human'" in text
    assert "RLIKE '(?i)confiden|unsure|not sure|uncertain'" in text
    assert not re.search(r"RLIKE '(?!\(\?i\))", text)
    # a pattern that is an expression gets the flag as a prefix, in parentheses
    sql = plan("SELECT regexp_matches(x, p, 'i') FROM t").sql
    assert sql == "SELECT x RLIKE ('(?i)' || p) FROM t"


def test_parameters_are_bound_on_the_tree_not_in_the_text():
    # a value that looks like SQL stays one string literal
    sql = plan("SELECT * FROM t WHERE a = $v AND b = ANY($l)", {"v": "x' OR '1'='1", "l": [1, 2]})
    assert "'x\\' OR \\'1\\'=\\'1'" in sql.sql or "'x'' OR ''1''=''1'" in sql.sql
    assert bind(literal(None), {}).sql() == "NULL"


def test_recursive_ctes_become_fixpoints():
    p = transpile(errors_query())
    assert [f.name for f in p.fixpoints] == ["_toolkit_cte_part"]
    assert p.fixpoints[0].columns == ["top", "k"]
    assert "FROM _toolkit_cte_part AS p" in p.fixpoints[0].step and "part(" not in p.sql


@pytest.mark.parametrize(
    ("sql", "taken"),
    [
        # read twice and aggregating: computed once
        ("WITH a AS (SELECT k, count(*) AS n FROM t GROUP BY k) "
         "SELECT * FROM a JOIN a AS b USING (k)", ["a"]),
        # read once, or a plain filter read twice: left to Spark
        ("WITH a AS (SELECT k, count(*) AS n FROM t GROUP BY k) SELECT * FROM a", []),
        ("WITH a AS (SELECT * FROM t WHERE k > 1) SELECT * FROM a JOIN a AS b USING (k)", []),
        # read once by a CTE that is itself inlined twice: twice in all
        ("WITH a AS (SELECT DISTINCT k FROM t), b AS (SELECT * FROM a WHERE k > 1) "
         "SELECT * FROM b JOIN b AS c USING (k)", ["a"]),
        # ... but once when that CTE is itself computed once
        ("WITH a AS (SELECT DISTINCT k FROM t), b AS (SELECT k FROM a WHERE k IN (SELECT k FROM u)) "
         "SELECT * FROM b JOIN b AS c USING (k)", ["b"]),
    ],
)  # fmt: skip
def test_ctes_spark_would_compute_twice_are_computed_once(sql, taken):
    p = plan(sql)
    assert [s.name for s in p.steps] == [f"_toolkit_cte_{n}" for n in taken]
    for name in taken:  # read as its view, under its own name
        assert f"FROM _toolkit_cte_{name} AS {name}" in p.sql


def test_a_double_printed_as_text_is_printed_the_duckdb_way():
    sql = plan("SELECT 'waited ' || round(x, 3)::DOUBLE::VARCHAR FROM t").sql
    assert sql.startswith("SELECT 'waited ' || TRANSFORM(ARRAY(CAST(ROUND(x, 3) AS DOUBLE)), v ->")
    # any other cast to text is left alone
    assert plan("SELECT x::VARCHAR, x::DOUBLE FROM t").sql == (
        "SELECT CAST(x AS STRING), CAST(x AS DOUBLE) FROM t"
    )


def test_ordered_lists_keep_their_order_and_their_nulls():
    sql = plan("SELECT list(x ORDER BY ts, seq) FROM t GROUP BY k").sql
    assert sql == (
        "SELECT TRANSFORM(ARRAY_SORT(COLLECT_LIST(STRUCT(ts IS NULL AS n0, ts AS k0, "
        "seq IS NULL AS n1, seq AS k1, x AS v))), r -> r.v) FROM t GROUP BY k"
    )
    with pytest.raises(ValueError, match="only ascending"):
        plan("SELECT list(x ORDER BY ts DESC) FROM t")


class _Capture:
    """A connection that records the queries it is given (and returns no rows)."""

    def __init__(self) -> None:
        self.queries: list[Query] = []

    def run(self, q: Query) -> pd.DataFrame:
        self.queries.append(q)
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in q.columns})


@pytest.mark.parametrize("name", RULES)
def test_every_mast_rule_transpiles_without_a_trap(name):
    con = _Capture()
    RULES[name](con)
    assert con.queries
    for q in con.queries:
        text = transpile(q).text().upper()
        assert not re.search(r"(?<![A-Z0-9_])(HASH|LIST_[A-Z_]+)\(", text)
        assert "PERCENTILE_APPROX" not in text and "WITH RECURSIVE" not in text
        assert not re.search(r"COLLECT_LIST\([^()]*ORDER BY", text)
