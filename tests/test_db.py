"""toolkit.db: the schema, connections and the query helper."""

from __future__ import annotations

import pandas as pd

import toolkit
from toolkit.db import quote_identifier, schema_sql

TABLES = {"events", "traces", "annotations", "rejects", "ingests"}


def tables(con) -> set[str]:
    return {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }


def test_schema_has_the_canonical_tables(con):
    assert tables(con) >= TABLES


def test_schema_applied_twice_is_harmless(tmp_path):
    path = tmp_path / "t.duckdb"
    con = toolkit.connect(path)
    con.execute("INSERT INTO traces (trace_id, system) VALUES ('t1', 's')")
    con.execute(schema_sql())
    con.close()
    con = toolkit.connect(path)  # reopening applies the schema again
    assert con.execute("SELECT trace_id, system FROM traces").fetchall() == [("t1", "s")]
    con.close()


def test_file_database_is_created_with_parent_folders(tmp_path):
    path = tmp_path / "a" / "b" / "t.duckdb"
    toolkit.connect(path).close()
    assert path.exists()


def test_timestamps_come_back_in_utc(con):
    ts = con.execute("SELECT '2026-01-01 12:00:00+02:00'::TIMESTAMPTZ").fetchall()[0][0]
    assert ts.utcoffset().total_seconds() == 0 and ts.hour == 10


def test_query_binds_parameters_and_traces():
    con = toolkit.connect()
    seen = []
    df = toolkit.query(
        con, "SELECT $a::INT + 1 AS x, $b AS y", tracer=lambda s, p: seen.append(p), a=41, b="it's"
    )
    pd.testing.assert_frame_equal(df, pd.DataFrame({"x": [42], "y": ["it's"]}), check_dtype=False)
    assert seen == [{"a": 41, "b": "it's"}]


def test_query_without_parameters_returns_columns_on_empty_result(con):
    df = toolkit.query(con, "SELECT trace_id, event_id FROM events")
    assert list(df.columns) == ["trace_id", "event_id"] and df.empty


def test_quote_identifier_escapes_quotes():
    assert quote_identifier("events") == '"events"'
    assert quote_identifier('we"ird') == '"we""ird"'
