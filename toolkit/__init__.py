"""toolkit: analysis and observability for event-driven AI and multi-agent systems.

Ingest traces into DuckDB, find where the event flow snaps, classify failures (MAST), show them.
"""

from toolkit.analyze import (
    FINDING_KINDS,
    critical_path,
    duplicates,
    errors,
    escalations,
    event_graph,
    findings,
    flow_edges,
    flow_graph,
    hangs,
    late_events,
    latency,
    open_traces,
    sessions,
    summary,
    traces,
    unhandled_events,
)
from toolkit.classify import (
    TAXONOMY,
    agreement,
    attribute_failure,
    attribution_accuracy,
    classify,
    failure_breakdown,
)
from toolkit.db import connect, query, trace_sql
from toolkit.export import export_ocel, export_xes, to_pm4py
from toolkit.ingest import IngestError, detect_format, export_parquet, ingest
from toolkit.receive import receive
from toolkit.simulate import simulate
from toolkit.viz import (
    plot_event_graph,
    plot_failure_breakdown,
    plot_findings,
    plot_flow_graph,
    plot_latency,
    plot_timeline,
    plot_unhandled,
    plot_waterfall,
    report,
    save_figure,
    transcript,
)

__all__ = [
    "FINDING_KINDS",
    "TAXONOMY",
    "IngestError",
    "agreement",
    "attribute_failure",
    "attribution_accuracy",
    "classify",
    "connect",
    "critical_path",
    "detect_format",
    "duplicates",
    "errors",
    "escalations",
    "event_graph",
    "export_ocel",
    "export_parquet",
    "export_xes",
    "failure_breakdown",
    "findings",
    "flow_edges",
    "flow_graph",
    "hangs",
    "ingest",
    "late_events",
    "latency",
    "open_traces",
    "plot_event_graph",
    "plot_failure_breakdown",
    "plot_findings",
    "plot_flow_graph",
    "plot_latency",
    "plot_timeline",
    "plot_unhandled",
    "plot_waterfall",
    "query",
    "receive",
    "report",
    "save_figure",
    "sessions",
    "simulate",
    "summary",
    "to_pm4py",
    "trace_sql",
    "traces",
    "transcript",
    "unhandled_events",
]
