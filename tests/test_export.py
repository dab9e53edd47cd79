"""Process-mining exports: the PM4Py frame, XES and OCEL 2.0 (JSON and SQLite).

Checked against the standards themselves where they can be shipped (the OCEL 2.0 JSON schema,
tests/fixtures/ocel/), against the XES XSD's content model where the XSD cannot (IEEE
copyright: the file is parsed back and its structure and value types checked), and against
PM4Py when an interpreter with PM4Py is at hand (PM4Py is AGPL: never a dependency; the test
runs it in a separate process and skips without it).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime
from importlib.util import find_spec
from pathlib import Path

import pandas as pd
import pytest

import toolkit
from tests.conftest import DATA, FIXTURES
from toolkit.cli import main
from toolkit.export.frame import PM4PY_COLUMNS
from toolkit.export.log import count_events, json_safe, xml_safe

SCHEMA = FIXTURES / "ocel" / "ocel20-schema-json.json"
NS = "{http://www.xes-standard.org/}"
T0 = datetime.fromisoformat("2026-01-01T00:00:00+00:00")


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _event(trace: str, i: int, type_: str, source: str, **more) -> dict:
    return {"specversion": "1.0", "id": f"{trace}-{i}", "traceid": trace, "type": type_,
            "source": source, "time": f"2026-01-01T00:00:{i:02d}.000Z", **more}  # fmt: skip


@pytest.fixture
def sim_con(con, tmp_path):
    """Simulated runs (faults included: redeliveries, late and out-of-order events)."""
    toolkit.ingest(con, toolkit.simulate(tmp_path / "sim", traces=12, seed=5)["events"])
    return con


@pytest.fixture(scope="module")
def mixed_db(tmp_path_factory):
    """Simulated runs, the bundled samples (spans, chat logs without times) and the framework
    fixtures (sessions over several traces), loaded once: the exports only read."""
    tmp = tmp_path_factory.mktemp("mixed")
    con = toolkit.connect(tmp / "mixed.duckdb")
    toolkit.ingest(con, toolkit.simulate(tmp / "sim", traces=12, seed=5)["events"])
    toolkit.ingest(con, DATA / "samples")
    toolkit.ingest(con, FIXTURES / "frameworks" / "autogen")
    con.close()
    return tmp / "mixed.duckdb"


@pytest.fixture
def mixed_con(mixed_db):
    c = toolkit.connect(mixed_db, read_only=True)
    yield c
    c.close()


# ---------------------------------------------------------------- the PM4Py frame


def test_frame_follows_pm4py_conventions(mixed_con):
    df = toolkit.to_pm4py(mixed_con)
    assert list(df.columns) == PM4PY_COLUMNS
    assert str(df["time:timestamp"].dtype).endswith("UTC]")
    assert str(df["start_timestamp"].dtype).endswith("UTC]")
    assert df["time:timestamp"].notna().all() and df["case:concept:name"].notna().all()
    assert (df["start_timestamp"] <= df["time:timestamp"]).all()
    assert (df["lifecycle:transition"] == "complete").all()
    # sorted as PM4Py's discovery sorts (by case, start, completion; stable)
    order = ["case:concept:name", "start_timestamp", "time:timestamp"]
    assert df[order].equals(df[order].sort_values(order, kind="stable"))
    assert not df.duplicated(["trace_id", "event_id"]).any()


def test_one_row_per_distinct_event_and_none_without_a_time(mixed_con):
    raw = toolkit.query(mixed_con, "SELECT count(*) AS n, count(DISTINCT (trace_id, event_id)) AS d FROM events")  # fmt: skip
    assert raw["n"][0] > raw["d"][0]  # the simulator redelivers events
    distinct, timed = count_events(mixed_con)
    assert distinct == raw["d"][0] and timed < distinct  # a chat log has no times
    assert len(toolkit.to_pm4py(mixed_con)) == timed


def test_a_redelivery_is_one_event_its_first_record(con, tmp_path):
    first = _event("t", 1, "job.started", "a")
    again = dict(first, time="2026-01-01T00:00:05.000Z")
    toolkit.ingest(
        con, _jsonl(tmp_path / "e.jsonl", [first, _event("t", 2, "job.done", "a"), again])
    )
    df = toolkit.to_pm4py(con)
    assert list(df["concept:name"]) == ["job.started", "job.done"]
    assert df["time:timestamp"].iloc[0] == T0.replace(second=1)


CASES = [  # case notion, activity, (case id, activity) of the first row of trace "t"
    ("trace", "type", ("t", "task.created")),
    ("session", "type", ("s1", "task.created")),
    ("agent", "type", ("t|planner", "task.created")),
    ("trace", "source_type", ("t", "planner:task.created")),
    ("trace", "name", ("t", "task.created")),
]  # fmt: skip


@pytest.mark.parametrize(("case", "activity", "first"), CASES)
def test_case_notions_and_activities(con, tmp_path, case, activity, first):
    records = [
        _event("t", 1, "task.created", "planner"),
        _event("t", 2, "tool.requested", "worker", target="search"),
        _event("u", 3, "task.created", "planner"),
        _event("u", 4, "task.completed", "worker"),
    ]
    toolkit.ingest(con, _jsonl(tmp_path / "e.jsonl", records))
    # one run over two traces (CloudEvents carry no session: span formats do, see mixed_con)
    con.execute("UPDATE traces SET session_id = 's1'")
    df = toolkit.to_pm4py(con, case=case, activity=activity)
    row = df[df["trace_id"] == "t"].iloc[0]
    assert (row["case:concept:name"], row["concept:name"]) == first
    cases = {"trace": 2, "session": 1, "agent": 4}
    assert df["case:concept:name"].nunique() == cases[case]


def test_a_session_case_is_the_run_the_analyses_see(mixed_con):
    cases = toolkit.to_pm4py(mixed_con, case="session")
    runs = toolkit.traces(mixed_con).set_index("trace_id")["session_id"]
    assert cases["case:concept:name"].nunique() < cases["trace_id"].nunique()  # AutoGen runs
    assert (cases["case:concept:name"] == cases["trace_id"].map(runs)).all()


@pytest.mark.parametrize("bad", [{"case": "user"}, {"activity": "content"}])
def test_unknown_case_or_activity_is_an_error(con, bad):
    with pytest.raises(ValueError, match="must be one of"):
        toolkit.to_pm4py(con, **bad)


def test_empty_database_gives_the_columns_and_no_rows(con, tmp_path):
    df = toolkit.to_pm4py(con)
    assert list(df.columns) == PM4PY_COLUMNS and df.empty
    assert toolkit.export_xes(con, tmp_path / "e.xes") == 0
    log = _check_xes(tmp_path / "e.xes")
    assert log.findall(f"{NS}trace") == []
    assert toolkit.export_ocel(con, tmp_path / "e.json") == 0
    doc = _check_ocel_json(tmp_path / "e.json")
    assert doc["events"] == [] and doc["objects"] == []
    assert toolkit.export_ocel(con, tmp_path / "e.sqlite") == 0
    assert _sqlite_counts(tmp_path / "e.sqlite")["event"] == 0


FILTERS = [{}, {"system": "sim"}, {"trace_id": "sim5-0000003"}, {"system": "nope"},
           {"start": "2026-01-01T00:00:05+00:00"}, {"end": "2026-01-01T00:00:05+00:00"}]  # fmt: skip


@pytest.mark.parametrize("filters", FILTERS, ids=str)
def test_filters_mean_what_they_mean_in_the_analyses(mixed_con, filters):
    expected = toolkit.traces(mixed_con, **filters)
    df = toolkit.to_pm4py(mixed_con, **filters)
    assert set(df["trace_id"]) <= set(expected["trace_id"])
    timed = toolkit.query(mixed_con, "SELECT DISTINCT trace_id FROM events WHERE coalesce(end_ts, ts) IS NOT NULL")  # fmt: skip
    assert set(df["trace_id"]) == set(expected["trace_id"]) & set(timed["trace_id"])


# ---------------------------------------------------------------- directly-follows vs flow_edges


def _chat_log(tmp_path: Path) -> Path:
    """Point events without causation ids: flow_edges counts consecutive pairs, as a DFG does."""
    import random

    rng = random.Random(7)
    records, n = [], 0
    for t in range(30):
        state = "ask"
        for _ in range(rng.randint(2, 9)):
            n += 1
            records.append(_event(f"c{t:02d}", n % 60, state, rng.choice(["user", "bot"]),
                                  id=f"c{t}-{n}", time=f"2026-01-01T{t:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"))  # fmt: skip
            state = rng.choice(["ask", "answer", "search", "answer", "done"])
    return _jsonl(tmp_path / "chat.jsonl", records)


def _follows(df: pd.DataFrame) -> dict[tuple[str, str], int]:
    nxt = df.groupby("case:concept:name")["concept:name"].shift(-1)
    pairs = Counter(zip(df["concept:name"][nxt.notna()], nxt[nxt.notna()], strict=True))
    return dict(pairs)


def test_directly_follows_pairs_of_the_frame_are_flow_edges_on_a_log_without_causation(
    con, tmp_path
):
    toolkit.ingest(con, _chat_log(tmp_path))
    edges = toolkit.flow_edges(con)
    assert _follows(toolkit.to_pm4py(con)) == {
        (r.parent, r.child): r.count for r in edges.itertuples()
    }


# ---------------------------------------------------------------- XES

_XES_ATTRIBUTES = {"string", "date", "int", "float", "boolean", "id", "list"}
_LONG = re.compile(r"^[+-]?\d+$")


def _check_xes(path: Path) -> ET.Element:
    """Parse ``path`` and check it against the content model of the XES XSD (IEEE 1849-2016):
    the log's children in order (extension*, global*, classifier*, attributes, trace*), the
    attributes and types each element requires, and the lexical form of typed values."""
    log = ET.parse(path).getroot()
    assert log.tag == f"{NS}log"
    assert re.fullmatch(r"\d+(\.\d+)?", log.get("xes.version", ""))  # xs:decimal
    order = ["extension", "global", "classifier", "attribute", "trace"]
    seen = 0
    for child in log:
        tag = child.tag.removeprefix(NS)
        kind = "attribute" if tag in _XES_ATTRIBUTES else tag
        assert kind in order, tag
        assert order.index(kind) >= seen, f"{tag} out of order"
        seen = order.index(kind)
        if tag == "extension":
            assert {"name", "prefix", "uri"} <= set(child.attrib)
        elif tag == "classifier":
            assert {"name", "keys"} <= set(child.attrib)
        elif tag == "global":
            assert child.get("scope") in ("trace", "event")
            for a in child:
                _check_attribute(a)
        elif kind == "attribute":
            _check_attribute(child)
        else:
            for part in child:
                if part.tag == f"{NS}event":
                    for a in part:
                        _check_attribute(a)
                else:
                    _check_attribute(part)
    return log


def _check_attribute(a: ET.Element) -> None:
    tag = a.tag.removeprefix(NS)
    assert tag in _XES_ATTRIBUTES and a.get("key") and "value" in a.attrib, ET.tostring(a)
    value = a.get("value", "")
    if tag == "date":
        assert datetime.fromisoformat(value).tzinfo is not None, value
    elif tag == "int":
        assert _LONG.match(value), value


def _xes_events(log: ET.Element) -> pd.DataFrame:
    rows = []
    for trace in log.iter(f"{NS}trace"):
        case = next(a.get("value") for a in trace if a.get("key") == "concept:name")
        for event in trace.iter(f"{NS}event"):
            row = {a.get("key"): a.get("value") for a in event}
            rows.append({"case:concept:name": case, **row})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("case", ["trace", "session", "agent"])
def test_xes_holds_the_frame(mixed_con, tmp_path, case):
    path = tmp_path / "log.xes"
    written = toolkit.export_xes(mixed_con, path, case=case)
    frame = toolkit.to_pm4py(mixed_con, case=case)
    events = _xes_events(_check_xes(path))
    assert written == len(events) == len(frame)
    assert list(events["case:concept:name"]) == list(frame["case:concept:name"])
    assert list(events["concept:name"]) == list(frame["concept:name"])
    assert list(events["event_id"]) == list(frame["event_id"])
    times = pd.to_datetime(events["time:timestamp"], format="ISO8601", utc=True)
    assert list(times) == list(frame["time:timestamp"])
    resources = events["org:resource"].where(events["org:resource"].notna(), None)
    assert list(resources) == list(frame["org:resource"].where(frame["org:resource"].notna(), None))


# No lone surrogate: the CloudEvents reader rejects one as invalid JSON and DuckDB cannot store
# one, so none reaches an export from the database; the writers' own guard is tested below.
HOSTILE = "<script>alert('x')</script> ]]> &amp; \"q\" 'a' \x00\x01\x0b\x1f tab\tnl\ncr\r end ☃ \U0001f600"


def _hostile_con(con, tmp_path) -> None:
    records = [
        _event("<t&1>", 1, "msg</string><x>", 'agent "<a>"', data=HOSTILE, target="]]>"),
        _event("<t&1>", 2, "reply", "b", data="\ufffe\uffff ok", causationid="<t&1>-1"),
    ]
    path = tmp_path / "hostile.jsonl"
    _jsonl(path, records)  # json.dumps writes the controls as \u escapes, as an LLM log holds them
    toolkit.ingest(con, path)
    assert toolkit.query(con, "SELECT count(*) AS n FROM events")["n"][0] == 2


def test_hostile_text_is_escaped_in_xes(con, tmp_path):
    _hostile_con(con, tmp_path)
    stored = toolkit.query(con, "SELECT content FROM events ORDER BY seq")["content"][0]
    toolkit.export_xes(con, tmp_path / "h.xes")
    raw = (tmp_path / "h.xes").read_bytes()
    assert b"<script>" not in raw and b"<x>" not in raw
    raw.decode("utf-8")  # valid UTF-8: no surrogate survived
    events = _xes_events(_check_xes(tmp_path / "h.xes"))
    assert events["content"][0] == xml_safe(
        stored
    )  # tab, newline, CR kept; what XML forbids: U+FFFD
    assert (
        "\t" in events["content"][0]
        and "\n" in events["content"][0]
        and "\r" in events["content"][0]
    )
    assert events["concept:name"][0] == "msg</string><x>"
    assert events["content"][1] == "\ufffd\ufffd ok"


def test_hostile_text_round_trips_in_ocel(con, tmp_path):
    _hostile_con(con, tmp_path)
    stored = toolkit.query(con, "SELECT content FROM events ORDER BY seq")["content"][0]
    toolkit.export_ocel(con, tmp_path / "h.json")
    doc = _check_ocel_json(tmp_path / "h.json")
    content = next(a["value"] for a in doc["events"][0]["attributes"] if a["name"] == "content")
    assert content == json_safe(stored)  # JSON carries every character but lone surrogates
    toolkit.export_ocel(con, tmp_path / "h.sqlite")
    db = sqlite3.connect(tmp_path / "h.sqlite")
    table = db.execute("SELECT ocel_type_map FROM event_map_type WHERE ocel_type = 'msg</string><x>'").fetchall()[0][0]  # fmt: skip
    assert db.execute(f'SELECT content FROM "event_{table}"').fetchall()[0][0] == content
    db.close()


@pytest.mark.parametrize(
    ("text", "xml", "json_"),
    [("a\x00b", "a\ufffdb", "a\x00b"), ("\ud800x", "\ufffdx", "\ufffdx"),
     ("\udfff", "\ufffd", "\ufffd"), ("\t\n\r", "\t\n\r", "\t\n\r"),
     ("\ufffe", "\ufffd", "\ufffe"), ("]]> <", "]]> <", "]]> <"), ("😀", "😀", "😀")],
)  # fmt: skip
def test_what_no_escaping_can_express_becomes_a_replacement_character(text, xml, json_):
    assert xml_safe(text) == xml and json_safe(text) == json_


def test_the_writers_survive_a_lone_surrogate():
    from toolkit.export.ocel import _dump
    from toolkit.export.xes import _attr

    assert json.loads(_dump({"v": "a\ud800"}).encode("utf-8")) == {"v": "a\ufffd"}
    event = ET.Element("event")
    _attr(event, "string", "content", "<\ud800\x00>")
    text = ET.tostring(event, encoding="unicode").encode("utf-8")
    assert ET.fromstring(text)[0].get("value") == "<\ufffd\ufffd>"


# ---------------------------------------------------------------- OCEL 2.0


def _check_ocel_json(path: Path) -> dict:
    """Validate against the published OCEL 2.0 JSON schema, then what a schema cannot say:
    unique ids, declared types and attributes, relationships to objects that exist, times."""
    jsonschema = pytest.importorskip("jsonschema")
    doc = json.loads(path.read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)
    objects = {o["id"]: o for o in doc["objects"]}
    assert len(objects) == len(doc["objects"])
    assert len({e["id"] for e in doc["events"]}) == len(doc["events"])
    declared = {t["name"]: {a["name"] for a in t["attributes"]} for t in doc["eventTypes"]}
    object_types = {t["name"]: {a["name"] for a in t["attributes"]} for t in doc["objectTypes"]}
    for e in doc["events"]:
        assert e["type"] in declared and {a["name"] for a in e["attributes"]} <= declared[e["type"]]
        assert datetime.fromisoformat(e["time"]).tzinfo is not None
        for r in e["relationships"]:
            assert r["objectId"] in objects, r
    for o in doc["objects"]:
        assert o["type"] in object_types
        assert {a["name"] for a in o["attributes"]} <= object_types[o["type"]]
        for r in o["relationships"]:
            assert r["objectId"] in objects, r
    return doc


def _sqlite_counts(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"event", "object", "event_object", "object_object", "event_map_type",
                "object_map_type"} <= tables  # fmt: skip
        for kind in ("event", "object"):
            for (m,) in db.execute(f"SELECT ocel_type_map FROM {kind}_map_type"):
                assert f"{kind}_{m}" in tables
        return {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in tables}
    finally:
        db.close()


def test_ocel_json_is_valid_and_object_centric(mixed_con, tmp_path):
    written = toolkit.export_ocel(mixed_con, tmp_path / "log.json")
    doc = _check_ocel_json(tmp_path / "log.json")
    assert written == len(doc["events"]) == len(toolkit.to_pm4py(mixed_con))
    types = Counter(o["type"] for o in doc["objects"])
    assert {"agent", "tool", "message", "trace", "session"} <= set(types)
    qualifiers = Counter(r["qualifier"] for e in doc["events"] for r in e["relationships"])
    assert {"emitted-by", "addressed-to", "carries", "part-of"} <= set(qualifiers)
    # every event is part of its trace; the traces of a session are part of it
    objects = {o["id"]: o for o in doc["objects"]}
    for e in doc["events"]:
        traces = [
            r["objectId"] for r in e["relationships"] if objects[r["objectId"]]["type"] == "trace"
        ]
        assert len(traces) == 1
    sessions = [o for o in doc["objects"] if o["type"] == "trace" and o["relationships"]]
    assert sessions and all(objects[r["objectId"]]["type"] == "session" for o in sessions for r in o["relationships"])  # fmt: skip


def test_ocel_agents_tools_and_messages_on_a_known_run(con, tmp_path):
    records = [
        _event("t", 1, "task.created", "user", target="planner"),
        _event(
            "t",
            2,
            "tool.requested",
            "planner",
            target="search",
            idempotencykey="k1",
            causationid="t-1",
        ),
        _event(
            "t",
            3,
            "tool.responded",
            "search",
            target="planner",
            idempotencykey="k1",
            causationid="t-2",
            correlationid="x",
        ),
    ]
    toolkit.ingest(con, _jsonl(tmp_path / "e.jsonl", records))
    toolkit.export_ocel(con, tmp_path / "o.json")
    doc = _check_ocel_json(tmp_path / "o.json")
    rels = {e["type"]: sorted((r["qualifier"], r["objectId"]) for r in e["relationships"]) for e in doc["events"]}  # fmt: skip
    assert rels["tool.requested"] == [
        ("addressed-to", "trace/t/agent/search"),  # search emits events: an agent of the run
        ("carries", "trace/t/message/k1"),
        ("emitted-by", "trace/t/agent/planner"),
        ("part-of", "trace/t"),
    ]
    assert ("correlated-by", "trace/t/correlation/x") in rels["tool.responded"]
    reacts = {e["type"]: {a["name"]: a["value"] for a in e["attributes"]}.get("reacts_to") for e in doc["events"]}  # fmt: skip
    assert reacts == {"task.created": None, "tool.requested": "t/t-1", "tool.responded": "t/t-2"}


def test_ocel_sqlite_holds_the_same_log_as_json(mixed_con, tmp_path):
    toolkit.export_ocel(mixed_con, tmp_path / "log.json")
    assert toolkit.export_ocel(mixed_con, tmp_path / "log.sqlite") > 0
    doc = json.loads((tmp_path / "log.json").read_text())
    counts = _sqlite_counts(tmp_path / "log.sqlite")
    assert counts["event"] == len(doc["events"]) and counts["object"] == len(doc["objects"])
    assert counts["event_object"] == sum(len(e["relationships"]) for e in doc["events"])
    assert counts["object_object"] == sum(len(o["relationships"]) for o in doc["objects"])
    db = sqlite3.connect(tmp_path / "log.sqlite")
    e2o = set(db.execute("SELECT ocel_event_id, ocel_object_id, ocel_qualifier FROM event_object"))
    db.close()
    assert e2o == {(e["id"], r["objectId"], r["qualifier"]) for e in doc["events"] for r in e["relationships"]}  # fmt: skip


def test_ocel_format_from_the_suffix_or_an_error(sim_con, tmp_path):
    with pytest.raises(ValueError, match=r"name it \.json or \.sqlite"):
        toolkit.export_ocel(sim_con, tmp_path / "log.xml")
    assert toolkit.export_ocel(sim_con, tmp_path / "log.ocel", format="json") > 0
    assert not list(tmp_path.glob("*.part"))


# ---------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def samples_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("samples") / "t.duckdb"
    con = toolkit.connect(path)
    toolkit.ingest(con, DATA / "samples")
    con.close()
    return path


@pytest.mark.parametrize(
    ("name", "args", "fmt"),
    [("log.xes", [], "xes"), ("log.json", [], "ocel-json"), ("log.sqlite", [], "ocel-sqlite"),
     ("log.out", ["--format", "xes", "--case", "session", "--activity", "source_type"], "xes")],
)  # fmt: skip
def test_cli_export_event_log(tmp_path, capsys, samples_db, name, args, fmt):
    db = samples_db
    con = toolkit.connect(db, read_only=True)
    distinct, timed = count_events(con)
    con.close()
    assert main(["export", str(tmp_path / name), "--db", str(db), *args]) == 0
    out = capsys.readouterr().out
    assert (
        f"wrote {timed} events to" in out
        and f"({fmt}; {distinct - timed} left out: no time)" in out
    )
    if fmt == "xes":
        assert len(_xes_events(_check_xes(tmp_path / name))) == timed
    elif fmt == "ocel-json":
        assert len(_check_ocel_json(tmp_path / name)["events"]) == timed


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--format", "xes", "--table", "traces"], "writes the event log, not the traces table"),
     (["--format", "csv", "--system", "sim"], "--system and --trace-id filter the event log")],
)  # fmt: skip
def test_cli_export_refuses_what_does_not_fit(tmp_path, capsys, samples_db, args, says):
    assert main(["export", str(tmp_path / "x.out"), "--db", str(samples_db), *args]) == 1
    assert says in capsys.readouterr().err


# ---------------------------------------------------------------- PM4Py itself (AGPL: optional)

_PM4PY = """
import json, sys, warnings
warnings.simplefilter("ignore")
import pandas as pd, pm4py
xes = pm4py.read_xes(sys.argv[1], show_progress_bar=False)
frame = pd.read_parquet(sys.argv[2])
dfg = lambda log: {f"{a}\\t{b}": n for (a, b), n in pm4py.discover_dfg(log)[0].items()}
ocel = pm4py.read_ocel2_json(sys.argv[3]); ocel_db = pm4py.read_ocel2_sqlite(sys.argv[4])
print(json.dumps({"xes": dfg(xes), "frame": dfg(frame), "xes_events": len(xes),
                  "variants": len(pm4py.get_variants(frame)),
                  "ocel": [len(ocel.events), len(ocel.objects), len(ocel.relations), len(ocel.o2o)],
                  "ocel_db": [len(ocel_db.events), len(ocel_db.objects), len(ocel_db.relations),
                              len(ocel_db.o2o)]}))
"""


def _pm4py_python() -> str:
    if find_spec("pm4py") is not None:
        return sys.executable
    python = os.environ.get("TOOLKIT_PM4PY_PYTHON")
    if not python:
        pytest.skip("PM4Py is not installed (AGPL, never a dependency): set TOOLKIT_PM4PY_PYTHON "
                    "to an interpreter that has pm4py and pyarrow to run this test")  # fmt: skip
    return python


@pytest.mark.parametrize("log", ["chat", "mixed"])
def test_pm4py_reads_our_files_as_we_mean_them(con, tmp_path, log):
    python = _pm4py_python()
    if log == "chat":
        toolkit.ingest(con, _chat_log(tmp_path))
    else:
        toolkit.ingest(con, toolkit.simulate(tmp_path / "sim", traces=12, seed=5)["events"])
        toolkit.ingest(con, DATA / "samples")
    frame = toolkit.to_pm4py(con)
    frame.to_parquet(tmp_path / "f.parquet")
    toolkit.export_xes(con, tmp_path / "f.xes")
    toolkit.export_ocel(con, tmp_path / "f.json")
    toolkit.export_ocel(con, tmp_path / "f.sqlite")
    done = subprocess.run([python, "-c", _PM4PY, *(str(tmp_path / f"f.{s}") for s in ("xes", "parquet", "json", "sqlite"))],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    ours = {f"{a}\t{b}": n for (a, b), n in _follows(frame).items()}
    assert got["xes"] == got["frame"] == ours
    assert got["xes_events"] == len(frame)
    assert (
        got["variants"] == frame.groupby("case:concept:name")["concept:name"].agg(tuple).nunique()
    )
    doc = json.loads((tmp_path / "f.json").read_text())
    relations = sum(len(e["relationships"]) for e in doc["events"])
    o2o = sum(len(o["relationships"]) for o in doc["objects"])
    assert (
        got["ocel"] == got["ocel_db"] == [len(doc["events"]), len(doc["objects"]), relations, o2o]
    )
    if log == "chat":  # no causation ids: PM4Py's DFG is our flow graph
        edges = toolkit.flow_edges(con)
        assert got["xes"] == {f"{r.parent}\t{r.child}": r.count for r in edges.itertuples()}
