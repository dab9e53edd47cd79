"""toolkit.ingest: detection, idempotency, redeliveries kept, atomic files, folders and globs."""

from __future__ import annotations

import json

import pytest

import toolkit
from toolkit.ingest import base


def _event(i, **extra) -> dict:
    return {
        "specversion": "1.0",
        "id": f"e{i}",
        "source": "s",
        "type": "t",
        "traceid": "run",
    } | extra


def _write(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _n(con, table="events") -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def test_reingesting_the_same_file_adds_nothing(con, tmp_path):
    path = tmp_path / "a.jsonl"
    _write(path, [_event(i) for i in range(3)] + [{"broken": True}])
    first = toolkit.ingest(con, path)
    second = toolkit.ingest(con, path)
    assert (first.loc[0, "status"], first.loc[0, "rows"], first.loc[0, "rejected"]) == (
        "loaded",
        3,
        1,
    )
    assert (second.loc[0, "status"], second.loc[0, "rows"]) == ("skipped", 0)
    assert (_n(con), _n(con, "rejects"), _n(con, "ingests")) == (3, 1, 1)


def test_the_same_records_in_another_file_add_nothing(con, tmp_path):
    _write(tmp_path / "a.jsonl", [_event(i) for i in range(3)])
    _write(tmp_path / "b.jsonl", [_event(i) for i in (2, 1, 0, 3)])  # other order, one new
    toolkit.ingest(con, tmp_path / "a.jsonl")
    result = toolkit.ingest(con, tmp_path / "b.jsonl")
    assert result.loc[0, "rows"] == 1 and _n(con) == 4


def test_a_redelivery_recorded_in_the_trace_is_kept(con, tmp_path):
    path = tmp_path / "a.jsonl"
    _write(path, [_event(1), _event(2), _event(2, deliverycount=2)])
    toolkit.ingest(con, path)
    assert con.execute(
        "SELECT event_id, count(*) FROM events GROUP BY 1 ORDER BY 1"
    ).fetchall() == [("e1", 1), ("e2", 2)]
    (tmp_path / "copy.jsonl").write_text(path.read_text() + "\n")  # same records, other bytes
    assert toolkit.ingest(con, tmp_path / "copy.jsonl").loc[0, "rows"] == 0
    assert _n(con) == 3


def test_same_id_from_another_source_is_another_event(con, tmp_path):
    _write(tmp_path / "a.jsonl", [_event(1), _event(1, source="other")])
    toolkit.ingest(con, tmp_path / "a.jsonl")
    assert _n(con) == 2


def test_a_failure_mid_file_leaves_nothing_behind(con, tmp_path, monkeypatch):
    path = tmp_path / "a.jsonl"
    _write(path, [_event(i) for i in range(3)])

    def broken(con):  # fails after the events were inserted
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(base, "merge_annotations", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        toolkit.ingest(con, path)
    assert (_n(con), _n(con, "traces"), _n(con, "ingests"), _n(con, "rejects")) == (0, 0, 0, 0)
    monkeypatch.undo()
    assert toolkit.ingest(con, path).loc[0, "rows"] == 3


def test_unknown_format_of_a_named_file_is_a_clear_error(con, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(
        ValueError, match=r"notes.txt: cannot detect the format.*known formats: .*cloudevents"
    ):
        toolkit.ingest(con, path)
    with pytest.raises(ValueError, match="unknown format 'nope'"):
        toolkit.ingest(con, path, format="nope")


def test_folders_and_globs_skip_unknown_files_and_hidden_ones(con, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    _write(tmp_path / "sub" / "a.jsonl", [_event(1)])
    _write(tmp_path / ".hidden" / "b.jsonl", [_event(2)])
    (tmp_path / "README.md").write_text("# notes\n")
    result = toolkit.ingest(con, tmp_path)
    assert sorted(
        zip(result["status"], result["path"].str.rsplit("/", n=1).str[-1], strict=True)
    ) == [("loaded", "a.jsonl"), ("unknown", "README.md")]
    assert toolkit.ingest(con, str(tmp_path / "**" / "*.jsonl")).loc[0, "status"] == "skipped"
    with pytest.raises(FileNotFoundError):
        toolkit.ingest(con, tmp_path / "nothing-*.jsonl")


def test_result_has_the_documented_columns_even_when_empty(con, tmp_path):
    result = toolkit.ingest(con, tmp_path)
    assert list(result.columns) == [
        "path",
        "format",
        "status",
        "rows",
        "rejected",
        "seconds",
        "error",
    ]
    assert result.empty


def test_detect_format(tmp_path):
    _write(tmp_path / "a.jsonl", [_event(1)])
    assert toolkit.detect_format(tmp_path / "a.jsonl") == "cloudevents"
    (tmp_path / "x.json").write_text('{"hello": 1}')
    assert toolkit.detect_format(tmp_path / "x.json") is None


def test_loaded_con_fixture_holds_the_bundled_samples(loaded_con):
    assert _n(loaded_con) > 0 and _n(loaded_con, "rejects") == 3
