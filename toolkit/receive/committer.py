"""The committer: each staged batch merged into the canonical tables, one transaction each.

The writer (:mod:`toolkit.receive.writer`) maps a batch into stage tables on its cursor and
hands them over as Arrow tables; this thread, on a cursor of its own, merges them
(:func:`toolkit.ingest.base.merge_stage`), records the requests in ``ingests``, commits and
answers, while the writer already stages the next batch (DuckDB runs the two on the machine's
cores; each statement of a small batch keeps about one busy). Batches commit in the order they
were staged, one at a time.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from toolkit.ingest.base import STAGE_COLUMNS, merge_stage
from toolkit.receive.deriver import Deriver

if TYPE_CHECKING:
    from toolkit.receive.writer import Pending

log = logging.getLogger(__name__)

PREFIX = "otlp-http:"
REQ = f"try_cast(regexp_extract(origin, '^{PREFIX}(\\d+)#', 1) AS BIGINT)"


@dataclass
class Result:
    """What the writer did with one request."""

    status: int  # 200, 400 (rejected whole), 500 (the merge failed)
    spans: int = 0  # spans stored from it
    rejected: int = 0  # its records sent to ``rejects``
    message: str = ""


@dataclass
class Job:
    """A batch on its way from the writer to the committer."""

    batch: list[Pending]  # every request of the batch: answered when the job is done
    fresh: list[Pending] = field(default_factory=list)  # merged (first copies of new bodies)
    numbers: list[int] = field(default_factory=list)  # the request number of each fresh one
    started: float = 0.0  # ``perf_counter`` when its staging began
    # the stage tables (``events``, ``traces``, ``rejects``) and ``live_old`` (the earlier
    # spans of the traces mapped again: trace and origin), read by ``merge_stage`` by name
    stage: dict[str, pa.Table] = field(default_factory=dict)
    # per request number: spans kept, records rejected, the reason of its rejection as a whole,
    # the first reason for a rejection
    counts: dict[int, tuple[int, int, str | None, str | None]] = field(default_factory=dict)
    error: BaseException | None = None  # staging or committing failed: nothing answered
    finished: threading.Event = field(default_factory=threading.Event)


_NONE = (0, 0, None, None)  # a request with no row in ``Job.counts``


class Committer(threading.Thread):
    """The thread that commits the writer's staged batches (see the module docstring)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        deriver: Deriver,
        record: Callable[[int, int, int], None],
    ) -> None:
        super().__init__(name="toolkit-receive-committer", daemon=True)
        self.cur = con.cursor()
        self.deriver = deriver
        self.record = record  # (spans, rejects, requests) of a committed batch, for the counters
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=1)
        cols = ", ".join(f"{n} {k}" for n, k in STAGE_COLUMNS["annotations"].items())
        # the one stage table merge_stage writes (emptied); spans never stage annotations
        self.cur.execute(f"CREATE OR REPLACE TEMP TABLE stage_annotations ({cols})")

    def submit(self, job: Job) -> None:
        """Commit ``job`` after the jobs submitted before (``job.finished`` is set when done)."""
        self.jobs.put(job)

    def stop(self) -> None:
        """Finish the jobs submitted and end the thread."""
        self.jobs.put(None)
        self.join()

    def run(self) -> None:
        try:
            while (job := self.jobs.get()) is not None:
                try:
                    self._run(job)
                finally:
                    job.finished.set()
        finally:
            self.cur.close()

    def _run(self, job: Job) -> None:
        try:
            if job.fresh:
                for attempt in range(3):
                    try:
                        self._commit(job)
                        break
                    except duckdb.TransactionException:
                        if attempt == 2:
                            raise
                        time.sleep(0.05 * (attempt + 1))  # another writer (the notebook)
        except Exception as e:  # the writer isolates the request that causes it
            job.error = e
            return
        for p in job.batch:
            if p.result is None and p.leader is not None:
                p.result = p.leader.result  # the same body again: answered like its first copy
            if p.result is None:
                p.result = Result(500, message="not processed")
            p.done.set()

    def _commit(self, job: Job) -> None:
        cur = self.cur
        for name, table in job.stage.items():
            cur.register(name, table)
        try:
            self._transaction(job)
        finally:
            for name in job.stage:
                cur.unregister(name)
        spans = rejects = 0
        for n, p in zip(job.numbers, job.fresh, strict=True):
            stored, rejected, whole, reason = job.counts.get(n, _NONE)
            spans += stored
            rejects += rejected
            if whole is not None and stored == 0:
                p.result = Result(400, rejected=rejected, message=whole)
            else:
                p.result = Result(200, spans=stored, rejected=rejected, message=reason or "")
        self.record(spans, rejects, len(job.fresh))

    def _transaction(self, job: Job) -> None:
        """Merge the stage, record the requests in ``ingests`` (with the events each added),
        commit and hand the batch to the deriver."""
        cur = self.cur
        cur.execute("BEGIN TRANSACTION")
        try:
            if "live_old" in job.stage:
                # the earlier rows of the traces mapped again are replaced by their new mapping
                cur.execute("""
                    DELETE FROM events WHERE trace_id IN (SELECT DISTINCT tid FROM live_old)
                      AND origin IN (SELECT origin FROM live_old)
                """)
            # traces whose every stored row was mapped again: their fields are recomputed; the
            # batch's events are appended from ``first_rowid`` on (counted per request by it)
            complete, first_rowid = cur.execute("""
                SELECT coalesce((SELECT list(DISTINCT trace_id) FROM stage_traces s
                                 WHERE NOT EXISTS (SELECT 1 FROM events e
                                                   WHERE e.trace_id = s.trace_id)), []),
                       (SELECT coalesce(max(rowid) + 1, 0) FROM events)
            """).fetchall()[0]
            merge_stage(cur, None, per_request=True, recompute=complete, derive=False)
            traces, added = cur.execute(
                f"""
                SELECT (SELECT coalesce(list(DISTINCT trace_id), []) FROM stage_events),
                       (SELECT coalesce(map(list(req), list(n)), MAP {{}})
                        FROM (SELECT {REQ} AS req, count(*) AS n FROM events
                              WHERE rowid >= $r GROUP BY req))
                """,
                {"r": first_rowid},
            ).fetchall()[0]
            seconds = time.perf_counter() - job.started
            requests = pa.table(
                {
                    "h": [p.digest for p in job.fresh],
                    "path": [f"{PREFIX}{n}" for n in job.numbers],
                    "rows": [added.get(n, 0) for n in job.numbers],
                    "rejected": [job.counts.get(n, _NONE)[1] for n in job.numbers],
                    "seconds": [seconds] * len(job.fresh),
                }
            )
            cur.register("_live_requests", requests)
            try:
                cur.execute("""
                    INSERT INTO ingests SELECT h, path, 'otlp', rows, rejected, now(), seconds
                    FROM _live_requests
                """)
                if any(c[1] for c in job.counts.values()):
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
                self.deriver.add(traces, first_rowid)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
