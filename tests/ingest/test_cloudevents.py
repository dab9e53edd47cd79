"""CloudEvents JSON: the conformance samples, the mapping, rejects with file, line and reason."""

from __future__ import annotations

import json

import pytest

import toolkit
from tests.conftest import shared

CONFORMANCE = ("traces", "conformance", "format", "json")


def _tests(name: str) -> list[dict]:
    return json.loads(shared(*CONFORMANCE, name).read_text())["tests"]


def _write_line(tmp_path, record) -> str:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return str(path)


def _counts(con) -> tuple[int, int]:
    events = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    rejects = con.execute("SELECT count(*) FROM rejects").fetchall()[0][0]
    return events, rejects


def test_every_valid_conformance_event_loads(tmp_path):
    for case in _tests("valid-events.json"):
        con = toolkit.connect()
        result = toolkit.ingest(con, _write_line(tmp_path, case["event"]))
        assert result.loc[0, "format"] == "cloudevents", case["id"]
        assert _counts(con) == (1, 0), case["id"]


def test_every_invalid_conformance_event_is_rejected_with_a_reason(tmp_path):
    for case in _tests("invalid-events.json"):
        con = toolkit.connect()
        toolkit.ingest(con, _write_line(tmp_path, case["event"]), format="cloudevents")
        assert _counts(con) == (0, 1), case["id"]
        origin, reason, record = con.execute(
            "SELECT origin, reason, record FROM rejects"
        ).fetchall()[0]
        assert origin.endswith("one.jsonl:1") and reason, case["id"]
        assert json.loads(record) == case["event"]


@pytest.mark.parametrize(
    "case",
    [
        "validBatchEmpty",
        "validBatchMinimal",
        "validBatchMinimal2",
        "validBatchMinimalAndAllCore",
        "validBatchMinimalAndAllExtensionTypes",
    ],
)
def test_valid_batches_load_every_event(tmp_path, case):
    batch = next(t["batch"] for t in _tests("valid-batches.json") if t["id"] == case)
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(batch, indent=2))
    con = toolkit.connect()
    toolkit.ingest(con, path, format="cloudevents")
    assert _counts(con) == (len(batch), 0)
    origins = [r[0] for r in con.execute("SELECT origin FROM events ORDER BY seq").fetchall()]
    assert origins == [f"{path}#{i}" for i in range(1, len(batch) + 1)]


@pytest.mark.parametrize(("case", "loaded", "rejected_ids"), [
    ("invalidBatchMixedSpecVersions", ["minimal1"], ["minimal2"]),
    ("invalidBatchContainingInvalidCloudEvent", [], [None]),
    ("invalidBatchContainingNonObject", ["minimal1"], [None]),
])  # fmt: skip
def test_invalid_batches_reject_the_bad_items_and_load_the_rest(
    tmp_path, case, loaded, rejected_ids
):
    batch = next(t["batch"] for t in _tests("invalid-batches.json") if t["id"] == case)
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(batch))
    con = toolkit.connect()
    toolkit.ingest(con, path, format="cloudevents")
    assert [r[0] for r in con.execute("SELECT event_id FROM events").fetchall()] == loaded
    rejects = con.execute("SELECT record FROM rejects").fetchall()
    ids = [json.loads(r[0]).get("id") if r[0].startswith("{") else None for r in rejects]
    assert ids == rejected_ids


def test_mapping_of_attributes_and_extensions(con, tmp_path):
    record = {
        "specversion": "1.0", "id": "e2", "source": "agent/planner", "type": "plan.created",
        "time": "2026-01-01T10:00:00.123456789+01:00", "endtime": "2026-01-01T09:00:01Z",
        "traceid": "run-1", "causationid": "e1", "correlationid": "c-9", "idempotencykey": "k-1",
        "target": "worker", "status": "ok", "system": "crew", "task": "write a poem",
        "subject": "poems", "timeoutms": 500, "urgent": True, "data": {"text": "hi", "n": [1, 2]},
    }  # fmt: skip
    toolkit.ingest(con, _write_line(tmp_path, record))
    row = toolkit.query(con, "SELECT * EXCLUDE (record_key) FROM events").iloc[0].to_dict()
    assert row["trace_id"] == "run-1" and row["event_id"] == "e2" and row["parent_id"] == "e1"
    assert (row["type"], row["source"], row["target"], row["status"]) == (
        "plan.created",
        "agent/planner",
        "worker",
        "ok",
    )
    assert (row["idempotency_key"], row["correlation_id"]) == ("k-1", "c-9")
    assert row["ts"].isoformat() == "2026-01-01T09:00:00.123456+00:00"
    assert row["end_ts"].isoformat() == "2026-01-01T09:00:01+00:00"
    assert json.loads(row["content"]) == {"text": "hi", "n": [1, 2]}
    assert json.loads(row["attrs"]) == {"subject": "poems", "timeoutms": 500, "urgent": True}
    assert row["origin"].endswith("one.jsonl:1") and row["seq"] == 1
    trace = con.execute("SELECT system, task FROM traces WHERE trace_id = 'run-1'").fetchall()
    assert trace == [("crew", "write a poem")]


@pytest.mark.parametrize(("extra", "trace_id"), [
    ({"traceid": "t", "correlationid": "c"}, "t"),
    ({"correlationid": "c"}, "c"),
    ({}, "src"),
])  # fmt: skip
def test_trace_id_falls_back_to_correlation_then_source(con, tmp_path, extra, trace_id):
    record = {"specversion": "1.0", "id": "1", "source": "src", "type": "t"} | extra
    toolkit.ingest(con, _write_line(tmp_path, record))
    assert con.execute("SELECT trace_id FROM events").fetchall() == [(trace_id,)]


def test_string_data_is_content_verbatim_including_escapes(con, tmp_path):
    text = 'say "hi"\n<script>alert(1)</script> ünïcode ✓'
    toolkit.ingest(
        con,
        _write_line(
            tmp_path, {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": text}
        ),
    )
    assert con.execute("SELECT content FROM events").fetchall() == [(text,)]


def test_one_bad_line_in_the_middle_is_rejected_and_the_rest_loads(con, tmp_path):
    good = [
        {"specversion": "1.0", "id": str(i), "source": "s", "type": "t", "traceid": "x"}
        for i in range(5)
    ]
    lines = [json.dumps(r) for r in good]
    lines.insert(3, '{"specversion": "1.0", "id": "bad", "source": "s"')  # truncated JSON
    path = tmp_path / "f.jsonl"
    path.write_text("\r\n".join(lines) + "\r\n\n")
    toolkit.ingest(con, path)
    assert _counts(con) == (5, 1)
    assert con.execute("SELECT origin, reason FROM rejects").fetchall() == [
        (f"{path}:4", "not valid JSON")
    ]
    assert sorted(r[0] for r in con.execute("SELECT origin FROM events").fetchall()) == sorted(
        f"{path}:{n}" for n in (1, 2, 3, 5, 6)
    )


def test_invalid_utf8_lines_are_rejected_and_the_rest_loads(con, tmp_path):
    path = tmp_path / "f.jsonl"
    good = b'{"specversion":"1.0","id":"1","source":"s","type":"t"}\n'
    path.write_bytes(
        good
        + b'{"specversion":"1.0","id":"\xff","source":"s","type":"t"}\n'
        + good.replace(b'"1"', b'"2"')
    )
    toolkit.ingest(con, path)
    assert _counts(con) == (2, 1)
    origin, reason = con.execute("SELECT origin, reason FROM rejects").fetchall()[0]
    assert origin == f"{path}:2" and reason.startswith("not valid UTF-8")


def test_a_batch_file_that_is_not_json_is_rejected_whole(con, tmp_path):
    path = tmp_path / "b.json"
    path.write_text('[{"specversion": "1.0", "id": "1"')
    toolkit.ingest(con, path, format="cloudevents")
    assert _counts(con) == (0, 1)
    assert (
        con.execute("SELECT reason FROM rejects")
        .fetchall()[0][0]
        .startswith("file is not valid JSON")
    )


def test_large_files_are_split_in_blocks_with_the_same_result(con, tmp_path, monkeypatch):
    from toolkit.ingest import files

    lines = [
        json.dumps({"specversion": "1.0", "id": str(i), "source": "s", "type": "t"})
        for i in range(50)
    ]
    lines[20] = "not json"
    lines[30] = ""
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines))  # no final newline
    monkeypatch.setattr(files, "BLOCK_BYTES", 97)  # blocks that cut lines in the middle
    monkeypatch.setattr(files, "ROW_GROUP_ROWS", 7)  # and lines held over to the next block
    toolkit.ingest(con, path)
    assert _counts(con) == (48, 1)
    assert con.execute("SELECT origin FROM rejects").fetchall() == [(f"{path}:21",)]
    assert con.execute("SELECT max(seq) FROM events").fetchall() == [(50,)]


@pytest.mark.parametrize("block_bytes", [1, 5, 64, 1000, 1 << 20])
def test_line_blocks_give_every_line_once_whatever_the_block_size(
    con, tmp_path, block_bytes, monkeypatch
):
    """One buffer serves every read: lines held over must not change when it is refilled."""
    import random

    from toolkit.ingest import files
    from toolkit.ingest.base import create_stage

    rng = random.Random(block_bytes)
    lines = ["".join(rng.choice("ab{}\"é\r ") for _ in range(rng.choice([0, 3, 40, 300])))
             for _ in range(400)]  # fmt: skip
    lines[7] = "x" * 5000  # longer than most blocks
    encoded = [line.encode() for line in lines]
    encoded[9], lines[9] = b"\xffbad", ""  # not UTF-8: rejected, passed on empty
    path = tmp_path / "lines.jsonl"
    path.write_bytes(files.BOM + b"\n".join(encoded))  # no final newline
    monkeypatch.setattr(files, "ROW_GROUP_ROWS", 16)
    create_stage(con)
    tables = list(files.line_blocks(con, path, block_bytes))
    got = [(r["ord"], r["raw"]) for t in tables for r in t.to_pylist()]
    assert got == list(enumerate(lines, start=1))
    assert con.execute("SELECT origin FROM stage_rejects").fetchall() == [(f"{path}:10",)]


def test_progress_counts_the_bytes_of_each_block(con, tmp_path, monkeypatch, capsys):
    import importlib

    from toolkit.ingest import files

    lines = [
        json.dumps({"specversion": "1.0", "id": str(i), "source": "s", "type": "t"})
        for i in range(200)
    ]
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(files, "BLOCK_BYTES", 1000)
    monkeypatch.setattr(files, "ROW_GROUP_ROWS", 16)
    blocks: list[int] = []
    real = files.line_blocks

    def counting(con, path, block_bytes=None):
        for table in real(con, path, block_bytes):
            blocks.append(len(table))
            yield table

    monkeypatch.setattr(
        importlib.import_module("toolkit.ingest.cloudevents"), "line_blocks", counting
    )
    toolkit.ingest(con, path, progress=True)
    assert len(blocks) > 5 and sum(blocks) == 200  # read a block at a time
    # whole row groups (a part-filled one is reworked by the next append), the last aside
    assert all(n % 16 == 0 for n in blocks[:-1]) and blocks[-1] == 200 % 16
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert any("100%" in line for line in bar)
    size = path.stat().st_size / 1000
    assert any(f"{size:.1f}k/{size:.1f}k" in line for line in bar), bar[-1]
