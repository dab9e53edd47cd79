"""The derived tables stay right under incremental ingest: the same rows as a full rebuild."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pandas as pd
import pytest

import toolkit
from tests.conftest import FIXTURES
from toolkit.analyze import derived
from toolkit.simulate import FAULT_KINDS

KEYS = {"_toolkit_uev": ["k"], "_toolkit_edge": ["ck", "relation"], "_toolkit_trace": ["trace_id"]}


def _snapshot(con) -> dict[str, pd.DataFrame]:
    return {
        name: con.execute(f"SELECT * FROM {name}").df().sort_values(keys, ignore_index=True)
        for name, keys in KEYS.items()
    }


def _assert_same_as_a_rebuild(con, *, repair: bool = True) -> None:
    """``repair=False``: ingest alone kept the tables right (no analysis ran since)."""
    if repair:
        toolkit.findings(con)  # the analyses' check repairs whatever ingest did not see
    incremental = _snapshot(con)
    derived.build(con)
    for name, rebuilt in _snapshot(con).items():
        pd.testing.assert_frame_equal(incremental[name], rebuilt, obj=name)


def _split(path: Path, parts: int, out: Path) -> list[Path]:
    """The file's lines in ``parts`` files, dealt round-robin: every trace spans all of them."""
    lines = path.read_text().splitlines(keepends=True)
    files = []
    for i in range(parts):
        f = out / f"part{i}.jsonl"
        f.write_text("".join(lines[i::parts]))
        files.append(f)
    return files


def test_simulated_traces_ingested_in_parts(tmp_path):
    sim = toolkit.simulate(tmp_path / "sim", traces=60, seed=4,
                           faults=dict.fromkeys(FAULT_KINDS, 0.3))  # fmt: skip
    con = toolkit.connect()
    for part in _split(Path(sim["events"]), 3, tmp_path):
        toolkit.ingest(con, part)
        _assert_same_as_a_rebuild(con, repair=False)


def test_several_files_in_one_ingest_bring_the_tables_up_to_date_once(tmp_path):
    """``ingest`` of a folder refreshes the derived tables once, after its last file, for
    traces new and old (here every trace spans all the files, and the database held some)."""
    sim = toolkit.simulate(tmp_path / "sim", traces=60, seed=5,
                           faults=dict.fromkeys(FAULT_KINDS, 0.3))  # fmt: skip
    parts = _split(Path(sim["events"]), 4, tmp_path)
    folder = tmp_path / "rest"
    folder.mkdir()
    for part in parts[1:]:
        part.rename(folder / part.name)
    refreshes = []
    con = toolkit.connect(tracer=lambda sql, params, seconds: refreshes.append(sql))
    toolkit.ingest(con, parts[0])
    refreshes.clear()
    result = toolkit.ingest(con, folder)
    assert list(result["status"]) == ["loaded"] * 3
    assert sum("_toolkit_state SET" in sql for sql in refreshes) == 1  # once, not per file
    _assert_same_as_a_rebuild(con, repair=False)


def test_several_files_whose_rows_moved_are_found_by_count(tmp_path, monkeypatch):
    """Rows no longer where the refresh expected them (a checkpoint compacted deletes between
    two files): the traces are found by their record counts, and the tables are still right."""
    ingest_module = importlib.import_module("toolkit.ingest")  # the package, not the function
    sim = toolkit.simulate(tmp_path / "sim", traces=30, seed=8,
                           faults=dict.fromkeys(FAULT_KINDS, 0.3))  # fmt: skip
    parts = _split(Path(sim["events"]), 3, tmp_path)
    statements = []
    con = toolkit.connect(tracer=lambda sql, params, seconds: statements.append(sql))
    toolkit.ingest(con, parts[0])
    end = ingest_module._end_of_events
    monkeypatch.setattr(ingest_module, "_end_of_events", lambda c: end(c) + 7)
    statements.clear()
    toolkit.ingest(con, parts[1:])
    assert not any("_toolkit_ingested AS" in sql for sql in statements)  # not by range
    _assert_same_as_a_rebuild(con, repair=False)


def test_a_build_in_parts_equals_a_build_in_one(tmp_path):
    """Parts hold whole traces; parents in another part (links across runs) are still found."""
    sim = toolkit.simulate(tmp_path / "sim", traces=40, seed=6,
                           faults=dict.fromkeys(FAULT_KINDS, 0.3))  # fmt: skip
    statements = []
    con = toolkit.connect(tracer=lambda sql, params, seconds: statements.append(sql))
    toolkit.ingest(con, [sim["events"], *(FIXTURES / "frameworks" / "autogen").glob("*.jsonl")])
    assert con.execute("SELECT count(*) FROM _toolkit_edge WHERE p_trace <> c_trace").fetchone()[0]
    derived.build(con, part_events=10**9)
    whole = _snapshot(con)
    statements.clear()
    derived.build(con, part_events=97)
    assert sum(s.startswith("INSERT INTO") and "_toolkit_uev " in s[:80] for s in statements) > 5
    for name, in_parts in _snapshot(con).items():
        pd.testing.assert_frame_equal(in_parts, whole[name], obj=name)


@pytest.mark.parametrize("framework", ["autogen", "openai_agents", "smolagents"])
def test_framework_traces_ingested_file_by_file(framework):
    con = toolkit.connect()
    for path in sorted((FIXTURES / "frameworks" / framework).glob("*.jsonl")):
        toolkit.ingest(con, path)
        _assert_same_as_a_rebuild(con, repair=False)


def test_a_session_change_outside_ingest_is_repaired(tmp_path):
    sim = toolkit.simulate(tmp_path / "sim", traces=10, seed=1)
    con = toolkit.connect()
    toolkit.ingest(con, sim["events"])
    con.execute("UPDATE traces SET session_id = 'one-run', system = 'other'")
    _assert_same_as_a_rebuild(con)
    assert set(toolkit.sessions(con)["session_id"]) == {"one-run"}


def test_a_read_only_database_without_the_tables_gets_temporary_ones(tmp_path):
    sim = toolkit.simulate(tmp_path / "sim", traces=10, seed=2)
    path = tmp_path / "t.duckdb"
    con = toolkit.connect(path)
    toolkit.ingest(con, sim["events"])
    expected = toolkit.findings(con)
    for table in derived.TABLES:
        con.execute(f"DROP TABLE {table}")
    con.close()
    ro = toolkit.connect(path, read_only=True)
    pd.testing.assert_frame_equal(toolkit.findings(ro), expected)
    ro.close()


class _Profiled:
    """A connection that keeps, for every statement, the table scans DuckDB's profiler saw."""

    def __init__(self, con) -> None:
        self._con = con
        self.scans: list[tuple[str, str, int, str]] = []  # (statement, table, rows, columns)
        con.execute("PRAGMA enable_profiling = 'no_output'")

    def execute(self, sql, *args):
        result = self._con.execute(sql, *args)
        profile = json.loads(self._con.get_profiling_information(format="json"))
        stack = list(profile.get("operator", []))
        while stack:
            node = stack.pop()
            stack += node.get("children", [])
            if node.get("type") == "TABLE_SCAN":
                info = node.get("extra_info", {})
                columns = info.get("Projections", "")
                self.scans.append((sql, info.get("Table", ""), node["rows_scanned"], columns))
        return result

    def __getattr__(self, name):
        return getattr(self._con, name)


def test_adding_new_runs_reads_only_the_new_rows(tmp_path):
    """Ingest into a database of 300k events reads the events and derived tables only where
    the new runs are (DuckDB's profiler counts the rows each scan read), not all of them."""
    con = toolkit.connect()
    con.execute("""
        INSERT INTO events (trace_id, event_id, parent_id, type, source, ts, seq, origin,
                            record_key, kind)
        SELECT 'old' || (i // 20), i::VARCHAR, CASE WHEN i % 20 > 0 THEN (i - 1)::VARCHAR END,
               'step', 'agent', TIMESTAMPTZ '2026-01-01' + to_seconds(i), i, 'sql', md5(i::VARCHAR),
               'event'
        FROM range(300000) r(i)""")
    con.execute("INSERT INTO traces (trace_id) SELECT DISTINCT trace_id FROM events")
    derived.build(con)
    sim = toolkit.simulate(tmp_path / "sim", traces=5, seed=3)
    profiled = _Profiled(con)
    toolkit.ingest(profiled, sim["events"])
    big = {"memory.main.events", "memory.main._toolkit_uev", "memory.main._toolkit_edge"}
    reads = [s for s in profiled.scans if s[1] in big and s[3] not in ("", "rowid")]
    assert reads, "the ingest read the events (the profiler saw it)"
    for sql, table, rows, columns in reads:
        assert rows < 150_000, f"{table} ({columns}): {rows:,} rows read by {sql[:300]}"
    profiled._con.execute("PRAGMA disable_profiling")
    _assert_same_as_a_rebuild(con, repair=False)
