"""IEEE 1849 XES (eXtensible Event Stream), the event-log standard of ProM, PM4Py, Disco, Celonis.

The file is written as the events are read: one ``<trace>`` (a case) at a time, built with
ElementTree (which escapes ``& < > "`` and line breaks in attribute values) and appended, so
memory stays bounded by one batch of rows and one case however large the log.

Layout (the XES XSD's order: extensions, globals, classifiers, log attributes, traces)::

    <log xes.version="1.0" xes.features="" xmlns="http://www.xes-standard.org/">
      <extension .../>  Concept, Time, Organizational, Lifecycle
      <global scope="trace"> / <global scope="event">  defaults of the mandatory keys
      <classifier name="Activity" keys="concept:name"/>, Resource, Activity and resource
      <string key="concept:name" value="toolkit event log"/>, case notion, activity
      <trace> concept:name (the case), trace attributes; <event>s in time order
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Unpack

import duckdb

from toolkit.analyze.scope import Filters
from toolkit.export.log import Activity, Case, events_sql, stream, xml_safe

XES_NAMESPACE = "http://www.xes-standard.org/"
EXTENSIONS = [
    ("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
    ("Time", "time", "http://www.xes-standard.org/time.xesext"),
    ("Organizational", "org", "http://www.xes-standard.org/org.xesext"),
    ("Lifecycle", "lifecycle", "http://www.xes-standard.org/lifecycle.xesext"),
]
# Event attributes besides the standard keys, in this order: (XES key, column).
EVENT_STRINGS = [
    ("event_id", "event_id"), ("kind", "kind"), ("type", "type"), ("name", "name"),
    ("target", "target"), ("status", "status"), ("idempotency_key", "idempotency_key"),
    ("correlation_id", "correlation_id"), ("parent_id", "parent_id"),
    ("parent_span_id", "parent_span_id"), ("content", "content"),
]  # fmt: skip
# Trace attributes, from the case's first event (the agent case notion adds ``agent``).
TRACE_STRINGS = ["trace_id", "session_id", "system", "task", "outcome"]
_UNIX_EPOCH = "1970-01-01T00:00:00.000000Z"


def _attr(parent: ET.Element, tag: str, key: str, value: Any) -> None:
    if value is not None:
        ET.SubElement(parent, tag, key=key, value=xml_safe(str(value)))


def _header(case: str, activity: str) -> str:
    log = ET.Element("log", {"xes.version": "1.0", "xes.features": "", "xmlns": XES_NAMESPACE})
    for name, prefix, uri in EXTENSIONS:
        ET.SubElement(log, "extension", name=name, prefix=prefix, uri=uri)
    trace_globals = ET.SubElement(log, "global", scope="trace")
    _attr(trace_globals, "string", "concept:name", "UNKNOWN")
    event_globals = ET.SubElement(log, "global", scope="event")
    _attr(event_globals, "string", "concept:name", "UNKNOWN")
    _attr(event_globals, "date", "time:timestamp", _UNIX_EPOCH)
    _attr(event_globals, "string", "lifecycle:transition", "complete")
    for name, keys in (("Activity", "concept:name"), ("Resource", "org:resource"),
                       ("Activity_and_resource", "concept:name org:resource")):  # fmt: skip
        ET.SubElement(log, "classifier", name=name, keys=keys)
    _attr(log, "string", "concept:name", "toolkit event log")
    _attr(log, "string", "toolkit:case", case)
    _attr(log, "string", "toolkit:activity", activity)
    text = ET.tostring(log, encoding="unicode", short_empty_elements=True)
    return text.removesuffix("</log>")


def export_xes(
    con: duckdb.DuckDBPyConnection, path: str | Path, *, case: Case = "trace",
    activity: Activity = "type", **filters: Unpack[Filters],
) -> int:  # fmt: skip
    """Write the events in scope to an IEEE 1849 XES file, one ``<trace>`` per case.

    The same log as :func:`toolkit.to_pm4py` (the same cases, activities, order and times):
    one ``<event>`` per distinct event with ``concept:name`` (the activity),
    ``time:timestamp`` (completion), ``start_timestamp`` (start),
    ``org:resource`` (the agent), ``lifecycle:transition`` ``complete`` and the event's own
    fields as strings (``event_id``, ``kind``, ``type``, ``name``, ``target``, ``status``,
    ``idempotency_key``, ``correlation_id``, ``parent_id``, ``parent_span_id``, ``content``;
    a NULL is left out). Events without any time are left out, as in the frame. Traces carry ``trace_id``, ``session_id``, ``system``, ``task``,
    ``outcome`` from the case's first event (no ``trace_id`` for the session case notion, whose
    cases span traces; ``agent`` for the agent case notion). ``attrs`` is not written.

    Text is escaped by the XML writer; characters XML 1.0 cannot hold at all (control
    characters, lone surrogates) become U+FFFD. Written in UTF-8, streaming.

    Args:
        con: the connection.
        path: the ``.xes`` file to write (its folder is created).
        case: the case notion, as in :func:`toolkit.to_pm4py`.
        activity: the activity, as in :func:`toolkit.to_pm4py`.
        **filters: ``trace_id``, ``system``, ``start``, ``end``.

    Returns:
        The number of events written.
    """
    sql, params = events_sql(case=case, activity=activity, **filters)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        out.write(_header(case, activity) + "\n")
        trace: ET.Element | None = None
        current: str | None = None
        for batch in stream(con, sql, params):
            for row in batch.to_pylist():
                if row["case_id"] != current:
                    if trace is not None:
                        out.write(ET.tostring(trace, encoding="unicode") + "\n")
                    current = row["case_id"]
                    trace = ET.Element("trace")
                    _attr(trace, "string", "concept:name", current)
                    for key in TRACE_STRINGS:
                        if not (case == "session" and key == "trace_id"):  # several traces
                            _attr(trace, "string", key, row[key])
                    if case == "agent":
                        _attr(trace, "string", "agent", row["source"] or "?")
                assert trace is not None
                event = ET.SubElement(trace, "event")
                _attr(event, "string", "concept:name", row["activity"])
                _attr(event, "date", "time:timestamp", _xes_time(row["time"]))
                _attr(event, "date", "start_timestamp", _xes_time(row["ts"]))
                _attr(event, "string", "org:resource", row["source"])
                _attr(event, "string", "lifecycle:transition", "complete")
                for key, column in EVENT_STRINGS:
                    _attr(event, "string", key, row[column])
                _attr(event, "int", "seq", row["seq"])
                written += 1
        if trace is not None:
            out.write(ET.tostring(trace, encoding="unicode") + "\n")
        out.write("</log>\n")
    return written


def _xes_time(value: Any) -> str | None:
    """An ``xs:dateTime`` in UTC with microseconds (``2026-01-01T00:00:00.677727+00:00``)."""
    return None if value is None else value.isoformat(timespec="microseconds")
