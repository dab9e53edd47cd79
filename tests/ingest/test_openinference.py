"""OpenInference / Phoenix span exports, and the shared OpenInference files that are not traces."""

from __future__ import annotations

import json

import pytest

import toolkit
from tests.conftest import shared
from toolkit.ingest import detect_format, ingest_file

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPANS = [  # Phoenix span JSON: flat and nested attributes, an exception event
    {
        "id": "U3BhbjoxMjM=",
        "name": "ChatCompletion",
        "span_kind": "LLM",
        "context": {"trace_id": TRACE, "span_id": "b7ad6b7169203331"},
        "parent_id": "00f067aa0ba902b7",
        "start_time": "2024-05-01T12:00:00+00:00",
        "end_time": "2024-05-01T12:00:01.5+00:00",
        "status_code": "OK",
        "status_message": "",
        "attributes": {
            "llm.model_name": "gpt-4o",
            "input.value": "What is 2+2?",
            "output.value": "4",
        },
        "events": [],
    },
    {
        "id": "U3BhbjoxMjQ=",
        "name": "agent",
        "span_kind": "AGENT",
        "context": {"trace_id": TRACE, "span_id": "00f067aa0ba902b7"},
        "parent_id": None,
        "start_time": "2024-05-01T11:59:59Z",
        "end_time": "2024-05-01T12:00:02Z",
        "status_code": "ERROR",
        "status_message": "boom",
        "attributes": {"input": {"value": "sum please"}, "agent": {"name": "planner"}},
        "events": [
            {
                "name": "exception",
                "timestamp": "2024-05-01T12:00:01.9Z",
                "attributes": {"exception.message": "boom"},
            }
        ],
    },
]
DATAFRAME_ROWS = [  # get_spans_dataframe().to_json(orient="records", lines=True): epoch millis
    {
        "name": "search",
        "span_kind": "TOOL",
        "parent_id": "00f067aa0ba902b7",
        "start_time": 1714564800000,
        "end_time": 1714564800250,
        "status_code": "UNSET",
        "context.span_id": "1111111111111111",
        "context.trace_id": TRACE,
        "attributes.tool.name": "web_search",
        "attributes.input.value": "q",
        "attributes.output.value": "results",
        "attributes.llm.model_name": None,
    },
    {
        "name": "no start",
        "span_kind": "TOOL",
        "parent_id": None,
        "start_time": None,
        "context.span_id": "2222222222222222",
        "context.trace_id": TRACE,
    },
]


@pytest.mark.parametrize("wrap", [lambda s: s, lambda s: {"data": s}])
def test_phoenix_span_json(con, tmp_path, wrap):
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(wrap(SPANS), indent=1))
    assert detect_format(path) == "openinference"
    assert toolkit.ingest(con, path)[["rows", "rejected"]].values.tolist() == [[3, 0]]
    rows = con.execute("""
        SELECT event_id, coalesce(parent_span_id, parent_id), type, source, status, content, ts::VARCHAR, origin[-6:]
        FROM events ORDER BY ts""").fetchall()
    assert rows == [
        (
            "00f067aa0ba902b7",
            None,
            "AGENT",
            "planner",
            "error",
            "sum please",
            "2024-05-01 11:59:59+00",
            "json#2",
        ),
        (
            "b7ad6b7169203331",
            "00f067aa0ba902b7",
            "LLM",
            "planner",  # the agent of the enclosing AGENT span
            "ok",
            "4",
            "2024-05-01 12:00:00+00",
            "json#1",
        ),
        (
            "00f067aa0ba902b7:event:1",
            "00f067aa0ba902b7",
            "exception",
            "planner",
            "error",
            "boom",
            "2024-05-01 12:00:01.9+00",
            "json#2",
        ),
    ]
    assert con.execute("SELECT system, task, outcome FROM traces").fetchall() == [
        (None, "sum please", "failure")  # task: the root span's input
    ]
    attrs = json.loads(con.execute("SELECT attrs FROM events WHERE type = 'LLM'").fetchall()[0][0])
    assert attrs == {
        "llm.model_name": "gpt-4o",
        "input.value": "What is 2+2?",
        "output.value": "4",
        "openinference.span.kind": "LLM",
    }


def test_phoenix_dataframe_records_jsonl(con, tmp_path):
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in DATAFRAME_ROWS) + "\n")
    assert detect_format(path) == "openinference"
    assert toolkit.ingest(con, path)[["rows", "rejected"]].values.tolist() == [[1, 1]]
    assert con.execute(
        "SELECT type, target, content, ts::VARCHAR, status, attrs::JSON::MAP(VARCHAR, VARCHAR) FROM events"
    ).fetchall() == [
        (
            "TOOL",
            "web_search",
            "results",
            "2024-05-01 12:00:00+00",
            None,
            {
                "tool.name": "web_search",
                "input.value": "q",
                "output.value": "results",
                "openinference.span.kind": "TOOL",
            },
        )
    ]
    assert con.execute("SELECT origin[-7:], reason FROM rejects").fetchall() == [
        ("jsonl:2", "missing or unreadable start time")
    ]
    again = tmp_path / "again.jsonl"
    again.write_text(path.read_text() + "\n")
    assert toolkit.ingest(con, again)["rows"].tolist() == [0]


GENAI = "openinference/js/packages/openinference-genai/test/__fixtures__"


@pytest.mark.parametrize(
    "name",
    [
        "openinference_client_span_input_output_only",
        "openinference_client_span_tool_calls",
        "otel_genai_client_span_tool_calls",
        "otel_genai_deprecated_client_span_tool_calls",
        "otel_genai_tool_execution_span",
    ],
)
def test_flat_attribute_maps_are_not_traces(con, name):
    """These files are one span's attributes without ids: not detected; forced, rejected."""
    path = shared("traces", GENAI, f"{name}.json")
    assert detect_format(path) is None
    with pytest.raises(ValueError, match="cannot detect"):
        toolkit.ingest(con, path)
    result = ingest_file(con, path, "openinference")
    assert (result["rows"], result["rejected"]) == (0, 1)
    assert con.execute("SELECT origin[-6:], reason FROM rejects").fetchall() == [
        ("json#1", "missing trace id")
    ]


def test_vercel_capture_summary_is_not_a_trace(con):
    path = shared(
        "traces",
        "openinference/js/packages/openinference-vercel/test/__fixtures__/v6-spans",
        "capture-results.json",
    )
    assert detect_format(path) is None
