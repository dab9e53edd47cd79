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
        # The parts of a span are its child spans; the parts of a message are also the work
        # it set off (a consumer's processing: AutoGen's send_message re-raises its error).
        """last_part AS (
            SELECT e.pk, arg_max(e.c_status, e.c_ts) AS status FROM edge e
            JOIN uev p ON p.k = e.pk
            WHERE e.c_kind <> 'span_event' AND (e.relation = 'contains' OR p.kind = 'message')
            GROUP BY e.pk)""",
        """origin AS (  -- a span whose last part failed only passed that failure on
            SELECT f.* FROM failed f LEFT JOIN last_part c ON c.pk = f.k
            WHERE c.status IS DISTINCT FROM 'error')""",
        """run_outcome AS (  -- a run's outcome: its last trace's with an outcome
            SELECT session, arg_max(t.outcome, u.last_ts) AS outcome FROM (
                SELECT session, trace_id, max(coalesce(end_ts, ts)) AS last_ts FROM uev
                GROUP BY ALL) u JOIN traces t USING (trace_id)
            WHERE t.outcome IS NOT NULL GROUP BY session)""",
        """judged AS (
            SELECT o.*, r.event_id AS retry_id, ro.outcome,
                   coalesce((SELECT any_value(e.attrs->>'$."otel.status_description"') FROM ev e
                             WHERE e.trace_id = o.trace_id AND e.event_id = o.event_id),
                            (SELECT any_value(e.content) FROM ev e
                             WHERE e.trace_id = o.trace_id AND e.parent_span_id = o.event_id
                               AND e.kind = 'span_event' AND e.status = 'error')) AS message
            FROM origin o
            LEFT JOIN run_outcome ro USING (session)
            LEFT JOIN LATERAL (  -- the same operation tried again later and not failing
                SELECT arg_min(u.event_id, u.ts) AS event_id FROM uev u
                WHERE u.trace_id = o.trace_id AND u.type = o.type AND u.k <> o.k
                  AND u.target IS NOT DISTINCT FROM o.target
                  AND u.name IS NOT DISTINCT FROM o.name AND u.source IS NOT DISTINCT FROM o.source
                  AND u.ts >= coalesce(o.end_ts, o.ts)
                  AND u.status IS DISTINCT FROM 'error' AND u.kind = o.kind) r ON true)""",
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
    ``error.type``, an exception event; ``timeout`` is a late or missing answer, reported by
    :func:`late_events` and :func:`hangs`). One root cause, one row: a span whose last child
    span to end failed only passed that failure on (a tool error raised through the agent run
    and the root; a message whose consumer failed, when the sender re-raises), and an exception
    event is its span's record, so neither is a row.

    Recovery: ``recovered`` is true when the same operation (same kind, type, name, source
    and target, in the same trace) was tried again after the failure ended and did not fail, or the run (session) ended in
    ``success``; the detail says which, or that the run failed.

    Returns:
        Columns ``trace_id``, ``event_id``, ``type``, ``source``, ``target``, ``ts``,
        ``message`` (status description, else the exception message), ``recovered``,
        ``detail``.
    """
    return run(con, errors_query(**filters))
