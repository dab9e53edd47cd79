"""Failed operations: what failed, where the failure started, and whether the run recovered."""

from __future__ import annotations

from typing import Unpack

import duckdb
import pandas as pd

from toolkit.analyze.scope import Filters, Query, run, scoped

ERROR_COLUMNS = ["trace_id", "event_id", "type", "source", "target", "ts", "message",
                 "recovered", "detail"]  # fmt: skip


def errors_query(**filters: Unpack[Filters]) -> Query:
    """The query behind :func:`errors`."""
    base, params = scoped(**filters)
    ctes = [
        base,
        # spans, messages and events whose status is error (an exception event makes its
        # span's status error at ingest); the exception event itself is its span's record
        "failed AS (SELECT * FROM uev WHERE status = 'error' AND kind <> 'span_event')",
        """retried AS (  -- the same operation tried again after the failure ended, not failing
            SELECT f.k, arg_min(u.event_id, u.ts) AS retry_id FROM failed f JOIN uev u
              ON u.trace_id = f.trace_id AND u.type = f.type AND u.kind = f.kind AND u.k <> f.k
             AND u.target IS NOT DISTINCT FROM f.target AND u.name IS NOT DISTINCT FROM f.name
             AND u.source IS NOT DISTINCT FROM f.source AND u.ts >= coalesce(f.end_ts, f.ts)
             AND u.status IS DISTINCT FROM 'error'
            GROUP BY f.k)""",
        # The parts of a span are the spans inside it, and for a message also the work it set
        # off (a consumer's processing: AutoGen's send_message re-raises its handler's error).
        """part(top, k) AS (
            SELECT k, k FROM failed
            UNION
            SELECT p.top, e.ck FROM part p JOIN edge e ON e.pk = p.k JOIN uev x ON x.k = e.pk
            WHERE e.c_kind <> 'span_event' AND (e.relation = 'contains' OR x.kind = 'message')
        )""",
        """message AS (
            SELECT f.k, coalesce(
                (SELECT min(e.attrs->>'$."otel.status_description"') FROM ev e
                 WHERE e.trace_id = f.trace_id AND e.event_id = f.event_id),
                (SELECT min(e.content) FROM ev e
                 WHERE e.trace_id = f.trace_id AND e.parent_span_id = f.event_id
                   AND e.kind = 'span_event' AND e.status = 'error')) AS message
            FROM failed f)""",
        # A failure passed on: a failed part that did not recover, or whose message the
        # failure repeats (smolagents fails a step with its tool's exception, even when retried)
        # (uncorrelated: Spark 4.0 fails on this NOT EXISTS correlated through m.message)
        """origin AS (
            SELECT f.*, m.message FROM failed f JOIN message m USING (k)
            WHERE f.k NOT IN (
                SELECT p.top FROM part p JOIN message fm ON fm.k = p.top
                JOIN failed d ON d.k = p.k JOIN message dm ON dm.k = d.k
                LEFT JOIN retried r ON r.k = d.k
                WHERE d.k <> p.top AND (r.k IS NULL OR contains(fm.message, dm.message)))
        )""",
        """run_outcome AS (  -- a run's outcome: its last trace's with an outcome
            SELECT session, arg_max(t.outcome, u.last_ts) AS outcome FROM (
                SELECT session, trace_id, max(coalesce(end_ts, ts)) AS last_ts FROM uev
                WHERE session IN (SELECT session FROM origin) GROUP BY ALL
            ) u JOIN traces t USING (trace_id)
            WHERE t.outcome IS NOT NULL GROUP BY session)""",
        """judged AS (
            SELECT o.*, r.retry_id, ro.outcome FROM origin o
            LEFT JOIN retried r USING (k) LEFT JOIN run_outcome ro USING (session))""",
    ]
    select = """
        SELECT trace_id, event_id, type, source, target, ts, message,
               retry_id IS NOT NULL OR coalesce(outcome = 'success', false) AS recovered,
               CASE WHEN retry_id IS NOT NULL THEN 'recovered: ' || retry_id || ' succeeded later'
                    WHEN outcome = 'success' THEN 'recovered: the run went on and succeeded'
                    WHEN outcome = 'failure' THEN 'not recovered: the run failed'
                    ELSE 'no later success recorded' END
               || CASE WHEN message IS NOT NULL THEN '; ' || left(message, 300) ELSE '' END
                   AS detail
        FROM judged ORDER BY trace_id, ts, event_id
    """
    return Query(ctes, select, params, ERROR_COLUMNS)


def errors(con: duckdb.DuckDBPyConnection, **filters: Unpack[Filters]) -> pd.DataFrame:
    """Failed operations, one row where each failure started.

    A failure is a span, message or event whose ``status`` is ``error`` (error status,
    ``error.type``, an exception event, a step limit reached: see ``toolkit.ingest.span_tree``;
    ``timeout`` is a late or missing answer, reported by :func:`late_events` and :func:`hangs`).
    One root cause, one row: a span that failed because a part of it failed (a span inside it,
    or the processing a message set off) and that part did not recover, or whose message its
    own repeats, only passed that failure on (a tool error raised through the agent run and
    the root); an exception event is its span's record. Neither is a row.

    Recovery: ``recovered`` is true when the same operation (same kind, type, name, source
    and target, in the same trace) was tried again after the failure ended and did not fail,
    or the run (session) ended in ``success``; the detail says which, or that the run failed.

    Returns:
        Columns ``trace_id``, ``event_id``, ``type``, ``source``, ``target``, ``ts``,
        ``message`` (status description, else the exception message), ``recovered``,
        ``detail``.
    """
    return run(con, errors_query(**filters))
