"""The DuckDB connection and the one way SQL is run."""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd

T = TypeVar("T")

Tracer = Callable[[str, dict[str, Any]], None]
# A connection's tracer sees each statement after it ran: ``(sql, params, seconds)``.
StatementTracer = Callable[[str, dict[str, Any], float], None]
_TRACERS: weakref.WeakKeyDictionary[Any, StatementTracer] = weakref.WeakKeyDictionary()


def schema_sql() -> str:
    """Return the DDL of the canonical schema (``toolkit/schema.sql``)."""
    return resources.files("toolkit").joinpath("schema.sql").read_text(encoding="utf-8")


_SCHEMA_TABLES = {"events", "traces", "annotations", "rejects", "ingests"}
# DuckDB's text when another process holds the file: "Conflicting lock is held in
# /usr/bin/python3.11 (PID 9466)[ by user root]. [However, you would be able to open this
# database in read-only mode ...]".
_LOCK = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class DatabaseLockedError(duckdb.IOException):
    """Another process holds the database file (DuckDB allows one writer or many readers).

    Attributes:
        path: the database file.
        program: the executable of the process holding the lock (as DuckDB reports it).
        pid: that process's id.
        read_only_would_work: the holder only reads, so ``read_only=True`` would open the file.
    """

    def __init__(self, path: str, program: str, pid: int, read_only_would_work: bool):
        self.path, self.program, self.pid = path, program, pid
        self.read_only_would_work = read_only_would_work
        if read_only_would_work:
            hint = "it only reads: open the file with read_only=True too, or close it there"
        else:
            hint = "it writes: close its connection (con.close(), or stop that kernel) and retry"
        super().__init__(f"{path} is in use by {program} (PID {pid}); {hint}")


def connect(
    path: str | Path | None = None,
    *,
    read_only: bool = False,
    memory_limit: str | None = None,
    tracer: StatementTracer | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database with the canonical schema applied.

    DuckDB lets one process write a file or several processes read it. Open read-only whatever
    only reads (a report, a notebook exploring a loaded database): readers do not block each
    other. Within one process, share one connection (or its ``cursor()``s): DuckDB refuses to
    open a file a second time with a different configuration.

    Args:
        path: a database file, created on first use; ``None`` for an in-memory database.
        read_only: open an existing file for reading only; the schema is then checked, not
            applied. Temporary tables (the analyses' derived tables) still work.
        memory_limit: DuckDB's memory limit (e.g. ``"4GB"``); beyond it DuckDB spills to disk.
        tracer: called after every statement the toolkit runs on this connection, with
            ``(sql, params, seconds)`` (see :func:`trace_sql`).

    Returns:
        A connection whose session time zone is UTC, so timestamps come back in UTC.

    Raises:
        FileNotFoundError: ``read_only`` and no file at ``path``.
        DatabaseLockedError: another process holds the file (its program and PID are named).
        duckdb.ConnectionException: this process has the file open with other options.
        ValueError: ``read_only`` and the file lacks the canonical tables.
    """
    if read_only and path is None:
        raise ValueError("read_only needs a database file; an in-memory database starts empty")
    if path is not None:
        if read_only and not Path(path).exists():
            raise FileNotFoundError(f"no database at {path}")
        if not read_only:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(":memory:" if path is None else str(path), read_only=read_only)
    except duckdb.IOException as exc:
        held = _LOCK.search(str(exc))
        if held is None:
            raise
        raise DatabaseLockedError(
            str(path), held["program"], int(held["pid"]), "read-only mode" in str(exc)
        ) from exc
    except duckdb.ConnectionException as exc:
        if "different configuration" not in str(exc):
            raise
        raise duckdb.ConnectionException(
            f"{path} is already open in this process with other options (read_only or not); "
            "use that connection, or its con.cursor(), or close it first"
        ) from exc
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if read_only:
        missing = _SCHEMA_TABLES - {
            r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        if missing:
            con.close()
            raise ValueError(
                f"{path} is not a toolkit database (no table {', '.join(sorted(missing))}); "
                "open it once for writing, e.g. with `toolkit ingest`"
            )
    else:
        con.execute(schema_sql())
    if tracer is not None:
        trace_sql(con, tracer)
    return con


class _Tracing:
    """What :func:`trace_sql` returns: used as a context manager, it restores the old tracer."""

    def __init__(self, con: Any, previous: StatementTracer | None) -> None:
        self._con, self._previous = con, previous

    def __enter__(self) -> _Tracing:
        return self

    def __exit__(self, *exc: object) -> None:
        trace_sql(self._con, self._previous)


def trace_sql(con: Any, tracer: StatementTracer | None) -> _Tracing:
    """Show every statement the toolkit runs on ``con`` (like sqlite-utils' ``Database.tracer``).

    ``tracer`` is called after each statement with ``(sql, params, seconds)``; ``print`` will do.
    ``None`` stops tracing. As a context manager, the previous tracer is restored on exit::

        with toolkit.trace_sql(con, print):
            toolkit.findings(con)

    Args:
        con: a connection from :func:`connect` (or ``toolkit.spark.connect``).
        tracer: the callable, or ``None``.
    """
    previous = _TRACERS.get(con)
    if tracer is None:
        _TRACERS.pop(con, None)
    else:
        _TRACERS[con] = tracer
    return _Tracing(con, previous)


_LIVE: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def mark_live(con: Any, live: bool) -> None:
    """Say that a receiver is (or no longer is) filling ``con``'s database: the analyses then
    measure waits to now, not to the data's end (see ``toolkit.hangs``). Counted, so that
    two receivers on one connection both have to stop."""
    count = _LIVE.get(con, 0) + (1 if live else -1)
    if count > 0:
        _LIVE[con] = count
    else:
        _LIVE.pop(con, None)


def is_live(con: Any) -> bool:
    """Whether a receiver is filling ``con``'s database (see :func:`mark_live`)."""
    try:
        return _LIVE.get(con, 0) > 0
    except TypeError:  # a connection that cannot be weakly referenced is never marked
        return False


class WriteGate:
    """Which threads of this process write a connection's database at one time.

    DuckDB's transactions are optimistic: when two update the same row (a trace's fields, the
    derived tables' state), the second to commit fails ("Conflict on update"). A live
    receiver's writer and deriver write different tables and go side by side (:meth:`shared`);
    any other write on the connection, a file ingest, waits until their transactions end and
    holds new ones off until its own has (:meth:`exclusive`). Waiting writers of either kind
    go before new shared ones, so a steady stream of batches cannot starve an ingest.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._owner: int | None = None  # the thread holding it exclusively
        self._depth = 0  # how many times that thread entered (an ingest inside an ingest)
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the gate beside the other shared holders."""
        with self._cond:
            while self._owner is not None or self._waiting:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the gate alone (re-entrant within one thread)."""
        me = threading.get_ident()
        with self._cond:
            if self._owner != me:
                self._waiting += 1
                try:
                    while self._owner is not None or self._shared:
                        self._cond.wait()
                finally:
                    self._waiting -= 1
                self._owner = me
            self._depth += 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._owner = None
                    self._cond.notify_all()


_GATES: weakref.WeakKeyDictionary[Any, WriteGate] = weakref.WeakKeyDictionary()
_GATES_LOCK = threading.Lock()


def write_gate(con: Any) -> WriteGate:
    """The :class:`WriteGate` of ``con`` (one per connection object; a connection that cannot
    be weakly referenced gets a gate of its own each time, which guards nothing)."""
    with _GATES_LOCK:
        try:
            gate = _GATES.get(con)
            if gate is None:
                gate = _GATES[con] = WriteGate()
        except TypeError:
            gate = WriteGate()
    return gate


def tracer_of(con: Any) -> StatementTracer | None:
    """The tracer set on ``con`` with :func:`trace_sql`, if any."""
    return _TRACERS.get(con)


def execute(con: duckdb.DuckDBPyConnection, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run a statement that returns few rows (DDL, maintenance), traced like :func:`query`."""
    return _traced(con, sql, params, lambda result: result.fetchall())


def query(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    *,
    tracer: Tracer | None = None,
    **params: Any,
) -> pd.DataFrame:
    """Run one SQL statement with named parameters (``$name``) and return a DataFrame.

    Args:
        con: the connection.
        sql: the statement; values go in as ``$name`` placeholders, never formatted in.
        tracer: called with ``(sql, params)`` before the statement runs (e.g. ``print``-like);
            the connection's tracer (:func:`trace_sql`) is called after it, with its time.
        **params: the values for the placeholders.
    """
    if tracer is not None:
        tracer(sql, params)
    return _traced(con, sql, params, lambda result: result.df())


def _traced(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], fetch: Callable[[Any], T]
) -> T:
    """Run ``sql``, fetch its result with ``fetch`` and tell the connection's tracer its time."""
    started = time.perf_counter()
    out = fetch(con.execute(sql, params) if params else con.execute(sql))
    traced = _TRACERS.get(con)
    if traced is not None:
        traced(sql, params, time.perf_counter() - started)
    return out


def quote_identifier(name: str) -> str:
    """Quote a table or column name for SQL; the one place identifiers enter SQL text."""
    return '"' + name.replace('"', '""') + '"'
