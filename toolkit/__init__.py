"""toolkit: analysis and observability for event-driven AI and multi-agent systems.

Ingest traces into DuckDB, find where the event flow snaps, classify failures (MAST), show them.
"""

from toolkit.analyze import (
    FINDING_KINDS,
    critical_path,
    duplicates,
    escalations,
    event_graph,
    findings,
    flow_edges,
    flow_graph,
    hangs,
    late_events,
    latency,
    summary,
    unhandled_events,
)
from toolkit.db import connect, query
from toolkit.ingest import detect_format, export_parquet, ingest
from toolkit.simulate import simulate

__all__ = [
    "FINDING_KINDS",
    "connect",
    "critical_path",
    "detect_format",
    "duplicates",
    "escalations",
    "event_graph",
    "export_parquet",
    "findings",
    "flow_edges",
    "flow_graph",
    "hangs",
    "ingest",
    "late_events",
    "latency",
    "query",
    "simulate",
    "summary",
    "unhandled_events",
]
