"""What every format reader shares: the staging tables, record identity and the merge.

A reader fills temporary *stage* tables (``stage_events``, ``stage_traces``,
``stage_annotations``, ``stage_rejects``); :func:`merge_stage` moves them into the canonical
tables, skipping records already there. ``toolkit.ingest`` wraps both in one transaction per file,
so a file is loaded whole or not at all.

Record identity (what makes ingest idempotent):

* an **event** is ``(trace_id, source, event_id, occurrence)``, where ``occurrence`` counts the
  records with the same ``(trace_id, source, event_id)`` before it in the same file. CloudEvents
  identifies an event by ``source`` + ``id``; the occurrence keeps a redelivery that the file
  records twice (the duplicates analysis finds it), while the same records arriving again, in
  the same or another file, add nothing.
* an **annotation** is ``(trace_id, mode, annotator, evidence)``.
* a **trace** is its ``trace_id``; a later file fills in ``system``/``task``/``outcome`` left empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from toolkit.analyze import derived
from toolkit.ingest import span_tree


@dataclass(frozen=True)
class Format:
    """A trace format: its name, how to recognise it from the first bytes, how to read it.

    ``sniff`` is given the file's first 64 KiB without a BOM or leading white space.
    """

    name: str
    sniff: Callable[[bytes], bool]
    read: Callable[[duckdb.DuckDBPyConnection, Path], None]


STAGE_COLUMNS: dict[str, dict[str, str]] = {
    "events": {
        "trace_id": "VARCHAR",
        "event_id": "VARCHAR",
        "parent_id": "VARCHAR",
        "type": "VARCHAR",
        "source": "VARCHAR",
        "target": "VARCHAR",
        "ts": "TIMESTAMPTZ",
        "end_ts": "TIMESTAMPTZ",
        "status": "VARCHAR",
        "idempotency_key": "VARCHAR",
        "correlation_id": "VARCHAR",
        "content": "VARCHAR",
        "attrs": "JSON",
        "seq": "BIGINT",
        "origin": "VARCHAR",
        "ord": "BIGINT",  # order of the record in its file: occurrence and default seq follow it
        "kind": "VARCHAR",  # span / span_event / message / event (NULL: event)
        "parent_span_id": "VARCHAR",  # containment; parent_id is causation only
        "name": "VARCHAR",
    },
    "traces": {
        "trace_id": "VARCHAR",
        "system": "VARCHAR",
        "task": "VARCHAR",
        "outcome": "VARCHAR",
        "attrs": "JSON",
        "session_id": "VARCHAR",
    },
    "annotations": {
        "trace_id": "VARCHAR",
        "mode": "VARCHAR",
        "annotator": "VARCHAR",
        "confidence": "DOUBLE",
        "evidence": "JSON",
        "origin": "VARCHAR",
    },
    "rejects": {"origin": "VARCHAR", "reason": "VARCHAR", "record": "VARCHAR"},
}
_JSON_COLUMNS = {"attrs", "evidence"}


def create_stage(con: duckdb.DuckDBPyConnection) -> None:
    """Create (or empty) the temporary stage tables."""
    for table, columns in STAGE_COLUMNS.items():
        cols = ", ".join(f"{name} {kind}" for name, kind in columns.items())
        con.execute(f"CREATE OR REPLACE TEMP TABLE stage_{table} ({cols})")


def drop_stage(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the stage tables and the raw records."""
    for table in (*STAGE_COLUMNS, "raw", "known"):
        con.execute(f"DROP TABLE IF EXISTS stage_{table}")
    con.execute("DROP TABLE IF EXISTS raw_records")


class IngestError(ValueError):
    """A file that cannot be read at all (missing, not a regular file, unreadable, not the
    format asked for at the level of the whole file). The message names the file and the problem.

    ``toolkit.ingest`` raises nothing else: a record that cannot be converted is a reject.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class NoSuchPathError(IngestError, FileNotFoundError):
    """A path, folder or glob that names nothing (also a ``FileNotFoundError``)."""

    def __str__(self) -> str:
        return f"{self.problem}: {self.path}"


class RecordError(ValueError):
    """A record that cannot be converted; its message is the reason its reject carries."""


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT_TYPES = {"VARCHAR"}


def _text(value: Any) -> str:
    """Any JSON value as text for a VARCHAR column: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _cell(column: str, kind: str, value: Any) -> Any:
    if value is None:
        return None
    if column in _JSON_COLUMNS:
        return (
            value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        )
    if isinstance(value, datetime):
        return value.isoformat()
    if kind in _TEXT_TYPES:
        # A reader may pass a value straight from the file: a number or object where text is
        # expected is kept as its JSON text rather than failing the whole batch.
        return _text(value)
    if kind == "BIGINT":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if kind == "DOUBLE":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok else None
    return value


def _clean_text(value: Any) -> Any:
    """``value`` with lone surrogates (from JSON escapes like ``\\ud800``) replaced by U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


def stage_rows(
    con: duckdb.DuckDBPyConnection, table: str, rows: Iterable[Mapping[str, Any]]
) -> int:
    """Append Python rows (dicts keyed by column name) to ``stage_<table>``.

    Missing keys are NULL; ``attrs``/``evidence`` may be any JSON-serialisable value; ``ts`` and
    ``end_ts`` may be ``datetime`` or ISO 8601 strings; other text columns take any JSON value
    (non-strings are stored as their JSON text). Lone surrogates, which UTF-8 cannot carry,
    become U+FFFD. For events, ``ord`` defaults to the row's position. Returns the number of
    rows staged.
    """
    columns = STAGE_COLUMNS[table]
    rows = list(rows)
    if not rows:
        return 0
    data: dict[str, list[Any]] = {c: [] for c in columns}
    for i, row in enumerate(rows):
        unknown = set(row) - set(columns)
        if unknown:
            raise KeyError(f"stage_{table} has no column(s) {sorted(unknown)}")
        for c, kind in columns.items():
            data[c].append(_cell(c, kind, row.get(c)))
        if table == "events" and data["ord"][-1] is None:
            data["ord"][-1] = i
    arrow_types = {"BIGINT": pa.int64(), "DOUBLE": pa.float64()}
    arrays = {}
    for c, v in data.items():
        kind = arrow_types.get(columns[c], pa.string())
        try:
            arrays[c] = pa.array(v, type=kind)
        except (UnicodeEncodeError, pa.ArrowException):
            arrays[c] = pa.array([_clean_text(x) for x in v], type=kind)
    con.register("_stage_rows", pa.table(arrays))
    try:
        con.execute(f"INSERT INTO stage_{table} BY NAME SELECT * FROM _stage_rows")
    finally:
        con.unregister("_stage_rows")
    return len(rows)


class Rejects:
    """Rejected records collected by a Python reader and staged in one batch by :meth:`flush`
    (one INSERT per file, not per record)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.rows: list[dict[str, Any]] = []

    def add(self, origin: str, reason: str, record: Any) -> None:
        """Collect one reject; ``record`` is its raw text (any other value is dumped as JSON)."""
        text = record if record is None or isinstance(record, str) else _dump(record)
        self.rows.append({"origin": origin, "reason": reason, "record": text})

    def flush(self) -> None:
        """Stage the collected rejects."""
        stage_rows(self.con, "rejects", self.rows)
        self.rows = []


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (RecursionError, ValueError):
        return repr(value)[:10000]


def reject(con: duckdb.DuckDBPyConnection, origin: str, reason: str, record: str | None) -> None:
    """Stage one rejected record."""
    stage_rows(con, "rejects", [{"origin": origin, "reason": reason, "record": record}])


def merge_stage(
    con: duckdb.DuckDBPyConnection,
    file_hash: str | None = None,
    *,
    per_request: bool = False,
    recompute: list[str] | None = None,
    unstored: list[str] | None = None,
    derive: bool = True,
) -> tuple[int, int]:
    """Move the staged rows into the canonical tables; return ``(events added, rejected)``.

    Records whose identity is already in the database are skipped (see the module docstring).
    ``per_request``: the stage holds several requests (the live receiver's batch, origins
    ``<prefix><n>#<k>``), each counted as its own file: occurrences count within a request
    (the part of ``origin`` before ``#``), and a record staged by two requests is added once.
    ``recompute``: traces whose staged fields were derived from all their spans (the live
    receiver maps a trace again as its spans arrive): their staged values replace the stored
    ones where they say something, instead of only filling empty ones.
    ``unstored``: traces the caller knows to hold no stored event (the live writer has just
    replaced their rows): the identity check does not read ``events`` for them.
    ``derive=False``: leave the analyses' derived tables to the caller (the live writer
    refreshes them once for several batches).
    """
    # occurrence: 0 for most records; only repeated (trace, source, id) in this file need counting
    unit = "split_part(origin, '#', 1)" if per_request else "''"
    keyed = f"""
        WITH repeated AS (
            SELECT trace_id, source, event_id, {unit} AS unit, list(ord ORDER BY ord) AS ords
            FROM stage_events GROUP BY ALL HAVING count(*) > 1
        )
        SELECT s.* EXCLUDE (seq, ord, kind), coalesce(s.seq, s.ord) AS seq,
               coalesce(s.kind, 'event') AS kind,
               md5(concat_ws(chr(31), s.trace_id, coalesce(s.source, ''), s.event_id,
                   coalesce(list_position(r.ords, s.ord) - 1, 0)::VARCHAR)) AS record_key
        FROM stage_events s LEFT JOIN repeated r
            ON r.trace_id = s.trace_id AND r.event_id = s.event_id
           AND r.source IS NOT DISTINCT FROM s.source AND r.unit = {unit.replace("origin", "s.origin")}
    """
    if per_request:
        keyed = f"SELECT * FROM ({keyed}) QUALIFY row_number() OVER (PARTITION BY record_key ORDER BY seq) = 1"
    # A record can only be stored already when its trace is: the identity check reads the
    # stored events of the staged traces that are known (none, for a file of new runs), so
    # its cost follows the new data, not the database.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE stage_known AS
        SELECT DISTINCT trace_id FROM stage_events
        WHERE trace_id IN (SELECT trace_id FROM traces) AND NOT list_contains($unstored, trace_id)
        """,
        {"unstored": unstored or []},
    )
    if con.execute("SELECT count(*) FROM stage_known").fetchall()[0][0]:
        keyed = f"""SELECT * FROM ({keyed}) n WHERE NOT EXISTS (
            SELECT 1 FROM events e WHERE e.trace_id IN (SELECT trace_id FROM stage_known)
            AND e.record_key = n.record_key)"""
    # rows appended from here on: the derived tables read the new traces' events by rowid
    first_rowid = con.execute("SELECT coalesce(max(rowid) + 1, 0) FROM events").fetchall()[0][0]
    added = con.execute(f"INSERT INTO events BY NAME {keyed}").fetchall()[0][0]
    con.execute("""
        INSERT INTO traces BY NAME
        SELECT trace_id, any_value(system) AS system, any_value(task) AS task,
               any_value(outcome) AS outcome, any_value(attrs) AS attrs,
               any_value(session_id) AS session_id
        FROM (SELECT * FROM stage_traces
              UNION ALL BY NAME SELECT DISTINCT trace_id FROM stage_events)
        GROUP BY trace_id
        ON CONFLICT (trace_id) DO UPDATE SET
            system = coalesce(traces.system, excluded.system),
            task = coalesce(traces.task, excluded.task),
            outcome = coalesce(traces.outcome, excluded.outcome),
            attrs = coalesce(traces.attrs, excluded.attrs),
            session_id = coalesce(traces.session_id, excluded.session_id)
    """)
    if recompute:
        con.execute(
            """
            UPDATE traces t SET system = coalesce(s.system, t.system),
                task = coalesce(s.task, t.task), outcome = coalesce(s.outcome, t.outcome),
                session_id = coalesce(s.session_id, t.session_id)
            FROM (SELECT trace_id, any_value(system) AS system, any_value(task) AS task,
                         any_value(outcome) AS outcome, any_value(session_id) AS session_id
                  FROM stage_traces WHERE list_contains($ids, trace_id) GROUP BY trace_id) s
            WHERE s.trace_id = t.trace_id
            """,
            {"ids": recompute},
        )
    linked = con.execute(
        "SELECT count(*) FROM stage_events WHERE kind IN ('span', 'message') "
        "AND attrs->>'$.parent_trace_id' IS NOT NULL"
    ).fetchall()[0][0]
    if linked:
        span_tree.link_sessions(con)
    merge_annotations(con)
    rejected = con.execute(
        "INSERT INTO rejects SELECT origin, reason, record, $h FROM stage_rejects", {"h": file_hash}
    ).fetchall()[0][0]
    if derive:
        derived.refresh(con, "SELECT trace_id FROM stage_events", first_rowid=first_rowid)
    return int(added), int(rejected)


def merge_annotations(con: duckdb.DuckDBPyConnection) -> int:
    """Move ``stage_annotations`` into ``annotations``, skipping ones already there."""
    added = con.execute("""
        INSERT INTO annotations BY NAME
        SELECT * FROM (
            SELECT DISTINCT s.*, md5(concat_ws(chr(31), trace_id, mode, annotator,
                                               coalesce(evidence::VARCHAR, ''))) AS record_key
            FROM stage_annotations s
        ) n
        WHERE NOT EXISTS (SELECT 1 FROM annotations a WHERE a.record_key = n.record_key)
    """).fetchall()[0][0]
    con.execute("DELETE FROM stage_annotations")
    return int(added)
