"""Every chart on real-shaped data and on empty data; figure structure, escaping, no mutation."""

from __future__ import annotations

import json

import networkx as nx
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import toolkit
from toolkit.analyze.graphs import FLOW_EDGE_COLUMNS
from toolkit.viz._common import esc
from toolkit.viz.event_graph import _label_sides
from toolkit.viz.flow_graph import _label_shifts

EVIL = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """Bundled samples plus 60 simulated runs (seeded), and their findings."""
    con = toolkit.connect()
    toolkit.ingest(con, "data/samples")
    out = toolkit.simulate(tmp_path_factory.mktemp("sim"), traces=60, seed=7)
    toolkit.ingest(con, out["events"])
    yield con, toolkit.findings(con)
    con.close()


def _is_empty_chart(fig, words: str) -> None:
    assert [t for t in fig.data if t.type != "scatter" or t.x] == []
    assert any(words in a.text for a in fig.layout.annotations), fig.layout.annotations
    assert fig.layout.title.text


def _payload(fig) -> str:
    return json.dumps(fig.to_plotly_json(), default=str)


def _breakdown() -> pd.DataFrame:
    rows = [
        ("sim", "FC1", "Specification issues", "FM-1.1", "Disobey task specification", 10, 12, 0.1, 0.3, True),
        ("sim", "FC1", "Specification issues", "FM-1.3", "Step repetition", 25, 30, 0.25, 0.5, True),
        ("sim", "FC2", "Inter-agent misalignment", "FM-2.4", "Information withholding", None, None, None, None, False),
        ("sim", "FC3", "Task verification", "FM-3.2", "No or incomplete verification", 15, 18, 0.15, 0.2, True),
        ("mas", "FC1", "Specification issues", "FM-1.1", "Disobey task specification", 0, 0, 0.0, 0.0, True),
        ("mas", "FC1", "Specification issues", "FM-1.3", "Step repetition", 2, 2, 0.2, 1.0, True),
        ("mas", "FC2", "Inter-agent misalignment", "FM-2.4", "Information withholding", None, None, None, None, False),
        ("mas", "FC3", "Task verification", "FM-3.2", "No or incomplete verification", 0, 0, 0.0, 0.0, True),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["group", "category", "category_name", "mode", "mode_name",
                                       "traces", "flags", "trace_share", "flag_share", "assessed"])  # fmt: skip


def test_event_graph_marks_findings_and_escapes_content(sim):
    con, found = sim
    before = found.copy()
    trace_id = found["trace_id"].value_counts().index[0]
    graph = toolkit.event_graph(con, trace_id)
    fig = toolkit.plot_event_graph(graph, found)
    assert_frame_equal(found, before)
    nodes = [t for t in fig.data if t.name == "events"]
    assert len(nodes) == 1 and len(nodes[0].x) == graph.number_of_nodes()
    kinds = set(found.loc[found["trace_id"] == trace_id, "kind"])
    marked = {t.name.split(" (")[0] for t in fig.data if t.legendgroup == "finding"}
    assert kinds <= marked
    assert trace_id in fig.layout.title.text
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    edges = [t for t in fig.data if t.mode == "lines"]  # one trace per relation
    assert len(edges) <= 2 and sum(list(t.x).count(None) for t in edges) == graph.number_of_edges()


def test_event_graph_hover_is_escaped(loaded_con):
    fig = toolkit.plot_event_graph(toolkit.event_graph(loaded_con, "ticket-200"))
    text = " ".join(next(t for t in fig.data if t.name == "events").hovertext)
    assert "&lt;b&gt;instead&lt;/b&gt;" in text and "<b>instead" not in text


def test_event_graph_samples_beyond_the_limit_and_keeps_findings():
    graph = nx.DiGraph(trace_id="big")
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    for i in range(1200):
        graph.add_node(f"e{i}", type=f"t{i % 5}", source=f"agent-{i % 7}", ts=t0 + pd.Timedelta(seconds=i),
                       end_ts=None, status=None, content=None, seq=i, records=1)  # fmt: skip
        if i:
            graph.add_edge(f"e{(i - 1) // 3}", f"e{i}", kind="causes")
    found = pd.DataFrame({"trace_id": "big", "event_id": [f"e{i}" for i in range(5, 1200, 100)],
                          "kind": "unhandled", "severity": "error", "detail": "x"})  # fmt: skip
    fig = toolkit.plot_event_graph(graph, found, max_events=500)
    nodes = next(t for t in fig.data if t.name == "events")
    assert len(nodes.x) == 500
    assert "showing 500 of 1,200 events" in fig.layout.title.text
    marks = next(t for t in fig.data if t.legendgroup == "finding")
    assert len(marks.x) == len(found)
    assert len(fig.data) < 30  # one trace for nodes, one per edge style: never one per edge


def _graph(n: int, edges: list[tuple[int, int, str]]) -> nx.DiGraph:
    """Events e0..e<n-1>, one second apart, and the given edges (parent, child, kind)."""
    graph = nx.DiGraph(trace_id="t")
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    for i in range(n):
        graph.add_node(f"e{i}", type="t", source="a", ts=t0 + pd.Timedelta(seconds=i),
                       end_ts=None, status=None, content=None, seq=i, records=1)  # fmt: skip
    for parent, child, kind in edges:
        graph.add_edge(f"e{parent}", f"e{child}", kind=kind)
    return graph


C, R = "contains", "causes"


@pytest.mark.parametrize(
    ("edges", "rows"),
    [
        # a span tree: a row per nesting level, whatever the number of branches
        ([(0, 1, C), (1, 2, C), (1, 3, C), (0, 4, C), (4, 5, C), (0, 6, C)],
         [0, 1, 2, 2, 1, 2, 1]),
        # reactions: the first continues its parent's row, the next opens one below; a row is
        # reused a step after a chain of another parent ends; a second root shares row 0
        ([(0, 1, R), (1, 2, R), (2, 3, R), (1, 4, R), (4, 5, R), (0, 7, R)],
         [0, 0, 0, 0, 1, 1, 0, 1]),
        # ... but not right after it (e5 would read as continuing e4's chain)
        ([(0, 1, R), (1, 2, R), (2, 3, R), (1, 4, R), (0, 5, R)], [0, 0, 0, 0, 1, 2]),
        # both: a message sent in a span, a reaction to it, work inside that; e4 runs inside e0
        # and reacts to e3: it hangs from its span
        ([(0, 1, C), (1, 2, R), (2, 3, C), (0, 4, C), (3, 4, R)], [0, 1, 1, 2, 1]),
    ],
)  # fmt: skip
def test_event_graph_rows_follow_nesting_and_reaction_chains(edges, rows):
    fig = toolkit.plot_event_graph(_graph(len(rows), edges))
    assert list(next(t for t in fig.data if t.name == "events").y) == rows
    # every relation is drawn, each in its own style
    drawn = {t.name.split(" ")[0]: list(t.x).count(None) for t in fig.data if t.mode == "lines"}
    assert drawn == {k: sum(e[2] == k for e in edges) for k in {e[2] for e in edges}}


def test_event_graph_labels_alternate_along_each_row():
    top, bottom = "top center", "bottom center"
    assert _label_sides([0, 1, 2, 2, 1, 2, 1]) == [top, top, top, bottom, bottom, top, top]


def test_event_graph_empty():
    _is_empty_chart(toolkit.plot_event_graph(nx.DiGraph(trace_id="nothing")), "No events")


def test_flow_graph(sim):
    con, _ = sim
    edges = toolkit.flow_edges(con)
    before = edges.copy()
    fig = toolkit.plot_flow_graph(edges)
    assert_frame_equal(edges, before)
    kinds = set(edges["parent"]) | set(edges["child"])
    node_trace = next(t for t in fig.data if t.name == "event kind")
    assert len(node_trace.x) == len(kinds)
    bar = next(t for t in fig.data if t.name == "edge (hover)")
    assert "p95" in bar.marker.colorbar.title.text
    widths = [t.line.width for t in fig.data if t.mode == "lines"]
    assert max(widths) > min(widths)
    assert fig.layout.title.text.startswith("Event flow graph")
    assert fig.layout.xaxis.title.text


def test_flow_graph_caps_edges_and_survives_cycles():
    edges = pd.DataFrame({"parent": ["a", "b", "c", "a", "c"], "child": ["b", "c", "a", "a", "d"],
                          "count": [5, 4, 3, 2, 1], "p95_ms": [1.0, 10.0, 1000.0, 5.0, None]})  # fmt: skip
    fig = toolkit.plot_flow_graph(edges, max_edges=4)
    assert "showing the 4 most frequent of 5 edges" in _payload(fig)
    assert any("↻2" in str(a.text) for a in fig.layout.annotations)  # node labels


def test_flow_graph_labels_sit_on_a_white_ground():
    edges = pd.DataFrame({"parent": ["a", "a", "b"], "child": ["b", "c", "d"], "count": [9, 8, 7]})
    labels = [a for a in toolkit.plot_flow_graph(edges).layout.annotations if a.text in set("abcd")]
    assert len(labels) == 4 and all(a.bgcolor and not a.showarrow for a in labels)


@pytest.mark.parametrize(
    ("pos", "expected"),
    [
        ({"a": (0, 0.0), "b": (1, -1.0)}, {"a": 14, "b": -14}),  # even above, odd below
        ({"a": (0, 0.0), "b": (1, 0.3)}, {"a": 14, "b": 14}),  # below would meet a's: above
        ({"a": (0, 0.0), "b": (1, 0.25), "c": (0, 0.5)}, {"a": 14, "c": 14, "b": -14}),  # none free
    ],
)  # fmt: skip
def test_flow_graph_label_sides(pos, expected):
    assert _label_shifts(pos, dict.fromkeys(pos, 10), px_per_unit=60) == expected


def test_flow_graph_empty():
    _is_empty_chart(toolkit.plot_flow_graph(pd.DataFrame(columns=FLOW_EDGE_COLUMNS)), "No causal")


def test_timeline(sim):
    con, found = sim
    trace_id = found.loc[found["kind"] == "late", "trace_id"].iloc[0]
    fig = toolkit.plot_timeline(con, trace_id, found)
    types = {t.type for t in fig.data}
    assert {"bar", "scatter"} <= types  # tool calls have durations: bars
    assert any(t.name.startswith("late") for t in fig.data if t.legendgroup == "finding")
    assert any(t.name == "causes" and None in t.x for t in fig.data)
    assert fig.layout.xaxis.title.text == "time (UTC)" and fig.layout.yaxis.title.text
    assert fig.layout.yaxis.type == "category"


def test_timeline_empty(con):
    _is_empty_chart(toolkit.plot_timeline(con, "no-such-trace"), "No timed events")


@pytest.mark.parametrize("measure", ["reaction", "duration", "end_to_end"])
def test_latency_from_a_connection(sim, measure):
    con, _ = sim
    fig = toolkit.plot_latency(con, measure=measure)
    types = [t.type for t in fig.data]
    assert "box" in types and "table" in types
    assert any(t.name and "slowest" in t.name for t in fig.data) or measure == "end_to_end"
    assert "milliseconds" in fig.layout.xaxis.title.text
    assert fig.layout.title.text.startswith("Latency")


def test_latency_from_a_table_uses_a_log_axis_when_values_span_decades(sim):
    con, _ = sim
    table = toolkit.latency(con)
    before = table.copy()
    fig = toolkit.plot_latency(table, traces=toolkit.latency(con, by="trace"))
    assert_frame_equal(table, before)
    assert fig.layout.xaxis.type == "log"
    assert {"p50", "p95", "max"} <= {t.name for t in fig.data}


def test_latency_empty(con):
    _is_empty_chart(toolkit.plot_latency(con), "No reaction")


def test_findings_and_unhandled(sim):
    con, found = sim
    fig = toolkit.plot_findings(con)
    names = {t.name for t in fig.data if t.type == "bar"}
    assert set(found["kind"]) <= names
    assert fig.layout.xaxis.title.text == "findings (count)"
    axes = [a for a in fig.layout if a.startswith("xaxis")]
    assert fig.layout[sorted(axes, key=lambda a: int(a[5:] or 1))[-1]].title.text == "time (UTC)"
    before = found.copy()
    assert toolkit.plot_findings(found).data  # a plain table: no system, no time, still a chart
    assert_frame_equal(found, before)
    fig = toolkit.plot_unhandled(con)
    assert fig.data and fig.layout.title.text.startswith("Unhandled events")


def test_findings_and_unhandled_empty(con):
    _is_empty_chart(toolkit.plot_findings(con), "No findings")
    _is_empty_chart(toolkit.plot_unhandled(con), "No unhandled")


def test_failure_breakdown_bar():
    table = _breakdown()
    before = table.copy()
    fig = toolkit.plot_failure_breakdown(table)
    assert_frame_equal(table, before)
    assert "share of traces" in fig.layout.title.text
    bars = [t for t in fig.data if t.type == "bar"]
    assert all("FM-2.4" not in " ".join(t.y) for t in bars)  # never drawn as a zero bar
    assert sum(a.text == "<i>not assessed</i>" for a in fig.layout.annotations) == 2
    assert {"FC1 Specification issues", "FC3 Task verification"} <= {t.name for t in bars}
    assert any("sim<br>n = 100 traces" in a.text for a in fig.layout.annotations)


def test_failure_breakdown_sunburst_by_flags():
    fig = toolkit.plot_failure_breakdown(_breakdown(), "sunburst", basis="flags")
    (sun,) = fig.data
    assert sun.type == "sunburst" and "share of flags" in fig.layout.title.text
    assert not any("FM-2.4" in i for i in sun.ids)
    assert any("not assessed" in a.text and "FM-2.4" in a.text for a in fig.layout.annotations)


@pytest.mark.parametrize("kind", ["bar", "sunburst"])
def test_failure_breakdown_empty(kind):
    _is_empty_chart(toolkit.plot_failure_breakdown(_breakdown().head(0), kind), "No failure")


def test_trace_text_is_escaped_in_every_chart(con, tmp_path):
    lines = [
        {"specversion": "1.0", "id": "a", "source": EVIL, "type": EVIL, "time": "2026-01-01T00:00:00Z",
         "traceid": "x", "data": EVIL},
        {"specversion": "1.0", "id": "b", "source": "bot", "type": "reply", "causationid": "a",
         "time": "2026-01-01T00:00:01Z", "endtime": "2026-01-01T00:00:02Z", "traceid": "x",
         "data": EVIL},
    ]  # fmt: skip
    path = tmp_path / "evil.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    toolkit.ingest(con, path)
    figs = [toolkit.plot_event_graph(toolkit.event_graph(con, "x")),
            toolkit.plot_timeline(con, "x"), toolkit.plot_flow_graph(toolkit.flow_edges(con)),
            toolkit.plot_flow_graph(toolkit.flow_edges(con, by="source")),
            toolkit.plot_latency(con, by="source")]  # fmt: skip
    for fig in figs:
        text = _payload(fig)
        assert "<script" not in text and "<img" not in text
        assert esc("<script>") in text


def test_save_figure_html(tmp_path):
    fig = toolkit.plot_flow_graph(pd.DataFrame({"parent": ["a"], "child": ["b"], "count": [1]}))
    out = toolkit.save_figure(fig, tmp_path / "flow.html")
    assert out.stat().st_size > 1_000_000  # plotly.js is embedded


@pytest.mark.browser
def test_save_figure_png_and_svg(tmp_path, chromium):
    fig = toolkit.plot_flow_graph(pd.DataFrame({"parent": ["a"], "child": ["b"], "count": [1]}))
    png = toolkit.save_figure(fig, tmp_path / "flow.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = toolkit.save_figure(fig, tmp_path / "flow.svg", width=600, height=400)
    assert b"<svg" in svg.read_bytes()[:400]
