"""Event-flow analyses: plain functions over a DuckDB connection, returning DataFrames."""

from toolkit.analyze.delivery import duplicates, late_events
from toolkit.analyze.failures import errors
from toolkit.analyze.findings import FINDING_KINDS, findings, summary
from toolkit.analyze.flow import escalations, hangs, open_traces, unhandled_events
from toolkit.analyze.graphs import event_graph, flow_edges, flow_graph
from toolkit.analyze.latency import critical_path, latency
from toolkit.analyze.sessions import sessions, traces

__all__ = ["FINDING_KINDS", "critical_path", "duplicates", "errors", "escalations", "event_graph",
           "findings", "flow_edges", "flow_graph", "hangs", "late_events", "latency",
           "open_traces", "sessions", "summary", "traces", "unhandled_events"]  # fmt: skip
