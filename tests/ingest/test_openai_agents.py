"""OpenAI Agents SDK native trace export: real fixtures against their raw records, the mapping on
literal items, rejects, idempotency and the exporter's ``{"data": [...]}`` payload."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import toolkit
from toolkit.ingest import detect_format, ingest_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "frameworks" / "openai_agents"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())["files"]
SCENARIOS = ["healthy", "tool_retry_recovered", "tool_error_fatal", "max_turns_exceeded"]


def _items(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, items: list) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


def _agents_by_trace(con) -> dict[str, list[str]]:
    rows = con.execute("""
        SELECT trace_id, list(DISTINCT source ORDER BY source) FROM events
        WHERE source IS NOT NULL AND source NOT LIKE 'fixturegen-%' GROUP BY trace_id
    """).fetchall()
    return dict(rows)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_real_export_matches_its_raw_records(con, scenario):
    path = FIXTURES / f"{scenario}.native.jsonl"
    items = _items(path)
    spans = [i for i in items if i["object"] == "trace.span"]
    records = {i["id"]: i for i in items if i["object"] == "trace"}
    expected = EXPECTED[path.name]
    assert detect_format(path) == "openai_agents"
    result = toolkit.ingest(con, path)
    assert result[["format", "rows", "rejected"]].values.tolist() == [
        ["openai_agents", len(spans), 0]
    ]
    assert con.execute("""
        SELECT count(*), count(*) FILTER (status = 'error'), count(parent_span_id) FROM events
    """).fetchall() == [
        (
            len(spans),
            sum(s["error"] is not None for s in spans),
            sum(s["parent_id"] is not None for s in spans),
        )
    ]
    assert len(spans) == expected["spans"]
    runs = {r["trace_id"]: r for r in expected["runs"]}
    assert _agents_by_trace(con) == {t: r["agents"] for t, r in runs.items()}
    traces = con.execute(
        "SELECT trace_id, system, task, outcome, session_id FROM traces ORDER BY trace_id"
    ).fetchall()
    assert traces == [
        (t, records[t]["workflow_name"], None, runs[t]["outcome"], records[t]["group_id"])
        for t in sorted(runs)
    ]
    handoffs = [s for s in spans if s["span_data"]["type"] == "handoff"]
    assert con.execute(
        """SELECT event_id, name, source, target FROM events
           WHERE attrs->>'$."openai_agents.type"' = 'handoff'"""
    ).fetchall() == [
        (
            s["id"],
            f"handoff to {s['span_data']['to_agent']}",
            s["span_data"]["from_agent"],
            s["span_data"]["to_agent"],
        )
        for s in handoffs
    ]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_native_and_otlp_twins_name_the_same_agents(con, scenario):
    """The same runs exported natively and as OpenInference OTLP: the same agents per run, the
    same handoff targets (trace ids differ between the two exports)."""
    by_format = {}
    for kind in ("native", "otlp"):
        toolkit.ingest(con, FIXTURES / f"{scenario}.{kind}.jsonl")
        rows = con.execute("""
            SELECT list(DISTINCT source ORDER BY source) FILTER (source NOT LIKE 'fixturegen-%'),
                   list(DISTINCT target ORDER BY target) FILTER (name LIKE 'handoff to %')
            FROM events WHERE starts_with(origin, $p) GROUP BY trace_id ORDER BY min(ts)
        """, {"p": str(FIXTURES / f"{scenario}.{kind}.jsonl")}).fetchall()  # fmt: skip
        by_format[kind] = rows
    assert by_format["native"] == by_format["otlp"]


T = "trace_0123456789abcdef0123456789abcdef"
TRACE = {
    "object": "trace",
    "id": T,
    "workflow_name": "support",
    "group_id": "conv-1",
    "metadata": {"tenant": "acme"},
}


def _span(sid, parent, start, end, data, error=None):
    return {
        "object": "trace.span",
        "id": sid,
        "trace_id": T,
        "parent_id": parent,
        "started_at": f"2026-01-01T00:00:{start}+00:00",
        "ended_at": f"2026-01-01T00:00:{end}+00:00",
        "span_data": data,
        "error": error,
    }


SPANS = [  # as the SDK writes them: each span when it ends, children first
    _span("span_gen", "span_agent", "01.5", "02", {
        "type": "generation", "model": "gpt-4o",
        "input": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "refund A1"}],
        "output": [{"role": "assistant", "content": "ok"}], "model_config": {"temperature": 0.2},
        "usage": {"input_tokens": 12, "output_tokens": 3},
    }),
    _span("span_tool", "span_agent", "02", "03", {
        "type": "function", "name": "issue_refund", "input": '{"order":"A1"}', "output": None,
        "mcp_data": None,
    }, error={"message": "Error running tool", "data": {"error": "timeout"}}),
    _span("span_hand", "span_agent", "03", "03.5", {
        "type": "handoff", "from_agent": "triage", "to_agent": "billing",
    }),
    _span("span_agent", None, "01", "04", {
        "type": "agent", "name": "triage", "handoffs": ["billing"], "tools": ["issue_refund"],
        "output_type": "str",
    }),
]  # fmt: skip


def test_mapping_of_literal_items(con, tmp_path):
    path = _write(tmp_path / "run.jsonl", [*SPANS, TRACE])  # the trace record after its spans
    assert toolkit.ingest(con, path)[["rows", "rejected"]].values.tolist() == [[4, 0]]
    events = con.execute("""
        SELECT event_id, parent_span_id, name, type, source, target, status, content,
               ts::VARCHAR AS ts, origin[-7:] AS origin
        FROM events ORDER BY ts, event_id
    """).df()
    expected = pd.DataFrame(
        [
            ["span_agent", None, "triage", "AGENT", "triage", None, None, None,
             "2026-01-01 00:00:01+00", "jsonl:4"],
            ["span_gen", "span_agent", "gpt-4o", "LLM", "triage", None, None,
             '[{"role":"assistant","content":"ok"}]', "2026-01-01 00:00:01.5+00", "jsonl:1"],
            ["span_tool", "span_agent", "issue_refund", "TOOL", "triage", "issue_refund", "error",
             '{"order":"A1"}', "2026-01-01 00:00:02+00", "jsonl:2"],
            ["span_hand", "span_agent", "handoff to billing", "TOOL", "triage", "billing", None,
             None, "2026-01-01 00:00:03+00", "jsonl:3"],
        ],
        columns=events.columns,
    )  # fmt: skip
    pd.testing.assert_frame_equal(events, expected, check_dtype=False)
    attrs = {
        e: json.loads(a) for e, a in con.execute("SELECT event_id, attrs FROM events").fetchall()
    }
    assert attrs["span_gen"] == {
        "openinference.span.kind": "LLM",
        "input.value": '[{"role":"system","content":"be brief"},{"role":"user","content":"refund A1"}]',
        "output.value": '[{"role":"assistant","content":"ok"}]',
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 3,
        "session.id": "conv-1",
        "openai_agents.type": "generation",
        "openai_agents.model": "gpt-4o",
        "openai_agents.model_config.temperature": 0.2,
        "openai_agents.usage.input_tokens": 12,
        "openai_agents.usage.output_tokens": 3,
    }
    assert (
        attrs["span_tool"]["otel.status_description"] == 'Error running tool: {"error":"timeout"}'
    )
    assert attrs["span_hand"]["handoff.from_agent"] == "triage"
    assert attrs["span_agent"]["openai_agents.tools"] == ["issue_refund"]
    assert con.execute(
        "SELECT trace_id, system, task, outcome, session_id, attrs::JSON FROM traces"
    ).fetchall() == [
        (T, "support", "refund A1", "success", "conv-1", json.dumps({
            "openai_agents.workflow_name": "support", "openai_agents.group_id": "conv-1",
            "openai_agents.metadata": {"tenant": "acme"}}, separators=(",", ":"))),
    ]  # fmt: skip


def test_spans_without_a_trace_record_and_a_trace_record_without_spans(con, tmp_path):
    other = {**TRACE, "id": "trace_other", "group_id": None, "workflow_name": "idle"}
    path = _write(tmp_path / "run.jsonl", [other, *SPANS])
    assert toolkit.ingest(con, path)[["rows", "rejected"]].values.tolist() == [[4, 0]]
    assert con.execute(
        "SELECT trace_id, system, task, session_id FROM traces ORDER BY trace_id"
    ).fetchall() == [
        (T, "triage", "refund A1", None),  # no workflow name: the root agent's (shared mapping)
        ("trace_other", "idle", None, None),
    ]


BAD = [
    ("not json", "{oops", "not valid JSON"),
    ("not an object", "[1, 2]", "not a JSON object"),
    ("no object field", '{"id": "span_x"}', 'no "object" field: neither a trace nor a span record'),
    ("unknown object", '{"object": "trace.event", "id": "e"}', 'unknown object "trace.event"'),
    ("trace without id", '{"object": "trace", "workflow_name": "w"}', "trace record without id"),
    ("span without id", json.dumps({**SPANS[3], "id": None}), "missing span id"),
    ("span without trace", json.dumps({**SPANS[3], "trace_id": ""}), "missing trace id"),
    ("span without start", json.dumps({k: v for k, v in SPANS[3].items() if k != "started_at"}),
     "missing or unreadable start time"),
    ("bad start", json.dumps({**SPANS[3], "started_at": "yesterday"}),
     "missing or unreadable start time"),
    ("span_data not object", json.dumps({**SPANS[3], "span_data": "agent"}),
     "span_data is not an object"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "line", "reason"), BAD, ids=[b[0] for b in BAD])
def test_rejects_keep_origin_reason_and_text(con, tmp_path, case, line, reason):
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps(TRACE) + "\n" + line + "\n" + json.dumps(SPANS[0]) + "\n")
    result = ingest_file(con, path, "openai_agents")
    assert (result["rows"], result["rejected"]) == (1, 1)
    assert con.execute("SELECT origin, reason, record FROM rejects").fetchall() == [
        (f"{path}:2", reason, line)
    ]


def test_reingest_adds_nothing(con, tmp_path):
    path = _write(tmp_path / "run.jsonl", [TRACE, *SPANS])
    assert toolkit.ingest(con, path)["rows"].tolist() == [4]
    assert toolkit.ingest(con, path)["status"].tolist() == ["skipped"]
    again = _write(tmp_path / "again.jsonl", [*SPANS, TRACE, SPANS[0]])  # new bytes, same spans
    assert toolkit.ingest(con, again)[["rows", "rejected"]].values.tolist() == [[1, 0]]
    # ...except the span written twice in that file: a redelivery, kept as data
    assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchall() == [
        (5, 4)
    ]
    assert con.execute("SELECT count(*) FROM traces").fetchall() == [(1,)]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_exporter_payload_loads_like_the_lines(con, tmp_path, scenario):
    """``{"data": [...]}``, the body BackendSpanExporter posts: the same events, origins ``#N``."""
    items = _items(FIXTURES / f"{scenario}.native.jsonl")
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"data": items}, indent=2))
    assert detect_format(payload) == "openai_agents"
    result = toolkit.ingest(con, payload)
    spans = [i for i in items if i["object"] == "trace.span"]
    assert result[["rows", "rejected"]].values.tolist() == [[len(spans), 0]]
    origins = con.execute("SELECT event_id, origin FROM events ORDER BY event_id").fetchall()
    assert origins == sorted(
        (i["id"], f"{payload}#{n}") for n, i in enumerate(items, 1) if i["object"] == "trace.span"
    )
    lines = toolkit.ingest(con, FIXTURES / f"{scenario}.native.jsonl")
    assert lines["rows"].tolist() == [0]  # the same records: nothing added


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (json.dumps(TRACE), True),
        (json.dumps(SPANS[0]), True),
        (json.dumps({"data": SPANS}), True),
        (json.dumps(SPANS), True),
        ('{"object": "trace", "note": "no trace fields"}', False),
        ('{"object": "response", "id": "resp_1", "output": []}', False),  # an OpenAI API object
        ("object: trace.span", False),
    ],
)
def test_sniff(text, expected):
    from toolkit.ingest.openai_agents import sniff

    assert sniff(text.encode()) is expected


def test_the_otlp_twins_stay_otlp():
    for scenario in SCENARIOS:
        assert detect_format(FIXTURES / f"{scenario}.otlp.jsonl") == "otlp"
