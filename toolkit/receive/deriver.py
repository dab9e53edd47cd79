"""The deriver: the analyses' derived tables kept up to date for the batches the writer commits.

A second thread on a cursor of its own, beside the writer's next batches (they write different
tables): it refreshes when batches stop coming, at least every ``DERIVE_EVERY`` seconds under
load, and whenever an analysis on the receiver's connection asks (``derived.ensure`` waits for
it to catch up). See :mod:`toolkit.receive.writer`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import duckdb
import pyarrow as pa

from toolkit.analyze import derived
from toolkit.db import write_gate

log = logging.getLogger(__name__)

DERIVE_EVERY = 1.0  # seconds: under load, the derived tables catch up at least this often


class Deriver(threading.Thread):
    """The thread that keeps the analyses' derived tables, on a cursor of its own.

    The writer hands it the traces of each committed batch (:meth:`add`); it refreshes the
    tables for all of them at once, in a transaction of its own, while the writer goes on with
    the next batch (they write different tables, and DuckDB runs both on the machine's cores):
    when batches stop coming, at least every ``DERIVE_EVERY`` seconds under load, and whenever
    a reader asks (:meth:`catch_up`).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, idle: Callable[[], bool]) -> None:
        super().__init__(name="toolkit-receive-deriver", daemon=True)
        self.cur = con.cursor()
        self.write_gate = write_gate(con)
        self.idle = idle  # whether the writer has had nothing to do for a while
        # held by the writer from a batch's COMMIT until its traces are added, and here from
        # taking them until the refresh's snapshot: the snapshot holds exactly the batches taken
        self.lock = threading.Lock()
        self.traces: list[str] = []  # of the batches committed since the last refresh
        # no event of those batches has a lower rowid (see :meth:`add`)
        self.first_rowid: int | None = None
        self.deleted = 0  # events the writer deleted so far (replaced rows of live traces)
        self.since = 0.0  # when that batch was committed
        self.readers: list[threading.Event] = []  # readers waiting for the tables
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.ok = True  # the last refresh succeeded
        self.last_error: str | None = None

    def add(self, traces: list[str], floor: int, deleted: int) -> None:
        """Record a committed batch (called by the writer, holding :attr:`lock`): its traces,
        how many events were stored before its own (``floor``), and how many it deleted.

        Rowids are positions: a commit can compact the rows deleted so far (DuckDB does, at
        its own pace) and move every later row down, so an earlier batch's rowid range is
        not where its rows are now. Its rows are never lower than the count of events stored
        before them, less the events deleted since, which is the range handed to the refresh.
        """
        self.traces += traces
        self.deleted += deleted
        if self.first_rowid is None:
            self.first_rowid, self.since = floor, time.monotonic()
        else:
            self.first_rowid = max(0, self.first_rowid - deleted)

    def catch_up(self, timeout: float) -> bool:
        """Wait until the derived tables hold what was committed before this call (called by
        a reader's ``derived.ensure``); ``False`` when the deriver cannot say (stopped, failing,
        or not within ``timeout`` seconds)."""
        if self.stopping.is_set() or not self.is_alive():
            return False
        done = threading.Event()
        with self.lock:
            self.readers.append(done)
        self.wake.set()
        return done.wait(timeout) and self.ok

    def run(self) -> None:
        while True:
            self.wake.wait(0.05)
            self.wake.clear()
            now = time.monotonic()
            stopping = self.stopping.is_set()
            if (
                self.readers
                or stopping
                or (
                    self.first_rowid is not None
                    and (now - self.since > DERIVE_EVERY or self.idle())
                )
            ):
                self._derive()
            if stopping:
                break
        self.cur.close()

    def _derive(self) -> None:
        with self.lock:
            readers, self.readers = self.readers, []
        self.ok = False
        try:
            for attempt in range(3):
                try:
                    self._refresh()
                    break
                except duckdb.TransactionException:
                    if attempt == 2:
                        raise
                    time.sleep(0.05 * (attempt + 1))  # a reader wrote them meanwhile
            self.ok = True
        except duckdb.TransactionException as e:  # tried again with the next batches
            self.last_error = f"{type(e).__name__}: {e}"
            log.warning("toolkit.receive: the derived tables' refresh conflicted with another "
                        "writer three times; it is tried again with the next batches")  # fmt: skip
        except Exception as e:  # readers repair the tables themselves (``derived.ensure``)
            self.last_error = f"{type(e).__name__}: {e}"
            log.exception("toolkit.receive: the derived tables could not be refreshed")
        finally:
            for done in readers:
                done.set()

    def _refresh(self) -> None:
        with self.write_gate.shared():  # beside the writer; a file ingest waits (or goes first)
            self._refresh_tables()

    def _refresh_tables(self) -> None:
        cur = self.cur
        with self.lock:
            traces, first_rowid, deleted = self.traces, self.first_rowid, self.deleted
            self.traces, self.first_rowid = [], None
            try:
                cur.execute("BEGIN TRANSACTION")
                # DuckDB takes the snapshot at the first read: before the next batch commits
                cur.execute("SELECT count(*) FROM traces").fetchall()
            except BaseException:
                self._restore(traces, first_rowid, deleted)
                raise
        try:
            changed = pa.table({"trace_id": pa.array(traces, pa.string())})
            cur.register("_live_changed", changed)
            derived.refresh(
                cur,
                "SELECT trace_id FROM _live_changed" if traces else None,
                first_rowid=first_rowid,
            )
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # (a failed COMMIT has rolled back)
                cur.execute("ROLLBACK")
            with self.lock:
                self._restore(traces, first_rowid, deleted)
            raise
        finally:  # (after the rollback: an aborted transaction refuses even this)
            with contextlib.suppress(duckdb.Error):
                cur.unregister("_live_changed")

    def _restore(self, traces: list[str], first_rowid: int | None, deleted: int) -> None:
        """Put back what a failed refresh took (``deleted``: :attr:`deleted` when it took
        them): tried again next time, with what came since."""
        self.traces = traces + self.traces
        if first_rowid is not None:  # (lower than any batch added since)
            self.first_rowid = max(0, first_rowid - (self.deleted - deleted))
            self.since = time.monotonic()
