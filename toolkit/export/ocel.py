"""OCEL 2.0, the object-centric event log standard (https://www.ocel-standard.org), as JSON or
in its SQLite layout.

An agent run is object-centric: one event is emitted by an agent, addressed to a tool or
another agent, carries a message (an idempotency key), belongs to an exchange (a correlation
id), a trace and a session. Each of those is an object; each event relates to its objects with
a qualifier, and the objects relate to the run they belong to.

Objects (type: id) and what relates to them:

======================  =========================================  ==============================
type                    id                                         qualifiers
======================  =========================================  ==============================
``trace``               ``trace/<trace_id>``                       event ``part-of``
``session``             ``session/<session_id>``                   event ``part-of``; trace ``part-of``
``agent``               ``<run>/agent/<source>``                   event ``emitted-by``, ``addressed-to``
``tool``                ``<run>/tool/<target>``                    event ``addressed-to`` (a target that is no agent of the run: a tool, a topic)
``message``             ``<run>/message/<idempotency_key>``        event ``carries``
``correlation``         ``<run>/correlation/<correlation_id>``     event ``correlated-by``
======================  =========================================  ==============================

``<run>`` is the id of the run's session object, or of its trace when the trace belongs to no
session: an agent, tool, message or exchange is one object per run (what ``planner`` did in
this run), related to it by ``part-of``; ids of traces and sessions have ``%`` and ``/``
percent-encoded, so every id reads back unambiguously. Event ids are ``<trace_id>/<event_id>``
(the trace id encoded the same way); an event's ``reacts_to`` and ``inside`` attributes hold
the event ids of its cause (``parent_id``) and enclosing span (``parent_span_id``).

Events are the distinct events in scope (a redelivery once), typed by the activity, at their
completion time (``time``; ``start_time`` holds the start of an event with a duration);
events without a time are left out (OCEL requires one). Attribute values are strings, as the
published OCEL 2.0 JSON schema requires; ``end``/``start`` times are declared ``time``.
Object attributes carry the time 1970-01-01T00:00:00Z (the specification's value for an
attribute's initial value).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Unpack

import duckdb

from toolkit.analyze.scope import Filters
from toolkit.db import query
from toolkit.export.log import Activity, events_sql, json_safe, stream

OBJECT_TYPES: dict[str, list[str]] = {
    "agent": ["name"],
    "tool": ["name"],
    "message": ["idempotency_key"],
    "correlation": ["correlation_id"],
    "trace": ["trace_id", "system", "task", "outcome"],
    "session": ["session_id", "system"],
}
# Event attributes: (name, OCEL type). Values are strings (the JSON schema's requirement).
EVENT_ATTRIBUTES: list[tuple[str, str]] = [
    ("event_id", "string"), ("trace_id", "string"), ("kind", "string"), ("name", "string"),
    ("source", "string"), ("target", "string"), ("status", "string"),
    ("start_time", "time"), ("reacts_to", "string"), ("inside", "string"),
    ("content", "string"),
]  # fmt: skip
INITIAL_TIME = "1970-01-01T00:00:00Z"


def _esc(column: str) -> str:
    """SQL percent-encoding ``%`` and ``/`` in an id component (so ``/`` separates)."""
    return f"replace(replace({column}, '%', '%25'), '/', '%2F')"


def _iso(column: str) -> str:
    return f"strftime(timezone('UTC', {column}), '%Y-%m-%dT%H:%M:%S.%fZ')"


def _base_sql(activity: Activity, filters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """CTEs ``ev`` (events with a time, their OCEL ids and run), ``agents`` (per run)."""
    log, params = events_sql(activity=activity, **filters)
    run = (
        f"CASE WHEN session_id IS NULL THEN 'trace/' || {_esc('trace_id')} "
        f"ELSE 'session/' || {_esc('session_id')} END"
    )
    sql = f"""
        WITH log AS ({log}),
        ev AS (
            SELECT *, {run} AS run, 'trace/' || {_esc("trace_id")} AS trace_oid,
                   'session/' || {_esc("session_id")} AS session_oid,
                   {_esc("trace_id")} || '/' || event_id AS oid
            FROM log WHERE time IS NOT NULL
        ),
        agents AS (SELECT DISTINCT run, source AS name FROM ev WHERE source IS NOT NULL)"""
    return sql, params


def _events_sql(activity: Activity, filters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """One row per OCEL event: id, type, time, attribute values, relationships (a list)."""
    base, params = _base_sql(activity, filters)
    sql = f"""{base}
        SELECT e.oid AS id, e.activity AS type, {_iso("e.time")} AS time,
               e.event_id, e.trace_id, e.kind, e.name, e.source, e.target, e.status,
               CASE WHEN e.end_ts IS NOT NULL THEN {_iso("e.ts")} END AS start_time,
               CASE WHEN e.parent_id IS NOT NULL
                    THEN {_esc("e.trace_id")} || '/' || e.parent_id END AS reacts_to,
               CASE WHEN e.parent_span_id IS NOT NULL
                    THEN {_esc("e.trace_id")} || '/' || e.parent_span_id END AS inside,
               e.content,
               list_filter([
                   {{'objectId': e.run || '/agent/' || e.source, 'qualifier': 'emitted-by'}},
                   {{'objectId': e.run || CASE WHEN a.name IS NOT NULL THEN '/agent/'
                                              ELSE '/tool/' END || e.target,
                     'qualifier': 'addressed-to'}},
                   {{'objectId': e.run || '/message/' || e.idempotency_key,
                     'qualifier': 'carries'}},
                   {{'objectId': e.run || '/correlation/' || e.correlation_id,
                     'qualifier': 'correlated-by'}},
                   {{'objectId': e.trace_oid, 'qualifier': 'part-of'}},
                   {{'objectId': e.session_oid, 'qualifier': 'part-of'}}
               ], lambda r: r.objectId IS NOT NULL) AS relationships
        FROM ev e LEFT JOIN agents a ON a.run = e.run AND a.name = e.target
        ORDER BY e.time, e.trace_id, e.seq, e.event_id"""
    return sql, params


def _objects_sql(activity: Activity, filters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """One row per object: id, type, its attribute values (in :data:`OBJECT_TYPES` order)
    as ``a0``..``a3``, and the id it is ``part-of`` (``parent``), if any."""
    base, params = _base_sql(activity, filters)
    sql = f"""{base}
        SELECT * FROM (
            SELECT DISTINCT run || '/agent/' || source AS id, 'agent' AS type, source AS a0,
                   NULL AS a1, NULL AS a2, NULL AS a3, run AS parent
            FROM ev WHERE source IS NOT NULL
            UNION
            SELECT DISTINCT e.run || '/tool/' || e.target, 'tool', e.target, NULL, NULL, NULL,
                   e.run
            FROM ev e ANTI JOIN agents a ON a.run = e.run AND a.name = e.target
            WHERE e.target IS NOT NULL
            UNION
            SELECT DISTINCT run || '/message/' || idempotency_key, 'message', idempotency_key,
                   NULL, NULL, NULL, run
            FROM ev WHERE idempotency_key IS NOT NULL
            UNION
            SELECT DISTINCT run || '/correlation/' || correlation_id, 'correlation',
                   correlation_id, NULL, NULL, NULL, run
            FROM ev WHERE correlation_id IS NOT NULL
            UNION
            SELECT trace_oid, 'trace', trace_id, any_value(system), any_value(task),
                   any_value(outcome), any_value(session_oid)
            FROM ev GROUP BY trace_oid, trace_id
            UNION
            SELECT session_oid, 'session', session_id, any_value(system), NULL, NULL, NULL
            FROM ev WHERE session_id IS NOT NULL GROUP BY session_oid, session_id
        ) ORDER BY type, id"""
    return sql, params


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> Iterator[dict]:
    for batch in stream(con, sql, params):
        yield from batch.to_pylist()


def _event_json(row: dict[str, Any]) -> dict[str, Any]:
    attributes = [
        {"name": name, "value": row[name]} for name, _ in EVENT_ATTRIBUTES if row[name] is not None
    ]
    return {"id": row["id"], "type": row["type"], "time": row["time"],
            "attributes": attributes, "relationships": row["relationships"]}  # fmt: skip


def _object_json(row: dict[str, Any]) -> dict[str, Any]:
    names = OBJECT_TYPES[row["type"]]
    values = [row[f"a{i}"] for i in range(len(names))]
    return {
        "id": row["id"],
        "type": row["type"],
        "attributes": [
            {"name": n, "value": v, "time": INITIAL_TIME}
            for n, v in zip(names, values, strict=True)
            if v is not None
        ],
        "relationships": (
            [{"objectId": row["parent"], "qualifier": "part-of"}] if row["parent"] else []
        ),
    }


def _dump(value: Any) -> str:
    # Lone surrogates cannot be written as UTF-8; everything else json escapes.
    return json_safe(json.dumps(value, ensure_ascii=False))


def _event_types(
    con: duckdb.DuckDBPyConnection, activity: Activity, filters: dict[str, Any]
) -> list[str]:
    base, params = _base_sql(activity, filters)
    return list(query(con, f"{base} SELECT DISTINCT activity FROM ev ORDER BY 1", **params)
                ["activity"])  # fmt: skip


def export_ocel(
    con: duckdb.DuckDBPyConnection, path: str | Path, *, activity: Activity = "type",
    format: str | None = None, **filters: Unpack[Filters],
) -> int:  # fmt: skip
    """Write the events in scope as an OCEL 2.0 object-centric event log.

    See the module documentation for the objects (agents, tools, messages, correlations,
    traces, sessions) and the qualifiers relating events to them.

    Args:
        con: the connection.
        path: the file to write: ``.json`` (OCEL 2.0 JSON) or ``.sqlite`` / ``.db`` (the
            OCEL 2.0 SQLite layout); it replaces an existing file only once complete.
        activity: the event type: ``"type"``, ``"name"`` or ``"source_type"`` (as in
            :func:`toolkit.to_pm4py`).
        format: ``"json"`` or ``"sqlite"``; ``None`` takes it from the suffix.
        **filters: ``trace_id``, ``system``, ``start``, ``end``.

    Returns:
        The number of events written (events without a time are left out).

    Raises:
        ValueError: the format is neither given nor told by the suffix.
    """
    path = Path(path)
    if format is None:
        format = {".json": "json", ".jsonocel": "json", ".sqlite": "sqlite", ".db": "sqlite",
                  ".sqlite3": "sqlite"}.get(path.suffix.lower())  # fmt: skip
    if format not in ("json", "sqlite"):
        raise ValueError(
            f"cannot tell the OCEL format of {path}: name it .json or .sqlite, "
            "or pass format='json' or 'sqlite'"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.unlink(missing_ok=True)
    try:
        write = _write_json if format == "json" else _write_sqlite
        written = write(con, partial, activity, dict(filters))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return written


def _write_json(
    con: duckdb.DuckDBPyConnection, path: Path, activity: Activity, filters: dict[str, Any]
) -> int:
    event_types = _event_types(con, activity, filters)
    written = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write('{\n"objectTypes": ')
        out.write(_dump([{"name": t, "attributes": [{"name": a, "type": "string"} for a in attrs]}
                         for t, attrs in OBJECT_TYPES.items()]))  # fmt: skip
        out.write(',\n"eventTypes": ')
        declared = [{"name": a, "type": kind} for a, kind in EVENT_ATTRIBUTES]
        out.write(_dump([{"name": t, "attributes": declared} for t in event_types]))
        out.write(',\n"objects": [')
        sep = "\n"
        for row in _rows(con, *_objects_sql(activity, filters)):
            out.write(sep + _dump(_object_json(row)))
            sep = ",\n"
        out.write('\n],\n"events": [')
        sep = "\n"
        for row in _rows(con, *_events_sql(activity, filters)):
            out.write(sep + _dump(_event_json(row)))
            sep = ",\n"
            written += 1
        out.write("\n]\n}\n")
    return written


def _map_names(types: list[str]) -> dict[str, str]:
    """Each type's ``ocel_type_map``: its letters and digits (the table-name suffix), made
    unique."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for i, t in enumerate(types):
        base = re.sub(r"[^0-9A-Za-z]", "", t) or f"type{i}"
        name, n = base, 2
        while name.lower() in used:  # SQLite table names are case-insensitive
            name, n = f"{base}_{n}", n + 1
        used.add(name.lower())
        names[t] = name
    return names


def _sqlite_time(iso: str | None) -> str | None:
    """``2026-01-01T00:00:00.677727Z`` as SQLite's own form, ``2026-01-01 00:00:00.677727``
    (UTC, as SQLite's date functions assume)."""
    return None if iso is None else iso.replace("T", " ").removesuffix("Z")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _clean(value: Any) -> Any:
    return json_safe(value) if isinstance(value, str) else value


def _write_sqlite(
    con: duckdb.DuckDBPyConnection, path: Path, activity: Activity, filters: dict[str, Any]
) -> int:
    event_maps = _map_names(_event_types(con, activity, filters))
    object_maps = _map_names(list(OBJECT_TYPES))
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.executescript("""
            CREATE TABLE event (ocel_id TEXT PRIMARY KEY, ocel_type TEXT);
            CREATE TABLE object (ocel_id TEXT PRIMARY KEY, ocel_type TEXT);
            CREATE TABLE event_object (ocel_event_id TEXT, ocel_object_id TEXT,
                ocel_qualifier TEXT,
                PRIMARY KEY (ocel_event_id, ocel_object_id, ocel_qualifier));
            CREATE TABLE object_object (ocel_source_id TEXT, ocel_target_id TEXT,
                ocel_qualifier TEXT,
                PRIMARY KEY (ocel_source_id, ocel_target_id, ocel_qualifier));
            CREATE TABLE event_map_type (ocel_type TEXT PRIMARY KEY, ocel_type_map TEXT);
            CREATE TABLE object_map_type (ocel_type TEXT PRIMARY KEY, ocel_type_map TEXT);
        """)
        db.executemany("INSERT INTO event_map_type VALUES (?, ?)", event_maps.items())
        db.executemany("INSERT INTO object_map_type VALUES (?, ?)", object_maps.items())
        event_columns = [name for name, _ in EVENT_ATTRIBUTES]
        for table in event_maps.values():
            cols = ", ".join(f"{_q(c)} {'TIMESTAMP' if k == 'time' else 'TEXT'}"
                             for c, k in EVENT_ATTRIBUTES)  # fmt: skip
            db.execute(f"CREATE TABLE {_q('event_' + table)} "
                       f"(ocel_id TEXT PRIMARY KEY, ocel_time TIMESTAMP, {cols})")  # fmt: skip
        for t, table in object_maps.items():
            cols = ", ".join(f"{_q(c)} TEXT" for c in OBJECT_TYPES[t])
            db.execute(f"CREATE TABLE {_q('object_' + table)} "
                       f"(ocel_id TEXT, ocel_time TIMESTAMP, ocel_changed_field TEXT, {cols})")  # fmt: skip

        for row in _rows(con, *_objects_sql(activity, filters)):
            names = OBJECT_TYPES[row["type"]]
            db.execute("INSERT INTO object VALUES (?, ?)", (_clean(row["id"]), row["type"]))
            values = [_clean(row[f"a{i}"]) for i in range(len(names))]
            db.execute(
                f"INSERT INTO {_q('object_' + object_maps[row['type']])} "
                f"VALUES (?, ?, NULL, {', '.join('?' * len(names))})",
                [_clean(row["id"]), _sqlite_time(INITIAL_TIME), *values],
            )
            if row["parent"]:
                db.execute("INSERT INTO object_object VALUES (?, ?, 'part-of')",
                           (_clean(row["id"]), _clean(row["parent"])))  # fmt: skip
        written = 0
        placeholders = ", ".join("?" * (len(event_columns) + 2))
        for batch in stream(con, *_events_sql(activity, filters)):
            events, e2o = [], []
            per_type: dict[str, list[list[Any]]] = {}
            for row in batch.to_pylist():
                oid = _clean(row["id"])
                events.append((oid, _clean(row["type"])))
                values = [
                    _sqlite_time(row[c]) if kind == "time" else _clean(row[c])
                    for c, kind in EVENT_ATTRIBUTES
                ]
                per_type.setdefault(row["type"], []).append(
                    [oid, _sqlite_time(row["time"]), *values]
                )
                e2o += [(oid, _clean(r["objectId"]), r["qualifier"]) for r in row["relationships"]]
            db.executemany("INSERT INTO event VALUES (?, ?)", events)
            for t, rows in per_type.items():
                db.executemany(
                    f"INSERT INTO {_q('event_' + event_maps[t])} VALUES ({placeholders})", rows
                )
            db.executemany("INSERT OR IGNORE INTO event_object VALUES (?, ?, ?)", e2o)
            written += len(events)
        db.commit()
    finally:
        db.close()
    return written
