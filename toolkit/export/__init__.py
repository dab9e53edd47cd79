"""The traces out of the toolkit, for the tools that come after discovery.

* :func:`to_pm4py`: the event log as a pandas DataFrame in PM4Py's column convention;
* :func:`export_xes`: IEEE 1849 XES (ProM, PM4Py, Disco, Celonis), streamed;
* :func:`export_ocel`: OCEL 2.0, object-centric (agents, tools, messages, traces, sessions),
  as JSON or in its SQLite layout;
* :func:`export_parquet`: the events in the canonical schema, which ``toolkit.ingest`` reads
  back (it lives with the Parquet reader in :mod:`toolkit.ingest.parquet`).

All read the same log (:mod:`toolkit.export.log`): one row per distinct event in scope, the same
filters as every analysis. None needs PM4Py (AGPL): the formats are written from their
specifications.
"""

from toolkit.export.frame import to_pm4py
from toolkit.export.ocel import export_ocel
from toolkit.export.xes import export_xes
from toolkit.ingest.parquet import export_parquet

__all__ = ["export_ocel", "export_parquet", "export_xes", "to_pm4py"]
