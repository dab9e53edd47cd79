"""Hostile input: one literal regression test per defect class of issue 11.

The rule (see :mod:`toolkit.ingest`): a record that cannot be converted is a reject with file,
line or item, and reason; a file that cannot be read at all is an ``IngestError`` (a
``ValueError``) naming the file; nothing else escapes; nothing reaches SQL as text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import toolkit
from tests.ingest.fuzzing import LITERAL_SEEDS, ROOT
from toolkit.ingest import IngestError

SAMPLES = ROOT / "data" / "samples"


def _event(i: int, **extra: object) -> dict:
    return {"specversion": "1.0", "id": f"e{i}", "source": "s", "type": "t"} | extra


def _jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _q(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


# --- 1. no identifier, path or value from data reaches SQL as text --------------------------

INJECTIONS = [
    "it's",
    'say "hi"',
    "x', (SELECT content FROM read_text('/etc/hostname'))) --",
    "a\"); COPY (SELECT 42) TO '{out}' (FORMAT csv); --",
    "'); COPY (SELECT 42) TO '{out}'; SELECT ('",
    "file_row_number",
    "_row",
    "record_key",
    "c0",
    "",
]


@pytest.mark.parametrize("name", INJECTIONS)
def test_parquet_column_names_never_reach_sql(con, tmp_path, name):
    out = tmp_path / "pwned.csv"
    name = name.replace("{out}", str(out))
    table = pa.table({"trace_id": ["t"], "event_id": ["e"], "type": ["x"], name: ["v"]})
    pq.write_table(table, tmp_path / "e.parquet")
    result = toolkit.ingest(con, tmp_path / "e.parquet")
    assert list(result["status"]) == ["loaded"]
    assert _q(con, "SELECT attrs FROM events") == [
        (json.dumps({name: "v"}, separators=(",", ":")),)
    ]
    assert not out.exists()


def test_parquet_canonical_columns_of_the_wrong_type_are_rejected_row_by_row(con, tmp_path):
    table = pa.table(
        {
            "trace_id": ["t", "t", "t", None],
            "event_id": ["a", "b", "c", "d"],
            "type": ["x"] * 4,
            "ts": ["2026-03-02T09:00:00Z", "not a time", "2026-02-30T00:00:00Z", None],
            "seq": ["1", "2", "x", "4"],
            "attrs": ['{"k":1}', "{bad json", None, None],
        }
    )
    pq.write_table(table, tmp_path / "e.parquet")
    result = toolkit.ingest(con, tmp_path / "e.parquet")
    assert (result.loc[0, "rows"], result.loc[0, "rejected"]) == (1, 3)
    assert _q(con, "SELECT origin, reason FROM rejects ORDER BY origin") == [
        (f"{tmp_path / 'e.parquet'}#2", "ts is not a TIMESTAMPTZ: not a time"),
        (f"{tmp_path / 'e.parquet'}#3", "ts is not a TIMESTAMPTZ: 2026-02-30T00:00:00Z"),
        (f"{tmp_path / 'e.parquet'}#4", "missing required value: trace_id"),
    ]


def test_parquet_integer_ts_is_one_reject_per_row_not_a_raw_error(con, tmp_path):
    table = pa.table({"trace_id": ["t", "t"], "event_id": ["a", "b"], "type": ["x", "x"]})
    pq.write_table(
        table.append_column("ts", pa.array([1, None], pa.int64())), tmp_path / "e.parquet"
    )
    result = toolkit.ingest(con, tmp_path / "e.parquet")
    assert (result.loc[0, "rows"], result.loc[0, "rejected"]) == (1, 1)
    assert _q(con, "SELECT reason FROM rejects") == [("ts is not a TIMESTAMPTZ: 1",)]


def test_truncated_parquet_is_an_ingest_error_naming_the_file(con, tmp_path):
    table = pa.table(
        {"trace_id": ["t"] * 100, "event_id": [str(i) for i in range(100)], "type": ["x"] * 100}
    )
    pq.write_table(table, tmp_path / "e.parquet")
    data = (tmp_path / "e.parquet").read_bytes()
    (tmp_path / "e.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match=r"e\.parquet: not a readable Parquet file") as e:
        toolkit.ingest(con, tmp_path / "e.parquet", "parquet")
    assert isinstance(e.value, ValueError)
    assert _q(con, "SELECT count(*) FROM events") == [(0,)]


def test_malformed_json_column_in_parquet_is_a_reject_not_a_fatal_error(con, tmp_path):
    # DuckDB trusts an arrow.json value to be JSON; a malformed one used to invalidate the
    # connection for good ("database has been invalidated").
    attrs = pa.array(['{"k": 1}', '{"reason"B"x"}'], pa.json_())
    table = pa.table({"trace_id": ["t", "t"], "event_id": ["a", "b"], "type": ["x", "x"], "attrs": attrs})  # fmt: skip
    pq.write_table(table, tmp_path / "e.parquet", compression="none")
    result = toolkit.ingest(con, tmp_path / "e.parquet")
    assert (result.loc[0, "rows"], result.loc[0, "rejected"]) == (1, 1)
    assert _q(con, "SELECT reason FROM rejects") == [('attrs is not a JSON: {"reason"B"x"}',)]


# --- 2. impossible CloudEvents times: one reject each ------------------------------------------

IMPOSSIBLE = [
    "2026-02-30T09:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-01-01T23:59:60Z",
    "0000-01-01T00:00:00Z",
]


@pytest.mark.parametrize("field", ["time", "endtime"])
@pytest.mark.parametrize("value", IMPOSSIBLE)
def test_impossible_cloudevents_time_is_one_reject(con, tmp_path, field, value):
    path = _jsonl(tmp_path / "e.jsonl", [_event(1), _event(2, **{field: value}), _event(3)])
    result = toolkit.ingest(con, path)
    assert (result.loc[0, "rows"], result.loc[0, "rejected"]) == (2, 1)
    assert _q(con, "SELECT origin, reason FROM rejects") == [
        (f"{path}:2", f"{field} is not a valid date and time: {value}")
    ]


# --- 3. file names are never glob patterns -----------------------------------------------------


@pytest.mark.parametrize("name", ["e[1].jsonl", "*.jsonl", "e?.jsonl", "{e1,e2}.jsonl"])
def test_file_names_are_not_glob_patterns(con, tmp_path, name):
    _jsonl(tmp_path / "e1.jsonl", [_event(1)])
    _jsonl(tmp_path / "e2.jsonl", [_event(2)])
    path = _jsonl(tmp_path / name, [_event(9)])
    result = toolkit.ingest(con, path)
    assert list(result["path"]) == [str(path)]
    assert _q(con, "SELECT event_id, origin FROM events") == [("e9", f"{path}:1")]


@pytest.mark.parametrize(
    ("fmt", "name", "text"), [s for s in LITERAL_SEEDS if s[0] in ("otlp", "openinference")]
)
def test_document_readers_read_the_named_file_only(con, tmp_path, fmt, name, text):
    (tmp_path / "a1.json").write_text(text)
    (tmp_path / "a[1].json").write_text(text.replace("svc", "other").replace("hello", "other"))
    toolkit.ingest(con, tmp_path / "a[1].json", fmt)
    origins = {o for (o,) in _q(con, "SELECT DISTINCT split_part(origin, '#', 1) FROM events")}
    assert {o.split(":")[0] for o in origins} == {str(tmp_path / "a[1].json")}


def test_export_parquet_to_a_path_with_glob_characters(con, tmp_path):
    toolkit.ingest(con, SAMPLES / "support_desk.jsonl")
    n = toolkit.export_parquet(con, tmp_path / "out[1]*.parquet")
    assert (tmp_path / "out[1]*.parquet").exists()
    fresh = toolkit.connect()
    assert toolkit.ingest(fresh, tmp_path / "out[1]*.parquet").loc[0, "rows"] == n


# --- 4. BOM, blank lines before a document, CRLF -----------------------------------------------


def _every_seed() -> list[tuple[str, Path | None, str | None]]:
    out: list[tuple[str, Path | None, str | None]] = [
        (toolkit.detect_format(f) or "", f, None) for f in sorted(SAMPLES.iterdir())
    ]
    return out + [(fmt, None, text) for fmt, _, text in LITERAL_SEEDS]


@pytest.mark.parametrize("change", ["bom", "blank_lines", "crlf"])
@pytest.mark.parametrize(("fmt", "source", "text"), _every_seed())
def test_bom_blank_lines_and_crlf_change_nothing(tmp_path, change, fmt, source, text):
    data = source.read_bytes() if source else (text or "").encode()
    plain, changed = tmp_path / "plain" / "f.json", tmp_path / "changed" / "f.json"
    plain.parent.mkdir(), changed.parent.mkdir()
    plain.write_bytes(data)
    changed.write_bytes(
        {"bom": b"\xef\xbb\xbf" + data, "blank_lines": b"\n\n \r\n" + data,
         "crlf": data.replace(b"\n", b"\r\n")}[change]
    )  # fmt: skip
    counts = []
    for path in (plain, changed):
        con = toolkit.connect()
        result = toolkit.ingest(con, path)
        assert list(result["format"]) == [fmt]
        counts.append((result.loc[0, "rows"], result.loc[0, "rejected"]))
    assert counts[0] == counts[1] and result.loc[0, "status"] == "loaded"


# --- 5. unexpected JSON types in the Python-parsed readers: one reject each --------------------

_JAEGER_SPAN = {"traceID": "t1", "spanID": "s1", "operationName": "op", "startTime": 1, "process": {"serviceName": "svc"}}  # fmt: skip
_ZIPKIN_SPAN = {"traceId": "t1", "id": "a", "timestamp": 1, "localEndpoint": {"serviceName": "svc"}}  # fmt: skip


def _jaeger(bad: dict) -> str:
    return json.dumps({"data": [{"traceID": "t1", "spans": [_JAEGER_SPAN, _JAEGER_SPAN | {"spanID": "s2"} | bad]}]})  # fmt: skip


def _zipkin(bad: dict) -> str:
    return json.dumps([_ZIPKIN_SPAN, _ZIPKIN_SPAN | {"id": "b"} | bad])


def _atif(bad: dict) -> str:
    good = {"step_id": 1, "source": "user", "message": "hi"}
    return json.dumps({"schema_version": "ATIF-v1.4", "session_id": "s", "agent": {"name": "a"},
                       "steps": [good, good | {"step_id": 2} | bad]})  # fmt: skip


def _tau(bad: dict) -> str:
    run = json.loads(dict(LITERAL_SEEDS_BY_NAME)["tau.json"])[0]
    run["traj"].append({"role": "assistant", "content": "x"} | bad)
    return json.dumps([run])


def _whowhen(bad: dict) -> str:
    return json.dumps({"history": [{"role": "human", "content": "q"}, {"role": "a", "content": "x"} | bad],
                       "question": "q", "mistake_agent": "a", "mistake_step": "1"})  # fmt: skip


def _agentrx(bad: dict) -> str:
    return json.dumps([{"role": "human", "content": "q"}, {"role": "Orchestrator (-> WebSurfer)", "content": "x"} | bad])  # fmt: skip


LITERAL_SEEDS_BY_NAME = [(name, text) for _, name, text in LITERAL_SEEDS]
WRONG_TYPES = [
    ("jaeger", _jaeger, {"traceID": ["a"]}),
    ("jaeger", _jaeger, {"spanID": {"a": 1}}),
    ("jaeger", _jaeger, {"processID": ["p"]}),
    ("jaeger", _jaeger, {"startTime": 10**30}),
    ("jaeger", _jaeger, {"startTime": 1e308}),
    ("jaeger", _jaeger, {"duration": 10**30}),
    ("jaeger", _jaeger, {"tags": "x" * 2000}),
    ("jaeger", _jaeger, {"references": [{"traceID": [], "spanID": "x"}]}),
    ("zipkin", _zipkin, {"id": ["b"]}),
    ("zipkin", _zipkin, {"timestamp": 10**30}),
    ("zipkin", _zipkin, {"annotations": "x" * 2000}),
    ("zipkin", _zipkin, {"tags": "error"}),
    ("atif", _atif, {"tool_calls": "x" * 20000}),
    ("atif", _atif, {"source": ["user"]}),
    ("atif", _atif, {"observation": "text"}),
    ("atif", _atif, {"tool_calls": [{"tool_call_id": ["c"], "function_name": "f"}]}),
    ("tau_bench", _tau, {"tool_calls": "call"}),
    ("tau_bench", _tau, {"role": "tool", "tool_call_id": {"a": 1}}),
    ("tau_bench", _tau, {"tool_calls": [{"function": "f"}]}),
    ("who_and_when", _whowhen, {"role": 5, "name": ["x"]}),
    ("agentrx", _agentrx, {"role": 7}),
]


@pytest.mark.parametrize(("fmt", "make", "bad"), WRONG_TYPES)
def test_a_value_of_the_wrong_type_is_one_reject(con, tmp_path, fmt, make, bad):
    path = tmp_path / "f.json"
    path.write_text(make(bad))
    result = toolkit.ingest(con, path, fmt)
    assert result.loc[0, "rejected"] == 1, _q(con, "SELECT * FROM rejects")
    assert result.loc[0, "rows"] >= 1
    assert _q(con, "SELECT count(*) < 50 FROM events") == [(True,)]  # no string iterated
    [(origin,)] = _q(con, "SELECT origin FROM rejects")
    assert origin.startswith(str(path))


def test_lone_surrogates_become_replacement_characters(con, tmp_path):
    path = tmp_path / "f.json"
    path.write_text(_whowhen({"content": "bad \\ud800 half"}).replace("\\\\ud800", "\\ud800"))
    toolkit.ingest(con, path, "who_and_when")
    assert _q(con, "SELECT content FROM events WHERE seq = 1") == [("bad \ufffd half",)]


def test_mast_record_of_the_wrong_shape_is_one_reject(con, tmp_path):
    path = tmp_path / "m.json"
    good = json.loads((ROOT / "tests" / "fixtures" / "mast" / "mad_full_sample.json").read_text())
    path.write_text(json.dumps(good))
    before = toolkit.ingest(con, path, "mast").loc[0, "rejected"]  # the sample has bad records
    odd = [good[0] | {"mas_name": ["x"]}, good[0] | {"trace": {"trajectory": "\ud800"}}]
    path.write_text(json.dumps([*good, *odd]))
    result = toolkit.ingest(toolkit.connect(), path, "mast")
    assert result.loc[0, "rejected"] == before + 1 and result.loc[0, "rows"] > 0


# --- 6. deep nesting: a reject or a clear error, never RecursionError --------------------------


def _deep(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


@pytest.mark.parametrize("levels", [300, 1100, 20000])
@pytest.mark.parametrize(
    ("fmt", "make"),
    [("jaeger", lambda d: _jaeger({"tags": []}).replace('"tags": []', '"tags": [' + d + "]")),
     ("zipkin", lambda d: _zipkin({}).replace('"id": "b"', '"id": "b", "x": ' + d)),
     ("atif", lambda d: _atif({}).replace('"step_id": 2', '"step_id": 2, "extra": ' + d)),
     ("who_and_when", lambda d: _whowhen({}).replace('"content": "x"', '"content": ' + d)),
     ("agentrx", lambda d: _agentrx({}).replace('"content": "x"', '"content": ' + d)),
     ("tau_bench", lambda d: _tau({}).replace('"content": "x"', '"content": ' + d)),
     ("otlp", lambda d: dict(LITERAL_SEEDS_BY_NAME)["request.json"].replace('"name": "tool"', '"name": "tool", "x": ' + d)),
     ("otel_sdk", lambda d: "[" + json.dumps(json.loads(dict(LITERAL_SEEDS_BY_NAME)["sdk.jsonl"].split("\n")[0]) | {"x": "D"}).replace('"D"', d) + "]"),
     ("openinference", lambda d: dict(LITERAL_SEEDS_BY_NAME)["oi.json"].replace('"events": []', '"events": ' + d, 1))],
)  # fmt: skip
def test_deep_nesting_is_a_reject_or_loads(con, tmp_path, fmt, make, levels):
    path = tmp_path / "f.json"
    path.write_text(make(_deep(levels)))
    result = toolkit.ingest(con, path, fmt)
    assert result.loc[0, "status"] in ("loaded", "rejected")
    if fmt in ("jaeger", "zipkin", "atif", "who_and_when", "agentrx", "tau_bench"):
        assert result.loc[0, "rows"] >= 1 or levels > 900  # one record rejected, not the file


# --- 9. JSON Lines split on \n only -------------------------------------------------------------


def test_u2028_inside_a_json_string_does_not_split_a_record(con, tmp_path):
    spans = [_JAEGER_SPAN | {"spanID": f"s{i}", "tags": [{"key": "k", "value": "a\u2028b"}]} for i in range(3)]  # fmt: skip
    path = tmp_path / "j.jsonl"
    path.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in spans))
    result = toolkit.ingest(con, path, "jaeger")
    assert (result.loc[0, "rows"], result.loc[0, "rejected"]) == (3, 0)
    assert [o for (o,) in _q(con, "SELECT origin FROM events ORDER BY origin")] == [f"{path}:{n}" for n in (1, 2, 3)]  # fmt: skip


# --- 10. OTLP documents, malformed items, null, empty; Jaeger broken documents; duplicate keys --


def test_otlp_after_blank_lines_loads(con, tmp_path):
    path = tmp_path / "r.json"
    path.write_text("\n\n\n" + dict(LITERAL_SEEDS_BY_NAME)["request.json"])
    assert toolkit.ingest(con, path).loc[0, "rows"] == 2


def test_malformed_otlp_items_are_rejects(con, tmp_path):
    request = json.loads(dict(LITERAL_SEEDS_BY_NAME)["request.json"])
    request["resourceSpans"] += [1, {"scopeSpans": "x"}, {"scopeSpans": [7, {"spans": {}}]}]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(request))
    result = toolkit.ingest(con, path, "otlp")
    assert (result.loc[0, "rows"], result.loc[0, "rejected"]) == (2, 4)
    assert sorted(r for (r,) in _q(con, "SELECT reason FROM rejects")) == [
        "resourceSpans[1] is not an object but number",
        "resourceSpans[2] .scopeSpans is not a list but string",
        "resourceSpans[3].scopeSpans[0] is not an object but number",
        "resourceSpans[3].scopeSpans[1] .spans is not a list but object",
    ]


@pytest.mark.parametrize("fmt", ["otlp", "otel_sdk", "openinference", "jaeger", "zipkin", "atif", "tau_bench", "who_and_when", "agentrx", "mast", "langfuse", "cloudevents"])  # fmt: skip
def test_null_is_a_reject_and_an_empty_file_is_empty(con, tmp_path, fmt):
    (tmp_path / "null.json").write_text("null")
    assert list(toolkit.ingest(con, tmp_path / "null.json", fmt)["status"]) == ["rejected"]
    (tmp_path / "empty.json").write_text("")
    assert list(toolkit.ingest(con, tmp_path / "empty.json", fmt)["status"]) == ["empty"]


def test_broken_pretty_printed_jaeger_document_is_one_reject(con, tmp_path):
    doc = json.dumps({"data": [{"traceID": "t", "spans": [_JAEGER_SPAN] * 20000}]}, indent=2)
    path = tmp_path / "j.json"
    path.write_text(doc[:-5])
    result = toolkit.ingest(con, path, "jaeger")  # not one reject per line of the document
    assert (result.loc[0, "status"], result.loc[0, "rejected"]) == ("rejected", 1)


def test_duplicate_keys_keep_the_first_value_in_sql_and_python_readers(con, tmp_path):
    ce = tmp_path / "c.jsonl"
    ce.write_text('{"specversion":"1.0","id":"first","id":"second","source":"s","type":"t"}\n')
    jaeger = tmp_path / "j.json"
    jaeger.write_text(json.dumps([_JAEGER_SPAN]).replace('"spanID": "s1"', '"spanID": "first", "spanID": "second"'))  # fmt: skip
    toolkit.ingest(con, [ce, jaeger])
    assert sorted(e for (e,) in _q(con, "SELECT event_id FROM events")) == ["first", "first"]


# --- 11. paths: a clear outcome for every file, never silence ---------------------------------


def test_dangling_symlink_fifo_and_device(con, tmp_path):
    (tmp_path / "gone.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    os.mkfifo(tmp_path / "pipe.jsonl")
    _jsonl(tmp_path / "good.jsonl", [_event(1)])
    for path, problem in [
        (tmp_path / "gone.jsonl", "dangling symbolic link"),
        (tmp_path / "pipe.jsonl", "not a regular file but a FIFO"),
        (Path("/dev/null"), "not a regular file but a character device"),
    ]:
        with pytest.raises(IngestError, match=problem) as e:
            toolkit.ingest(con, path, "cloudevents")
        assert str(e.value).startswith(str(path))
    result = toolkit.ingest(con, tmp_path)  # the folder: one row per entry, the rest loads
    assert sorted(zip(result["path"].str.rsplit("/", n=1).str[-1], result["status"], strict=True)) == [
        ("gone.jsonl", "error"), ("good.jsonl", "loaded"), ("pipe.jsonl", "error")]  # fmt: skip


def test_a_path_naming_nothing_is_an_ingest_error_and_a_file_not_found_error(con, tmp_path):
    good = _jsonl(tmp_path / "good.jsonl", [_event(1)])
    with pytest.raises(IngestError, match=r"no such file.*: .*missing\.jsonl") as e:
        toolkit.ingest(con, [good, tmp_path / "missing.jsonl"])
    assert isinstance(e.value, FileNotFoundError)
    assert _q(con, "SELECT count(*) FROM events") == [(0,)]  # checked before anything loads


def test_a_named_file_that_cannot_be_read_does_not_lose_the_other_results(con, tmp_path):
    good = _jsonl(tmp_path / "good.jsonl", [_event(1)])
    os.mkfifo(tmp_path / "pipe.jsonl")
    with pytest.raises(IngestError) as e:
        toolkit.ingest(con, [tmp_path / "pipe.jsonl", good], "cloudevents")
    assert list(e.value.results["status"]) == ["error", "loaded"]  # type: ignore[attr-defined]
    assert _q(con, "SELECT count(*) FROM events") == [(1,)]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_and_folder_are_rows_not_an_abort(con, tmp_path):
    _jsonl(tmp_path / "a.jsonl", [_event(1)])
    _jsonl(tmp_path / "b.jsonl", [_event(2)]).chmod(0)
    (tmp_path / "sub").mkdir()
    _jsonl(tmp_path / "sub" / "c.jsonl", [_event(3)])
    (tmp_path / "sub").chmod(0)
    try:
        result = toolkit.ingest(con, tmp_path)
    finally:
        (tmp_path / "sub").chmod(0o755)
    assert sorted(zip(result["path"].str.rsplit("/", n=1).str[-1], result["status"], strict=True)) == [
        ("a.jsonl", "loaded"), ("b.jsonl", "error"), ("sub", "error")]  # fmt: skip


def test_a_reader_bug_is_an_ingest_error_saying_so(con, tmp_path, monkeypatch):
    import sys

    from toolkit.ingest.base import Format
    from toolkit.ingest.cloudevents import sniff

    def broken(con, path):
        raise TypeError("boom")

    package = sys.modules["toolkit.ingest"]
    monkeypatch.setattr(package, "_formats_by_name", lambda: {"cloudevents": Format("cloudevents", sniff, broken)})  # fmt: skip
    path = _jsonl(tmp_path / "e.jsonl", [_event(1)])
    with pytest.raises(
        IngestError, match=r"reader failed unexpectedly \(TypeError: boom\); this is a bug"
    ):
        toolkit.ingest(con, path, "cloudevents")


# --- 12. streams of concatenated documents; never "loaded" when nothing was -------------------


def test_console_span_exporter_output_is_a_stream_of_spans(con, tmp_path):
    path = tmp_path / "console.txt"
    path.write_text(
        dict(LITERAL_SEEDS_BY_NAME)["console.txt"].replace('"0xeee19b7ec3c1b174"', '"0x1"', 1)
    )
    result = toolkit.ingest(con, path)
    assert (result.loc[0, "format"], result.loc[0, "rows"], result.loc[0, "rejected"]) == (
        "otel_sdk",
        2,
        0,
    )
    first = 1 + dict(LITERAL_SEEDS_BY_NAME)["console.txt"].count("\n") // 2 + 1
    origins = sorted(
        _q(con, "SELECT origin FROM events"), key=lambda o: int(o[0].rsplit(":", 1)[1])
    )
    assert [o for (o,) in origins] == [f"{path}:1", f"{path}:{first}"]


def test_appended_message_to_json_requests_are_a_stream(con, tmp_path):
    path = tmp_path / "requests.json"
    one = dict(LITERAL_SEEDS_BY_NAME)["request.json"]
    path.write_text(one + "\n" + one.replace("eee19b7ec3c1b17", "fff19b7ec3c1b17") + "\n{ broken\n")
    result = toolkit.ingest(con, path)
    assert (result.loc[0, "rows"], result.loc[0, "rejected"]) == (4, 1)
    second = one.count("\n") + 2
    assert {o for (o,) in _q(con, "SELECT origin FROM events")} == {f"{path}:1", f"{path}:{second}"}


def test_status_says_what_happened(con, tmp_path):
    rejected = tmp_path / "r.jsonl"
    rejected.write_text('{"specversion": "1.0"}\n')
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n\n")
    result = toolkit.ingest(con, [rejected, empty], "cloudevents")
    assert list(result["status"]) == ["rejected", "empty"]


# --- found by the long campaign -----------------------------------------------------------------


def test_invalid_json_whose_error_message_cuts_a_character_is_one_reject(con, tmp_path):
    # DuckDB quotes the start of the input in its error, cutting "é" (2 bytes) in two.
    path = tmp_path / "spans.json"
    path.write_text(
        '[{"context": {"span_id": "x"}, "span_kind": "LLM", "name": "' + "é" * 60 + "x,]"
    )
    result = toolkit.ingest(con, path, "openinference")
    assert (result.loc[0, "status"], result.loc[0, "rejected"]) == ("rejected", 1)


def test_parquet_with_ten_or_more_extra_columns(con, tmp_path):
    # $n1 is a prefix of $n10: the parameters bound must be exactly the ones named.
    columns = {"trace_id": ["t"], "event_id": ["e"], "type": ["x"]}
    columns |= {f"extra{i}": [str(i)] for i in range(12)}
    pq.write_table(pa.table(columns), tmp_path / "e.parquet")
    assert toolkit.ingest(con, tmp_path / "e.parquet").loc[0, "rows"] == 1
