"""The one writer: batches of received requests merged like files, one transaction per batch.

DuckDB lets one process write a database file; inside it, every thread needs its own
connection. The writer thread owns a ``cursor()`` of the user's connection (its own temporary
tables, its own transactions) and is the only part of the receiver that touches DuckDB, so the
notebook keeps querying its connection and sees each batch once it is committed.

A batch is what the queue holds when the writer gets to it, after waiting up to
``batch_delay`` seconds for more, and longer while HTTP threads are still decoding requests
(at most ``batch_bytes`` of request bodies): a batch costs about 0.07 s of statements whatever
its size, and exporters wait for their answers, so under load the requests of all of them
should share one. Each batch goes through the file ingest's steps (protobuf requests arrive
as rows from :func:`toolkit.ingest.otlp.flatten_request`, JSON ones are parsed by
:func:`toolkit.ingest.otlp.read_requests`; then :func:`toolkit.ingest.spans.stage_spans` and
:func:`toolkit.ingest.base.merge_stage`), with each request counted as a file of its own: the same record identity, the same rejects (origin
``otlp-http:<request n>#<span k>``, ``#0`` for a request rejected whole), one ``ingests`` row per
request (``path`` ``otlp-http:<n>``, ``file_hash`` the SHA-256 of its decompressed body).

**Live semantics.** Spans of a trace arrive over many requests, children first and the root
often last, yet a span's agent is inherited from its ancestors and a trace's ``system``,
``task``, ``outcome`` and session come from its root and last steps. So the writer keeps the
spans it received (``live_spans``, a temporary table of the writer) and, for every trace a
batch touches, maps the trace's spans again as a whole: its earlier rows are replaced and its
trace fields recomputed (the new values win where they say something). The tables then hold
what the file ingest of all the requests would hold. A trace idle for ``retain`` seconds leaves
``live_spans`` (so do the traces idle longest when it holds more than ``RETAIN_SPANS``
spans); a span of it arriving later is merged like a second file (its trace's fields
are filled in, not replaced; its agent comes from the spans of its own batch only).

**The analyses' derived tables** (:mod:`toolkit.analyze.derived`) are not refreshed in each
batch's transaction: their refresh costs about as much for many batches as for one, so a
second thread (:class:`Deriver`, on a cursor of its own, beside the writer's next batches)
brings them up to date in a transaction of its own when batches stop coming, at least every
``deriver.DERIVE_EVERY`` seconds under load, and whenever an analysis on the receiver's connection asks
(``derived.ensure`` waits for it to catch up, so it sees every batch committed before).

**Retries add nothing.** A body already received (same SHA-256, in this or an earlier session)
is answered as before without being merged again; a span received in two different requests is
one record (record identity; occurrences count within a request).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from toolkit.db import write_gate
from toolkit.ingest import otlp
from toolkit.ingest.base import create_stage, merge_stage, stage_rows
from toolkit.ingest.spans import SPAN_DDL, create_span_table, normal_ids, stage_spans
from toolkit.receive.deriver import Deriver

log = logging.getLogger(__name__)

PREFIX = "otlp-http:"
WAIT_FACTOR = 10  # under load a batch waits up to this many ``batch_delay`` for requests
IDLE = 0.05  # seconds the writer has nothing to do before the derived tables catch up
# Live spans kept in memory at most (about 1 KB each): beyond, the traces idle longest are
# forgotten first, as when idle for ``retain`` seconds (at 20k spans/s, 600 s would be 12M)
RETAIN_SPANS = 1_000_000
_REQ = f"try_cast(regexp_extract(origin, '^{PREFIX}(\\d+)#', 1) AS BIGINT)"
_NONE = (0, 0, None, None, 0)  # a request with no row in ``Writer._per_request``


@dataclass
class Result:
    """What the writer did with one request."""

    status: int  # 200, 400 (rejected whole), 500 (the merge failed)
    spans: int = 0  # spans stored from it
    rejected: int = 0  # its records sent to ``rejects``
    message: str = ""


@dataclass
class Pending:
    """A request waiting for the writer: its spans already flattened (protobuf), its OTLP/JSON
    text (parsed by the writer), or why it is rejected whole."""

    body: str | None
    digest: str
    raw: str | None = None  # the record to keep when the body is rejected whole
    problem: str | None = None
    size: int = 0
    spans: pa.Table | None = None  # ``otlp.flatten_request`` of a protobuf body
    done: threading.Event = field(default_factory=threading.Event)
    result: Result | None = None

    @classmethod
    def of(
        cls,
        body: bytes,
        text: str | None,
        problem: str | None = None,
        spans: pa.Table | None = None,
    ) -> Pending:
        raw = None
        if problem is not None:
            raw = text[:10000] if text is not None else body[:7500].hex()
        return cls(
            body=text if problem is None and spans is None else None,
            digest=hashlib.sha256(body).hexdigest(),
            raw=raw,
            problem=problem,
            size=len(body),
            spans=spans if problem is None else None,
        )


class Writer(threading.Thread):
    """The thread that merges queued requests into the database, batch by batch."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        queue_size: int,
        batch_delay: float,
        batch_bytes: int,
        retain: float,
    ) -> None:
        super().__init__(name="toolkit-receive-writer", daemon=True)
        self.cur = con.cursor()
        self.queue: queue.Queue[Pending] = queue.Queue(maxsize=queue_size)
        self.batch_delay = batch_delay
        self.batch_bytes = batch_bytes
        self.retain = retain
        self.stopping = threading.Event()
        self.gate = threading.Event()  # cleared: the writer holds off (tests fill the queue)
        self.gate.set()
        self.parked = threading.Event()  # set while the writer holds off
        self.lock = threading.Lock()
        self.counts = {"batches": 0, "spans": 0, "rejects": 0, "committed_requests": 0}
        self.last_error: str | None = None
        self.arriving = 0  # requests being decoded by the HTTP threads (see ``incoming``)
        self.last_evict = time.monotonic()
        # traces whose every stored row came from a span in ``live_spans`` (see ``_complete``),
        # as long as ``ingests`` holds the rows this writer expects
        self.whole: set[str] = set()
        self.ingests = self.ingests_seen = -1
        self.n = self.cur.execute(
            f"SELECT coalesce(max(try_cast(regexp_extract(path, '^{PREFIX}(\\d+)$', 1) AS BIGINT)), 0)"
            " FROM ingests"
        ).fetchall()[0][0]
        self.cur.execute(
            f"CREATE OR REPLACE TEMP TABLE live_spans ({SPAN_DDL}, tid VARCHAR, req BIGINT, "
            "arrived DOUBLE)"
        )
        create_span_table(self.cur)  # the macros the mapping uses, once
        self.cur.execute("DROP TABLE otel_spans")
        self.working = False  # a batch is being collected or merged
        self.done_at = 0.0  # when the last batch was done
        self.deriver = Deriver(con, self._idle)
        # beside the deriver; a file ingest on ``con`` waits for the batch being merged
        self.write_gate = write_gate(con)

    # ------------------------------------------------------------------ the loop

    def _idle(self) -> bool:
        return (
            not self.working
            and self.queue.empty()
            and not self.arriving
            and time.monotonic() - self.done_at > IDLE
        )

    def start(self) -> None:
        self.deriver.start()
        super().start()

    def run(self) -> None:
        try:
            while True:
                if not self.gate.is_set():
                    self.parked.set()
                    self.gate.wait()
                    self.parked.clear()
                try:
                    first = self.queue.get(timeout=0.05)
                except queue.Empty:
                    if self.stopping.is_set():
                        break
                    self._maybe_evict()
                    continue
                self.working = True
                try:
                    self._run_batch(self._collect(first))
                finally:
                    self.working, self.done_at = False, time.monotonic()
                self._maybe_evict()  # (after the batch is answered)
        finally:
            self.cur.close()
            self.deriver.stopping.set()  # after a last refresh
            self.deriver.wake.set()
            self.deriver.join()

    def _collect(self, first: Pending) -> list[Pending]:
        """The batch that starts with ``first``: what is queued or arrives within
        ``batch_delay`` seconds and, while HTTP threads are still reading or flattening
        requests, what they queue within ``WAIT_FACTOR * batch_delay``: under load, exporters
        waiting for their answers all land in one transaction instead of trickling into
        several. At most ``batch_bytes`` of bodies."""
        batch, size = [first], first.size
        start = time.monotonic()
        while size < self.batch_bytes:
            elapsed = time.monotonic() - start
            timeout: float | None = None  # take only what is queued
            if elapsed < self.batch_delay:
                timeout = self.batch_delay - elapsed
            elif self.arriving and elapsed < WAIT_FACTOR * self.batch_delay:
                timeout = min(0.005, WAIT_FACTOR * self.batch_delay - elapsed)
            try:
                item = self.queue.get(timeout=timeout) if timeout else self.queue.get_nowait()
            except queue.Empty:
                if timeout:
                    continue
                break
            batch.append(item)
            size += item.size
        return batch

    @contextmanager
    def incoming(self) -> Iterator[None]:
        """Count a request that an HTTP thread is decoding, for :meth:`_collect` to wait for."""
        with self.lock:
            self.arriving += 1
        try:
            yield
        finally:
            with self.lock:
                self.arriving -= 1

    def _run_batch(self, batch: list[Pending]) -> None:
        try:
            self._commit(batch)
        except Exception as e:  # a bug or a database error: isolate the request that causes it
            if len(batch) > 1:
                for item in batch:
                    self._run_batch([item])
                return
            self.last_error = f"{type(e).__name__}: {e}"
            log.exception("toolkit.receive: a request could not be merged")
            batch[0].result = Result(500, message=f"the receiver failed to store it: {e}")
        for item in batch:
            if item.result is None:
                item.result = Result(500, message="not processed")
            item.done.set()

    # ------------------------------------------------------------------ one batch

    def _commit(self, batch: list[Pending]) -> None:
        cur = self.cur
        digests = sorted({p.digest for p in batch})
        earlier = {
            h: (rows, rejected)
            for h, rows, rejected in cur.execute(
                "SELECT file_hash, rows, rejected FROM ingests WHERE file_hash IN "
                "(SELECT unnest($h::VARCHAR[]))",
                {"h": digests},
            ).fetchall()
        }
        fresh: list[Pending] = []
        first_of: dict[str, Pending] = {}
        for p in batch:
            if p.digest in earlier:
                p.result = self._answer_again(p.digest, *earlier[p.digest])
            elif p.digest in first_of:
                continue  # the same body twice in one batch: answered like its first copy
            else:
                first_of[p.digest] = p
                fresh.append(p)
        if fresh:
            for attempt in range(3):
                try:
                    self._merge(fresh)
                    break
                except duckdb.TransactionException:
                    if attempt == 2:
                        raise
                    time.sleep(0.05 * (attempt + 1))  # another writer (the notebook) conflicted
        for p in batch:
            if p.result is None:
                p.result = first_of[p.digest].result

    def _answer_again(self, digest: str, rows: int, rejected: int) -> Result:
        whole = self.cur.execute(
            "SELECT reason FROM rejects WHERE file_hash = $h AND origin LIKE '%#0' LIMIT 1",
            {"h": digest},
        ).fetchall()
        if whole and rows == 0:
            return Result(400, rejected=rejected, message=whole[0][0])
        return Result(200, rejected=rejected, message="received before; nothing added")

    def _merge(self, fresh: list[Pending]) -> None:
        cur = self.cur
        started = time.perf_counter()
        first = self.n + 1  # the batch's requests are numbered from here on
        numbers = list(range(first, first + len(fresh)))
        self.n += len(fresh)
        create_stage(cur)
        try:
            with self.write_gate.shared():  # from reading the stored rows to the commit
                self._receive(fresh, numbers, time.time())
                old = self._restage(first)
                self._transaction(fresh, numbers, old, started)
        except BaseException:
            # the batch's spans leave ``live_spans`` with it (its tables rolled back)
            cur.execute("DELETE FROM live_spans WHERE req >= $f", {"f": first})
            raise
        # the stage tables stay until the next batch replaces them (a drop costs a statement)

    def _receive(self, fresh: list[Pending], numbers: list[int], now: float) -> None:
        """Add the batch's spans to ``live_spans`` (``req`` its request's number) and stage the
        rejects of requests rejected whole."""
        cur = self.cur
        texts = [(n, p.body) for n, p in zip(numbers, fresh, strict=True) if p.body is not None]
        if texts:
            otlp.read_requests(cur, texts, PREFIX)
            cur.execute(
                f"INSERT INTO live_spans BY NAME SELECT * REPLACE ({normal_ids()}), "
                f"span_norm_id(trace_id) AS tid, {_REQ} AS req, $now AS arrived FROM otel_spans",
                {"now": now},
            )
            cur.execute("DROP TABLE otel_spans")
        tables = [(n, p.spans) for n, p in zip(numbers, fresh, strict=True) if p.spans is not None]
        if tables:
            # protobuf ids are lowercase hex: their own normal form (a parent of zeros is none)
            spans = pa.concat_tables(
                t.append_column("req", pa.array([n] * len(t), pa.int64())) for n, t in tables
            )
            cur.register("_flattened", spans)
            try:
                cur.execute(
                    "INSERT INTO live_spans BY NAME SELECT * EXCLUDE (k) REPLACE (CASE WHEN "
                    "ltrim(parent_span_id, '0') <> '' THEN parent_span_id END AS parent_span_id), "
                    "k AS pos, $p || req || '#' || k AS origin, trace_id AS tid, $now AS arrived "
                    "FROM _flattened",
                    {"p": PREFIX, "now": now},
                )
            finally:
                cur.unregister("_flattened")
        stage_rows(
            cur,
            "rejects",
            [
                {"origin": f"{PREFIX}{n}#0", "reason": p.problem, "record": p.raw}
                for n, p in zip(numbers, fresh, strict=True)
                if p.problem is not None
            ],
        )

    def _restage(self, first: int) -> int:
        """Map the new spans (requests from number ``first``) together with the earlier spans
        of the traces they touch (``live_old``: their trace and origin); return how many
        earlier spans there are."""
        cur = self.cur
        old = cur.execute(
            "CREATE OR REPLACE TEMP TABLE live_old AS SELECT tid, origin FROM live_spans "
            "WHERE req < $f AND tid IN (SELECT tid FROM live_spans WHERE req >= $f)",
            {"f": first},
        ).fetchall()[0][0]
        # positions ordered by request, then by place in the request: the order of the files
        # that the requests would have been
        where = f"req >= {int(first)}"
        if old:
            where += " OR tid IN (SELECT tid FROM live_old)"
        stage_spans(
            cur,
            "(SELECT * EXCLUDE (pos, tid, req, arrived), req * 4294967296 + pos AS pos "
            f"FROM live_spans WHERE {where})",
            normalized=True,  # (by ``_receive``)
        )
        if old:
            cur.execute("DELETE FROM stage_rejects WHERE origin IN (SELECT origin FROM live_old)")
        return int(old)

    def _transaction(
        self, fresh: list[Pending], numbers: list[int], old: int, started: float
    ) -> None:
        cur = self.cur
        cur.execute("BEGIN TRANSACTION")
        try:
            deleted = 0
            if old:  # the earlier rows of the traces mapped again are replaced by their new mapping
                deleted = cur.execute("""
                    DELETE FROM events WHERE trace_id IN (SELECT DISTINCT tid FROM live_old)
                      AND origin IN (SELECT origin FROM live_old)
                """).fetchall()[0][0]
            # the batch's events are appended from ``first_rowid`` on (counted per request by it);
            # the complete traces hold no stored row now: the merge need not look for theirs
            complete, first_rowid, events_before = self._complete()
            merge_stage(
                cur, None, per_request=True, recompute=complete, unstored=complete, derive=False
            )
            traces = cur.execute(
                "SELECT coalesce(list(DISTINCT trace_id), []) FROM stage_events"
            ).fetchall()[0][0]
            per_request = self._per_request(numbers, first_rowid)
            seconds = time.perf_counter() - started
            requests = pa.table(
                {
                    "h": [p.digest for p in fresh],
                    "path": [f"{PREFIX}{n}" for n in numbers],
                    "rows": [per_request.get(n, _NONE)[4] for n in numbers],
                    "rejected": [per_request.get(n, _NONE)[1] for n in numbers],
                    "seconds": [seconds] * len(fresh),
                }
            )
            rejected = any(r[1] for r in per_request.values())
            cur.register("_live_requests", requests)
            try:
                cur.execute("""
                    INSERT INTO ingests SELECT h, path, 'otlp', rows, rejected, now(), seconds
                    FROM _live_requests
                """)
                if rejected:
                    cur.execute("""
                        UPDATE rejects SET file_hash = r.h FROM _live_requests r
                        WHERE rejects.file_hash IS NULL
                          AND rejects.origin IN (SELECT origin FROM stage_rejects)
                          AND split_part(rejects.origin, '#', 1) = r.path
                    """)
            finally:
                cur.unregister("_live_requests")
            with self.deriver.lock:  # the deriver's snapshot never falls in between
                cur.execute("COMMIT")
                self.deriver.add(traces, events_before, deleted)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        if rejected:  # rejected spans are not kept for mapping their traces again
            cur.execute(
                "DELETE FROM live_spans WHERE req >= $f "
                "AND origin IN (SELECT origin FROM stage_rejects)",
                {"f": numbers[0]},
            )
        spans = rejects = 0
        for n, p in zip(numbers, fresh, strict=True):
            stored, rejected_n, whole, reason, _ = per_request.get(n, _NONE)
            spans += stored
            rejects += rejected_n
            if whole is not None and stored == 0:
                p.result = Result(400, rejected=rejected_n, message=whole)
            else:
                p.result = Result(200, spans=stored, rejected=rejected_n, message=reason or "")
        self.whole.update(complete)
        self.ingests = self.ingests_seen + len(fresh)
        with self.lock:
            self.counts["batches"] += 1
            self.counts["spans"] += spans
            self.counts["rejects"] += rejects
            self.counts["committed_requests"] += len(fresh)

    def _complete(self) -> tuple[list[str], int, int]:
        """The staged traces whose every stored row was mapped again (after the ``DELETE`` of
        their earlier rows: their fields are recomputed), the first rowid of the batch in its
        transaction, and how many events are stored before it.

        Asking ``events`` reads the whole table (it grows with the database); instead, a trace
        new to the database is complete, and so is one in :attr:`whole` (all its rows came from
        spans still in ``live_spans``) unless something else ingested meanwhile: only the rest
        (traces a file or an earlier session stored) is looked up in ``events``."""
        cur = self.cur
        new, staged, ingests, first_rowid, stored = cur.execute("""
            SELECT (SELECT coalesce(list(DISTINCT trace_id), []) FROM stage_traces
                    WHERE trace_id NOT IN (SELECT trace_id FROM traces)),
                   (SELECT coalesce(list(DISTINCT trace_id), []) FROM stage_traces),
                   (SELECT count(*) FROM ingests),
                   (SELECT coalesce(max(rowid) + 1, 0) FROM events),
                   (SELECT count(*) FROM events)
        """).fetchall()[0]
        if ingests != self.ingests:  # another writer stored something: its traces too, maybe
            self.whole.clear()
        self.ingests_seen = ingests
        complete = set(new) | (self.whole & set(staged))
        unsure = [t for t in staged if t not in complete]
        if unsure:
            complete.update(
                cur.execute(
                    """
                    SELECT coalesce(list(t), []) FROM unnest($ids::VARCHAR[]) AS u(t)
                    WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.trace_id = u.t)
                    """,
                    {"ids": unsure},
                ).fetchall()[0][0]
            )
        return sorted(complete), int(first_rowid), int(stored)

    def _per_request(
        self, numbers: list[int], first_rowid: int
    ) -> dict[int, tuple[int, int, str | None, str | None, int]]:
        """Per request number: spans stored, records rejected, the reason of its rejection as a
        whole, the first reason for a rejection, events added (from ``first_rowid`` on)."""
        return {
            n: (spans, rejected, whole, reason, rows)
            for n, spans, rejected, whole, reason, rows in self.cur.execute(
                f"""
                WITH s AS (SELECT req, count(*) AS spans FROM live_spans
                           WHERE req >= $f AND origin NOT IN (SELECT origin FROM stage_rejects)
                           GROUP BY req),
                     r AS (SELECT {_REQ} AS req, count(*) AS rejected,
                                  min(reason) FILTER (origin LIKE '%#0') AS whole,
                                  min(reason || ' (' || origin || ')') AS reason
                           FROM stage_rejects GROUP BY req),
                     a AS (SELECT {_REQ} AS req, count(*) AS rows FROM events
                           WHERE rowid >= $r GROUP BY req)
                SELECT req, coalesce(s.spans, 0), coalesce(r.rejected, 0), r.whole, r.reason,
                       coalesce(a.rows, 0)
                FROM s FULL JOIN r USING (req) FULL JOIN a USING (req)
                WHERE req >= $f
                """,
                {"f": numbers[0], "r": first_rowid},
            ).fetchall()
        }

    def _maybe_evict(self) -> None:
        if time.monotonic() - self.last_evict > min(self.retain, 10.0):
            try:
                self.evict()
            except Exception as e:
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("toolkit.receive: live spans could not be evicted")

    def evict(self) -> None:
        """Forget the spans of traces idle for ``retain`` seconds (they stay in the database),
        and beyond ``RETAIN_SPANS`` spans those of the traces idle longest."""
        self.last_evict = time.monotonic()
        cur = self.cur
        gone = cur.execute(
            "DELETE FROM live_spans WHERE tid IN (SELECT tid FROM live_spans GROUP BY tid "
            "HAVING max(arrived) < $cutoff) RETURNING tid",
            {"cutoff": time.time() - self.retain},
        ).fetchall()
        if cur.execute("SELECT count(*) FROM live_spans").fetchall()[0][0] > RETAIN_SPANS:
            gone += cur.execute(
                """
                DELETE FROM live_spans WHERE tid IN (
                    SELECT tid FROM (
                        SELECT tid, sum(count(*)) OVER (ORDER BY max(arrived) DESC, tid
                                                        ROWS UNBOUNDED PRECEDING) AS kept
                        FROM live_spans GROUP BY tid)
                    WHERE kept > $most)
                RETURNING tid
                """,
                {"most": RETAIN_SPANS},
            ).fetchall()
        self.whole.difference_update(t for (t,) in gone)  # their next spans: as from a file
