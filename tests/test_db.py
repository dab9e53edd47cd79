"""toolkit.db: the schema, connections and the query helper."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

import toolkit
from toolkit.db import DatabaseLockedError, quote_identifier, schema_sql

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


def test_read_only_reads_and_builds_temp_tables(tmp_path):
    path = tmp_path / "t.duckdb"
    con = toolkit.connect(path)
    con.execute("INSERT INTO traces (trace_id, system) VALUES ('t1', 's')")
    con.close()
    ro = toolkit.connect(path, read_only=True)
    assert toolkit.query(ro, "SELECT trace_id FROM traces")["trace_id"].tolist() == ["t1"]
    ro.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS x")  # the analyses' derived tables
    assert toolkit.findings(ro).empty
    with pytest.raises(duckdb.InvalidInputException, match="read-only"):
        ro.execute("INSERT INTO traces (trace_id) VALUES ('t2')")
    ro.close()


@pytest.mark.parametrize(
    ("path", "error", "match"),
    [
        ("missing.duckdb", FileNotFoundError, "no database at"),
        (None, ValueError, "needs a database file"),
        ("foreign.duckdb", ValueError, "not a toolkit database"),
    ],
)
def test_read_only_refuses(tmp_path, path, error, match):
    duckdb.connect(str(tmp_path / "foreign.duckdb")).close()  # a DuckDB file without our tables
    with pytest.raises(error, match=match):
        toolkit.connect(None if path is None else tmp_path / path, read_only=True)


def test_two_configurations_in_one_process_are_explained(tmp_path):
    path = tmp_path / "t.duckdb"
    con = toolkit.connect(path)
    with pytest.raises(duckdb.ConnectionException, match=r"already open in this process.*cursor"):
        toolkit.connect(path, read_only=True)
    con.close()


@pytest.mark.parametrize(
    ("held", "wanted", "opens", "read_only_would_work"),
    [
        ("ro", "ro", True, None),  # readers share the file
        ("ro", "rw", False, True),  # a writer waits for the readers
        ("rw", "ro", False, False),  # a reader waits for the writer
        ("rw", "rw", False, False),
    ],
)
def test_locks_between_processes(tmp_path, holder, held, wanted, opens, read_only_would_work):
    path = tmp_path / "t.duckdb"
    toolkit.connect(path).close()
    proc = holder(path, held)
    if opens:
        toolkit.connect(path, read_only=wanted == "ro").close()
        return
    with pytest.raises(DatabaseLockedError) as caught:
        toolkit.connect(path, read_only=wanted == "ro")
    err = caught.value
    assert err.pid == proc.pid and "python" in err.program
    assert err.read_only_would_work is read_only_would_work
    assert f"in use by {err.program} (PID {proc.pid})" in str(err)
    assert ("read_only=True" in str(err)) is read_only_would_work


def test_trace_sql_shows_every_statement_with_its_time():
    con = toolkit.connect()
    seen: list[tuple[str, dict, float]] = []
    with toolkit.trace_sql(con, lambda sql, params, seconds: seen.append((sql, params, seconds))):
        toolkit.query(con, "SELECT $a::INT AS x", a=1)
        toolkit.findings(con)
    assert seen[0][:2] == ("SELECT $a::INT AS x", {"a": 1})
    assert all(isinstance(s, float) and s >= 0 for _, _, s in seen)
    # the analyses' statements pass through the same hook, derived tables included
    assert any("_toolkit_uev" in sql for sql, _, _ in seen[1:])
    n = len(seen)
    toolkit.query(con, "SELECT 1")  # the context manager restored "no tracer"
    assert len(seen) == n


def test_connect_takes_a_tracer():
    seen = []
    con = toolkit.connect(tracer=lambda sql, params, seconds: seen.append(sql))
    toolkit.sessions(con)
    assert any("per_trace" in sql for sql in seen)
