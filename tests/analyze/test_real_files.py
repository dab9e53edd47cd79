"""Every analysis runs over the real trace files written by others (../shared/data)."""

from __future__ import annotations

import pytest

import toolkit
from tests.conftest import DATA, shared

ANALYSES = [toolkit.unhandled_events, toolkit.duplicates, toolkit.late_events, toolkit.hangs,
            toolkit.escalations, toolkit.findings, toolkit.flow_edges, toolkit.latency, toolkit.summary]  # fmt: skip


@pytest.fixture(scope="module")
def real_con():
    """Every supported file under shared/data/traces plus the datasets and the bundled samples."""
    con = toolkit.connect()
    result = toolkit.ingest(con, [shared("traces"), shared("who_and_when"), shared("mast"),
                                  shared("tau_bench"), shared("agentrx"), DATA / "samples"])  # fmt: skip
    loaded = result[result["status"] == "loaded"]
    assert len(loaded) > 150 and loaded["rows"].sum() > 10_000
    yield con
    con.close()


@pytest.mark.parametrize("analysis", ANALYSES, ids=lambda f: f.__name__)
def test_every_analysis_runs_on_the_real_files(real_con, analysis):
    df = analysis(real_con)
    assert len(df.columns) > 2


def test_graphs_and_critical_paths_of_real_traces(real_con):
    traces = real_con.execute("""
        SELECT trace_id FROM (SELECT trace_id, count(*) AS n FROM events GROUP BY 1)
        ORDER BY n DESC, trace_id LIMIT 25""").fetchall()
    for (trace_id,) in traces:
        graph = toolkit.event_graph(real_con, trace_id)
        assert graph.number_of_nodes() > 0
        path = toolkit.critical_path(real_con, trace_id)
        assert path.empty or path["step"].tolist() == list(range(len(path)))


def test_zipkin_shared_spans_are_not_duplicates(real_con):
    dups = toolkit.duplicates(real_con)
    shared_pairs = real_con.execute("""
        SELECT count(*) FROM events s JOIN events c
          ON s.trace_id = c.trace_id AND s.parent_span_id = c.event_id AND s.event_id = c.event_id || ':server'
        WHERE s.origin LIKE '%zipkin%'""").fetchall()[0][0]
    assert shared_pairs > 0
    redelivered = dups[(dups["kind"] == "duplicate") & dups["event_id"].str.endswith(":server")]
    assert redelivered.empty


def test_zipkin_clock_skew_is_reported_as_out_of_order(real_con):
    late = toolkit.late_events(real_con)
    skewed = late[(late["kind"] == "out_of_order")]
    origins = real_con.execute(
        "SELECT DISTINCT trace_id FROM events WHERE origin LIKE '%zipkin-lens/testdata/skew.json%'"
    ).fetchall()
    assert set(skewed["trace_id"]) & {t for (t,) in origins}
