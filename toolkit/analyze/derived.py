"""The derived tables every analysis starts from, kept in the database and maintained at ingest.

``_toolkit_uev``: one row per distinct event (a redelivery is recorded twice but is one event)
with 64-bit keys, the attributes the analyses read, whether some event reacts to it
(``is_handled``) and how many of its trace's events come after it (``after``).
``_toolkit_edge``: child -> parent edges, ``causes`` and ``contains``.
``_toolkit_trace``: per trace, the system and session the rows above carry and its record count.
``_toolkit_state``: the events' count and a checksum of the traces' systems and sessions when
the tables were last made right.

:func:`refresh` rebuilds the rows of the traces an ingest touched (``merge_stage`` calls it);
:func:`ensure` (before every analysis) checks the state cheaply and repairs whatever changed
behind the toolkit's back (a trace's system or session, events written by other means); a
read-only connection on a database without current tables gets temporary ones.

The SQL is written for DuckDB and, transpiled, for Spark (``toolkit.spark``): ``min`` instead of
``any_value`` (the same copy on every engine), one JSON path per call.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable
from typing import Any

import duckdb

from toolkit.db import execute, quote_identifier

TABLES = ("_toolkit_uev", "_toolkit_edge", "_toolkit_trace", "_toolkit_state")

# {scope}: a condition on ``e.trace_id`` (the traces to build), or ``true``.
UEV_SQL = """
    -- k / pk / sk: 64-bit keys of (trace, event), of its parent and of its enclosing span:
    -- joins on one integer instead of two strings (a collision among 10M events has odds of
    -- about 1e-6)
    WITH rec AS (
        SELECT hash(trace_id, event_id) AS k, trace_id, event_id,
               CASE WHEN parent_id IS NOT NULL
                    THEN hash(coalesce(parent_trace_id, trace_id), parent_id) END AS pk,
               CASE WHEN parent_span_id IS NOT NULL THEN hash(trace_id, parent_span_id) END AS sk,
               parent_id, parent_span_id, coalesce(kind, 'event') AS kind, name, type, source,
               target, ts, end_ts, status, idempotency_key, seq, sys, session,
               try_cast(timeoutms AS DOUBLE) AS timeout_ms, parent_trace_id, sequence, reason
        FROM (SELECT e.*, coalesce(t.system, '') AS sys,
                     coalesce(t.session_id, e.trace_id) AS session,
                     -- the few attributes the analyses read, parsed once (attrs stays behind)
                     json_extract_string(e.attrs, '$.timeoutms') AS timeoutms,
                     json_extract_string(e.attrs, '$.parent_trace_id') AS parent_trace_id,
                     json_extract_string(e.attrs, '$.sequence') AS sequence,
                     json_extract_string(e.attrs, '$.reason') AS reason
              FROM events e LEFT JOIN traces t ON t.trace_id = e.trace_id WHERE {scope})
    ),
    -- most events are recorded once: only the repeated ones need aggregating
    repeated AS (SELECT k FROM rec GROUP BY k HAVING count(*) > 1),
    one AS (
        SELECT k, trace_id, event_id, pk, sk, parent_id, parent_span_id, kind, name, type, source,
               target, ts, end_ts, status, idempotency_key, seq, 1 AS records, sys, session,
               timeout_ms, parent_trace_id, sequence, reason
        FROM rec WHERE k NOT IN (SELECT k FROM repeated)
        UNION ALL
        SELECT k, min(trace_id), min(event_id), min(pk), min(sk), min(parent_id),
               min(parent_span_id), min(kind), min(name), min(type), min(source), min(target),
               min(ts), max(end_ts), min(status), min(idempotency_key), min(seq), count(*),
               min(sys), min(session), min(timeout_ms), min(parent_trace_id), min(sequence),
               min(reason)
        FROM rec WHERE k IN (SELECT k FROM repeated) GROUP BY k
    )
    -- after: how many events of its trace come after it (0 = the trace's last event, by time
    -- then source order); is_handled is set once the edges are in
    SELECT *, false AS is_handled,
           row_number() OVER (PARTITION BY trace_id ORDER BY ts DESC, seq DESC) - 1 AS after
    FROM one"""

# edges child -> parent: causation (``causes``: the child reacts to the parent, in its own
# trace or across a link) and containment (``contains``: the child span is part of the
# parent's work), one row each; the event-flow detectors read causation only
EDGE_SQL = """
    SELECT c.pk, c.k AS ck, 'causes' AS relation, coalesce(c.parent_trace_id, c.trace_id) AS p_trace,
           c.parent_id AS p_id, c.trace_id AS c_trace, c.event_id AS c_id,
           c.source AS c_source, c.type AS c_type, c.kind AS c_kind, c.ts AS c_ts,
           c.status AS c_status
    FROM {uev} c WHERE c.parent_id IS NOT NULL AND {scope}
    UNION ALL
    SELECT c.sk, c.k, 'contains', c.trace_id, c.parent_span_id, c.trace_id, c.event_id,
           c.source, c.type, c.kind, c.ts, c.status
    FROM {uev} c
    WHERE c.parent_span_id IS NOT NULL AND c.sk IS DISTINCT FROM c.pk AND {scope}"""

# each edge with what the analyses read of its parent (``p_kind`` NULL: the parent is not
# recorded), so that flow, latency and ordering need no join back to the events
PARENT_SQL = """
    SELECT e.*, p.kind AS p_kind, p.type AS p_type, p.source AS p_source, p.ts AS p_ts
    FROM ({edges}) e LEFT JOIN {uev} p ON p.k = e.pk"""

TRACE_SQL = """
    SELECT t.trace_id, coalesce(t.system, '') AS sys, coalesce(t.session_id, t.trace_id) AS session,
           coalesce(n.records, 0) AS records
    FROM traces t LEFT JOIN (SELECT trace_id, count(*) AS records FROM events GROUP BY trace_id) n
        ON n.trace_id = t.trace_id
    WHERE {scope}"""

# The shape of the tables above: a database whose tables an older toolkit made (another
# version) gets them rebuilt.
VERSION = 2

STATE_SQL = f"""
    SELECT {VERSION} AS version, (SELECT count(*) FROM events) AS n,
           (SELECT coalesce(bit_xor(hash(trace_id, coalesce(system, ''),
                                         coalesce(session_id, trace_id))), 0) FROM traces) AS s"""


def _exists(con: duckdb.DuckDBPyConnection, *, temporary: bool = False) -> bool:
    where = "database_name = 'temp'" if temporary else "database_name = current_database()"
    rows = execute(
        con,
        f"SELECT count(*) FROM duckdb_tables() WHERE {where} AND schema_name = 'main' AND "
        "table_name IN ('_toolkit_uev', '_toolkit_edge', '_toolkit_trace', '_toolkit_state')",
    )
    return rows[0][0] == len(TABLES)


def _main(con: duckdb.DuckDBPyConnection) -> str:
    """The database's own schema, qualified (a temporary table of the same name would shadow
    an unqualified one)."""
    return quote_identifier(execute(con, "SELECT current_database()")[0][0]) + ".main"


def _read_only(con: duckdb.DuckDBPyConnection) -> bool:
    rows = execute(
        con, "SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()"
    )
    return bool(rows and rows[0][0])


def _version(con: duckdb.DuckDBPyConnection, m: str) -> int | None:
    """The version of the derived tables in schema ``m`` (``None``: made before versions)."""
    try:
        return execute(con, f"SELECT version FROM {m}._toolkit_state")[0][0]
    except duckdb.BinderException:  # no such column: tables an older toolkit made
        return None


# Events per part of a full build: the per-trace window and the join to the parents hold
# one part at a time (a 7.75M-event build in one part went 0.5 GB past a 1 GB memory limit).
BUILD_PART_EVENTS = 2_000_000


def build(
    con: duckdb.DuckDBPyConnection,
    *,
    temporary: bool = False,
    part_events: int = BUILD_PART_EVENTS,
) -> None:
    """Build the derived tables from all events (persistent, or temporary for this connection).

    A large database is built in parts of about ``part_events`` events, whole traces each
    (by a hash of the trace id), so that memory follows the part, not the database.
    """
    m = "temp.main" if temporary else _main(con)
    table = "TEMP TABLE" if temporary else "TABLE"
    n_events = execute(con, "SELECT count(*) FROM events")[0][0]
    parts = max(1, -(-n_events // part_events))

    def into(name: str, part: int) -> str:
        return (
            f"CREATE OR REPLACE {table} {m}.{name} AS" if part == 0 else f"INSERT INTO {m}.{name}"
        )

    def of_part(alias: str, part: int) -> str:  # whole traces: the window needs all of one
        return "true" if parts == 1 else f"hash({alias}.trace_id) % {parts} = {part}"

    for part in range(parts):
        execute(con, f"{into('_toolkit_uev', part)} {UEV_SQL.format(scope=of_part('e', part))}")
    for part in range(parts):
        edges = EDGE_SQL.format(uev=f"{m}._toolkit_uev", scope=of_part("c", part))
        execute(con, f"{into('_toolkit_edge', part)} "
                     + PARENT_SQL.format(edges=edges, uev=f"{m}._toolkit_uev"))  # fmt: skip
    execute(con, f"""
        UPDATE {m}._toolkit_uev u SET is_handled = true
        FROM (SELECT DISTINCT pk FROM {m}._toolkit_edge WHERE relation = 'causes') h
        WHERE h.pk = u.k""")  # fmt: skip
    execute(
        con, f"CREATE OR REPLACE {table} {m}._toolkit_trace AS {TRACE_SQL.format(scope='true')}"
    )
    execute(con, f"CREATE OR REPLACE {table} {m}._toolkit_state AS {STATE_SQL}")


def refresh(
    con: duckdb.DuckDBPyConnection, traces: str | None = None, *, first_rowid: int | None = None
) -> None:
    """Make the derived tables right again for the traces that changed.

    Changed: the traces ``traces`` (a SELECT of ``trace_id``s, e.g. the ones an ingest staged),
    those whose system or session is not what the tables carry, and those whose record count
    differs. Their rows are rebuilt; ``is_handled`` is recomputed for them and for the traces
    their events react to (across links). Without the tables, they are built from scratch.

    ``first_rowid``: every event of a trace that had none before has a ``rowid`` from this one
    on (ingest passes the table's end before its insert). The work is then proportional to
    the new events: their rows are read by ``rowid`` range, and only the traces that already
    had events are looked up by ``trace_id``.
    """
    if not _exists(con):
        build(con)
        return
    m = _main(con)
    execute(con, "CREATE OR REPLACE TEMP TABLE _toolkit_changed (trace_id VARCHAR)")
    if traces is not None:
        execute(con, f"INSERT INTO _toolkit_changed SELECT DISTINCT trace_id FROM ({traces})")
    if _version(con, m) != VERSION:
        build(con)
        return
    _, n_events, state = execute(con, STATE_SQL)[0]
    # the checksum the traces would have if only the changed ones had changed
    expected = execute(con, f"""
        SELECT xor(xor(s, coalesce((SELECT bit_xor(hash(trace_id, sys, session))
                                    FROM {m}._toolkit_trace WHERE trace_id IN
                                        (SELECT trace_id FROM _toolkit_changed)), 0)),
                   coalesce((SELECT bit_xor(hash(trace_id, coalesce(system, ''),
                                                 coalesce(session_id, trace_id)))
                             FROM traces WHERE trace_id IN
                                 (SELECT trace_id FROM _toolkit_changed)), 0))
        FROM {m}._toolkit_state""")[0][0]  # fmt: skip
    if state != expected:  # a system or session changed elsewhere (a link joined two runs, say)
        execute(con, f"""
            INSERT INTO _toolkit_changed SELECT trace_id FROM ({TRACE_SQL.format(scope="true")}) t
            WHERE NOT EXISTS (SELECT 1 FROM {m}._toolkit_trace d WHERE d.trace_id = t.trace_id
                              AND d.sys = t.sys AND d.session = t.session)""")  # fmt: skip
    execute(con, "CREATE OR REPLACE TEMP TABLE _toolkit_changed AS "
                 "SELECT DISTINCT trace_id FROM _toolkit_changed")  # fmt: skip
    if execute(con, "SELECT count(*) FROM _toolkit_changed")[0][0]:
        _rebuild(con, m, first_rowid)
    counted = execute(con, f"SELECT coalesce(sum(records), 0) FROM {m}._toolkit_trace")[0][0]
    if counted != n_events:  # events written other than through ingest: find where
        execute(con, f"""
            CREATE OR REPLACE TEMP TABLE _toolkit_changed AS
            SELECT DISTINCT coalesce(e.trace_id, d.trace_id) AS trace_id FROM
                (SELECT trace_id, count(*) AS n FROM events GROUP BY trace_id) e
                FULL JOIN {m}._toolkit_trace d ON d.trace_id = e.trace_id
            WHERE e.n IS DISTINCT FROM d.records""")  # fmt: skip
        _rebuild(con, m, None)
    # the state read above is still the data's (a refresh changes no event or trace); an
    # update of the one row, not a new table: the commit writes a row, not a catalog change
    execute(con, f"UPDATE {m}._toolkit_state SET n = $n, s = $s", n=n_events, s=state)


def _rebuild(con: duckdb.DuckDBPyConnection, m: str, first_rowid: int | None) -> None:
    """Rebuild the rows of the traces in ``_toolkit_changed``.

    A trace with derived rows already (*old*) has them deleted and its events found by
    ``trace_id``; a *new* one, when ``first_rowid`` is known, by ``rowid`` range.
    """
    changed = "trace_id IN (SELECT trace_id FROM _toolkit_changed)"
    if first_rowid is None:  # no rowid range: every changed trace is cleared, found by trace_id
        old_traces = "SELECT trace_id FROM _toolkit_changed"
    else:  # the traces that had events before this ingest
        old_traces = f"""SELECT trace_id FROM _toolkit_changed c WHERE EXISTS (
            SELECT 1 FROM {m}._toolkit_trace d WHERE d.trace_id = c.trace_id AND records > 0)"""
    execute(con, f"CREATE OR REPLACE TEMP TABLE _toolkit_old AS {old_traces}")
    old = "trace_id IN (SELECT trace_id FROM _toolkit_old)"
    has_old = execute(con, "SELECT count(*) FROM _toolkit_old")[0][0] > 0
    # the traces whose events the old ones reacted to: their is_handled may change
    execute(con, "CREATE OR REPLACE TEMP TABLE _toolkit_reacted (trace_id VARCHAR)")
    if has_old:
        execute(con, f"""
            INSERT INTO _toolkit_reacted SELECT DISTINCT p_trace FROM {m}._toolkit_edge
            WHERE relation = 'causes' AND c_trace IN (SELECT trace_id FROM _toolkit_old)""")  # fmt: skip
        execute(con, f"DELETE FROM {m}._toolkit_edge "
                     "WHERE c_trace IN (SELECT trace_id FROM _toolkit_old)")  # fmt: skip
        execute(con, f"DELETE FROM {m}._toolkit_uev WHERE {old}")
    execute(con, f"DELETE FROM {m}._toolkit_trace WHERE {changed}")
    # The rebuilt rows go straight into the tables (a temporary copy moved over cost as much
    # again); they are the rows from the tables' end before this rebuild, read by rowid range.
    uev_end = _end(con, f"{m}._toolkit_uev")
    edge_end = _end(con, f"{m}._toolkit_edge")
    uev_new = f"(SELECT * FROM {m}._toolkit_uev WHERE rowid >= {uev_end})"
    edge_new = f"(SELECT * FROM {m}._toolkit_edge WHERE rowid >= {edge_end})"
    # new traces by rowid range (DuckDB skips the row groups before it), old ones by trace_id;
    # a trace is wholly in one set, and the rows of one trace are all the window needs
    new = f"e.rowid >= $first AND e.{changed} AND e.trace_id NOT IN (SELECT trace_id FROM _toolkit_old)"
    execute(con, f"INSERT INTO {m}._toolkit_uev {UEV_SQL.format(scope=new)}",
            first=first_rowid or 0)  # fmt: skip
    if has_old:
        execute(con, f"INSERT INTO {m}._toolkit_uev {UEV_SQL.format(scope='e.' + old)}")
    edges = EDGE_SQL.format(uev=uev_new, scope="true")
    execute(con, f"INSERT INTO {m}._toolkit_edge "
                 + PARENT_SQL.format(edges=edges, uev=uev_new))  # fmt: skip
    # parents in other traces (a link to an earlier run): looked up in those traces only
    if execute(con, f"SELECT count(*) FROM {edge_new} WHERE p_kind IS NULL AND p_trace "
                    "NOT IN (SELECT trace_id FROM _toolkit_changed)")[0][0]:  # fmt: skip
        execute(con, f"""
            UPDATE {m}._toolkit_edge e SET p_kind = p.kind, p_type = p.type,
                p_source = p.source, p_ts = p.ts
            FROM (SELECT k, kind, type, source, ts FROM {m}._toolkit_uev WHERE trace_id IN (
                      SELECT p_trace FROM {edge_new} WHERE p_kind IS NULL)) p
            WHERE e.rowid >= {edge_end} AND e.p_kind IS NULL AND p.k = e.pk""")  # fmt: skip
    # edges of other traces whose parents are in these (a run whose link arrived first)
    execute(con, f"""
        UPDATE {m}._toolkit_edge e SET p_kind = p.kind, p_type = p.type, p_source = p.source,
            p_ts = p.ts
        FROM {uev_new} p
        WHERE p.k = e.pk AND e.p_trace IN (SELECT trace_id FROM _toolkit_changed)
          AND e.c_trace NOT IN (SELECT trace_id FROM _toolkit_changed)""")  # fmt: skip
    # handled: by any edge into these traces (the new ones, or older ones across a link)
    execute(con, f"""
        UPDATE {m}._toolkit_uev SET is_handled = k IN (
            SELECT pk FROM {m}._toolkit_edge
            WHERE relation = 'causes' AND p_trace IN (SELECT trace_id FROM _toolkit_changed))
        WHERE rowid >= {uev_end}""")  # fmt: skip
    # events of other traces: handled by a new edge, or no longer by a deleted one
    execute(con, f"""
        INSERT INTO _toolkit_reacted SELECT DISTINCT p_trace FROM {edge_new}
        WHERE relation = 'causes' AND p_trace NOT IN (SELECT trace_id FROM _toolkit_changed)""")  # fmt: skip
    execute(
        con,
        "DELETE FROM _toolkit_reacted WHERE trace_id IN (SELECT trace_id FROM _toolkit_changed)",
    )
    if execute(con, "SELECT count(*) FROM _toolkit_reacted")[0][0]:
        execute(con, f"""
            UPDATE {m}._toolkit_uev SET is_handled = k IN (
                SELECT pk FROM {m}._toolkit_edge WHERE relation = 'causes'
                AND p_trace IN (SELECT trace_id FROM _toolkit_reacted))
            WHERE trace_id IN (SELECT trace_id FROM _toolkit_reacted)""")  # fmt: skip
    execute(con, f"""
        INSERT INTO {m}._toolkit_trace
        SELECT t.trace_id, coalesce(t.system, '') AS sys,
               coalesce(t.session_id, t.trace_id) AS session, coalesce(n.records, 0) AS records
        FROM traces t LEFT JOIN (SELECT trace_id, sum(records) AS records FROM {uev_new}
                                 GROUP BY trace_id) n ON n.trace_id = t.trace_id
        WHERE t.{changed}""")  # fmt: skip
    for table in ("_toolkit_old", "_toolkit_reacted"):
        execute(con, f"DROP TABLE {table}")


def _end(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """The ``rowid`` the next row appended to ``table`` gets at the least."""
    return int(execute(con, f"SELECT coalesce(max(rowid) + 1, 0) FROM {table}")[0][0])


# Connections whose tables another thread keeps: a live receiver's writer refreshes them
# for several batches at once, and is asked to catch up rather than written over from here
# (two threads writing the same tables conflict).
_KEEPERS: weakref.WeakKeyDictionary[Any, Callable[[], bool]] = weakref.WeakKeyDictionary()


def kept_by(con: Any, catch_up: Callable[[], bool] | None) -> None:
    """Say that another thread keeps ``con``'s derived tables (``None``: no longer).

    :func:`ensure` on ``con`` then calls ``catch_up``, which brings the tables up to date with
    what was committed and returns ``True``, or returns ``False`` (the keeper is gone: ensure
    goes on as usual).
    """
    if catch_up is None:
        _KEEPERS.pop(con, None)
    else:
        _KEEPERS[con] = catch_up


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    """Make sure the derived tables are current before an analysis runs.

    The check is three numbers (the tables' version, the events' count, a checksum of the
    traces' systems and sessions), so it is cheap when nothing changed. A writable database is repaired in place;
    a read-only one whose tables are missing or stale gets temporary tables, rebuilt only when
    the data changes. A connection whose tables another thread keeps (:func:`kept_by`) asks
    that thread.
    """
    try:
        catch_up = _KEEPERS.get(con)
    except TypeError:  # a connection that cannot be weakly referenced has no keeper
        catch_up = None
    if catch_up is not None and catch_up():
        return
    for attempt in range(ENSURE_ATTEMPTS):
        if _current(con):
            return
        if _read_only(con) or _exists(con, temporary=True):
            build(con, temporary=True)
            return
        try:
            _in_transaction(con, refresh)
            return
        except duckdb.TransactionException:
            # another thread refreshed them meanwhile (a live receiver's deriver, a reader on
            # another cursor): both updated the same rows. Look again: they may be current now
            if attempt == ENSURE_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


ENSURE_ATTEMPTS = 4


def _current(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the derived tables (temporary ones first) match the data."""
    state = tuple(execute(con, STATE_SQL)[0])
    for temporary in (True, False):
        if _exists(con, temporary=temporary):
            where = "temp.main" if temporary else _main(con)
            return tuple(execute(con, f"SELECT * FROM {where}._toolkit_state")[0]) == state
    return False


def _in_transaction(
    con: duckdb.DuckDBPyConnection, work: Callable[[duckdb.DuckDBPyConnection], None]
) -> None:
    """Run ``work(con)`` in a transaction of its own (all of it or none is seen), or in the
    caller's when one is open."""
    try:
        execute(con, "BEGIN TRANSACTION")
    except duckdb.TransactionException:  # the caller's transaction: the work is part of it
        work(con)
        return
    try:
        work(con)
        execute(con, "COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # (a failed COMMIT has rolled back)
            execute(con, "ROLLBACK")
        raise
