"""The derived tables stay right under incremental ingest: the same rows as a full rebuild."""

from __future__ import annotations

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


def _assert_same_as_a_rebuild(con) -> None:
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
        _assert_same_as_a_rebuild(con)


@pytest.mark.parametrize("framework", ["autogen", "openai_agents", "smolagents"])
def test_framework_traces_ingested_file_by_file(framework):
    con = toolkit.connect()
    for path in sorted((FIXTURES / "frameworks" / framework).glob("*.jsonl")):
        toolkit.ingest(con, path)
        _assert_same_as_a_rebuild(con)


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
