"""Parquet in the canonical schema: export, import, and a lossless round trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import toolkit
from toolkit.ingest import parquet as parquet_format

EVENT_COLUMNS = "* EXCLUDE (record_key)"


def _events(con) -> pd.DataFrame:
    return toolkit.query(
        con, f"SELECT {EVENT_COLUMNS} FROM events ORDER BY origin, seq"
    ).reset_index(drop=True)


text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)
ident = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_:/", min_size=1, max_size=12)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
event = st.fixed_dictionaries(
    {"specversion": st.just("1.0"), "id": ident, "source": ident, "type": ident},
    optional={
        "time": st.datetimes(
            min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
        ).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
        "traceid": st.sampled_from(["t1", "t2", "ünï-✓"]),
        "causationid": ident,
        "idempotencykey": text.filter(bool),
        "data": json_value | text.filter(bool).map(lambda s: s * 3000),  # huge content
        "subject": text.filter(bool),
        "level": st.integers(0, 5) | st.booleans(),
    },
)


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(event, max_size=12))
def test_cloudevents_to_duckdb_to_parquet_to_duckdb_is_lossless(tmp_path_factory, records):
    tmp = tmp_path_factory.mktemp("rt")
    src = tmp / "events.jsonl"
    src.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    first = toolkit.connect()
    toolkit.ingest(first, src, format="cloudevents")
    assert first.execute("SELECT count(*) FROM rejects").fetchall()[0][0] == 0
    assert toolkit.export_parquet(first, tmp / "events.parquet") == len(records)

    second = toolkit.connect()
    toolkit.ingest(second, tmp / "events.parquet")
    pd.testing.assert_frame_equal(_events(first), _events(second))
    keys = "SELECT record_key FROM events ORDER BY 1"
    assert first.execute(keys).fetchall() == second.execute(keys).fetchall()
    # back into the first database: the same records, nothing added
    assert toolkit.ingest(first, tmp / "events.parquet").loc[0, "rows"] == 0


def test_export_one_trace(loaded_con, tmp_path):
    n = toolkit.export_parquet(loaded_con, tmp_path / "t.parquet", trace_id="ticket-100")
    table = pq.read_table(tmp_path / "t.parquet")
    assert n == table.num_rows == 7
    assert set(table.column("trace_id").to_pylist()) == {"ticket-100"}


def test_parquet_from_another_tool_with_extra_columns_and_missing_values(con, tmp_path):
    table = pa.table({
        "trace_id": ["a", "a", None], "event_id": ["1", "2", "3"], "type": ["x", "y", "z"],
        "ts": pd.to_datetime(["2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", None]),
        "agent_model": ["gpt", "claude", "gpt"],
    })  # fmt: skip
    pq.write_table(table, tmp_path / "other.parquet")
    result = toolkit.ingest(con, tmp_path / "other.parquet")
    assert (result.loc[0, "format"], result.loc[0, "rows"], result.loc[0, "rejected"]) == (
        "parquet",
        2,
        1,
    )
    rows = con.execute("SELECT event_id, attrs, origin FROM events ORDER BY event_id").fetchall()
    assert [json.loads(r[1]) for r in rows] == [{"agent_model": "gpt"}, {"agent_model": "claude"}]
    assert rows[0][2] == f"{tmp_path / 'other.parquet'}#1"
    assert con.execute("SELECT origin, reason FROM rejects").fetchall() == [
        (f"{tmp_path / 'other.parquet'}#3", "missing required value: trace_id")
    ]


def test_parquet_without_required_columns_rejects_every_row(con, tmp_path):
    pq.write_table(pa.table({"event_id": ["1", "2"]}), tmp_path / "bad.parquet")
    toolkit.ingest(con, tmp_path / "bad.parquet")
    reasons = con.execute("SELECT DISTINCT reason FROM rejects").fetchall()
    assert reasons == [("Parquet file lacks required column(s) trace_id, type",)]


def test_parquet_read_in_batches_across_row_groups_equals_one_read(tmp_path, monkeypatch):
    """A large file is read a batch at a time (memory follows the batch, not the file): rows,
    row numbers in origins and rejects are the same whatever the batches and row groups."""
    n = 23
    table = pa.table(
        {
            "trace_id": [f"t{i % 3}" for i in range(n)],
            "event_id": [f"e{i}" for i in range(n)],
            "type": ["x"] * n,
            "ts": [
                "not a time" if i in (3, 11) else f"2026-03-02T09:00:{i:02d}Z" for i in range(n)
            ],
            "seq": list(range(n)),
            "note": [f"n{i}" for i in range(n)],  # an extra column: kept in attrs
        }
    )
    path = tmp_path / "e.parquet"
    pq.write_table(table, path, row_group_size=5)

    def load(batch_rows: int) -> tuple[list, list]:
        monkeypatch.setattr(parquet_format, "BATCH_ROWS", batch_rows)
        con = toolkit.connect()
        toolkit.ingest(con, path)
        events = con.execute(
            "SELECT trace_id, event_id, ts, seq, origin, attrs FROM events ORDER BY event_id"
        ).fetchall()
        rejects = con.execute("SELECT origin, reason FROM rejects ORDER BY origin").fetchall()
        return events, rejects

    whole = load(1000)
    assert len(whole[0]) == n - 2
    assert [r[0] for r in whole[1]] == [f"{path}#12", f"{path}#4"]
    assert whole[0][0][4:] == (f"{path}#1", '{"note":"n0"}')
    for batch_rows in (1, 4, 7):
        assert load(batch_rows) == whole
