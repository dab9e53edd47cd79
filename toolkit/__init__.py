"""toolkit: analysis and observability for event-driven AI and multi-agent systems.

Ingest traces into DuckDB, find where the event flow snaps, classify failures (MAST), show them.
"""

from toolkit.db import connect, query
from toolkit.ingest import detect_format, export_parquet, ingest
from toolkit.simulate import simulate

__all__ = ["connect", "detect_format", "export_parquet", "ingest", "query", "simulate"]
