"""Rules that read MAST modes off the event flow: repetition, termination, ignored input, checks.

Each rule returns *hits*: dicts ``{trace_id, mode, confidence, event_ids, reason}``, at most one
per trace and mode. The rules run over the whole database (types that end a trace, steps a
system always takes and types that are usually handled are learnt from all of it), so a trace's
result does not depend on the filter; :func:`toolkit.classify.classify` keeps the traces asked for.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from toolkit.analyze.delivery import duplicates
from toolkit.analyze.flow import unhandled_events
from toolkit.analyze.scope import (
    MESSAGES_SQL,
    TERMINAL_SQL,
    Query,
    run,
    scoped,
    terminal_types_sql,
)

Hit = dict[str, Any]

# Event types and content that count as a verification step, and as one that passed.
VERIFY_TYPE = r"(?i)verif|validat|review|check|test|critic|judge"
VERIFY_TEXT = (
    r"(?i)\b(verif(y|ied|ying|ication)|validat(e|ed|ing|ion)|double[- ]check\w*|cross[- ]check\w*"
    r"|tests? (pass|fail)\w*|unit tests?|sanity check)\b"
)
PASSED_TYPE = r"(?i)(verif|validat|review|check|test)\w*[._-]?(pass|ok|succe|approv)"
PASSED_TEXT = (
    r"(?i)\b(verified|verification (passed|successful|complete[d]?)|all tests pass(ed)?"
    r"|tests passed|(is|are|looks|seems) (correct|accurate)|confirmed)\b"
)
REQUIRED_SHARE = 0.75  # a step type a system takes before completing in >= 75% of its runs ...
REQUIRED_MIN_RUNS = 5  # ... of at least 5 completed runs is a required step

HIT_COLUMNS = ["trace_id", "mode", "confidence", "event_ids", "reason"]
_TERMINAL = TERMINAL_SQL


def rule_query(
    ctes: list[str], select: str, frames: dict[str, pd.DataFrame] | None = None, **params: Any
) -> Query:
    """A rule as a query over the whole database (the scope CTEs, then ``ctes``)."""
    base, scope_params = scoped()
    return Query([base, *ctes], select, {**scope_params, **params}, HIT_COLUMNS, frames or {})


def _run(
    con: duckdb.DuckDBPyConnection, ctes: list[str], select: str,
    frames: dict[str, pd.DataFrame] | None = None, **params: Any,
) -> list[Hit]:  # fmt: skip
    df = run(con, rule_query(ctes, select, frames, **params))
    return [
        {**row, "event_ids": [str(e) for e in row["event_ids"]]} for row in df.to_dict("records")
    ]


def repetition_flow(con: duckdb.DuckDBPyConnection) -> list[Hit]:
    """FM-1.3 from delivery: redeliveries, requests sent again, idempotency violations."""
    dup = duplicates(con)
    hits = []
    for trace_id, g in dup.groupby("trace_id", sort=True):
        kinds = sorted(set(g["kind"]))
        hits.append(
            {
                "trace_id": trace_id,
                "mode": "FM-1.3",
                "confidence": 0.9 if "idempotency_violation" in kinds else 0.8,
                "event_ids": sorted(set(g["event_id"])),
                "reason": f"{len(g)} repeated deliveries/effects ({', '.join(kinds)}): "
                + str(g["detail"].iloc[0]),
            }
        )
    return hits


def after_terminal(con: duckdb.DuckDBPyConnection, terminal_types: list[str] | None) -> list[Hit]:
    """FM-1.5: events that happen after the trace's terminal event has ended."""
    select = """
        SELECT u.trace_id, 'FM-1.5' AS mode, 0.8 AS confidence,
               list(u.event_id ORDER BY u.ts, u.seq) AS event_ids,
               count(*) || ' event(s) after the trace ended with ' || any_value(t.term_id)
                   || ' (first: ' || arg_min(u.type, u.ts) || ')' AS reason
        FROM uev u JOIN terminal t USING (trace_id) WHERE u.ts > t.term_end
        GROUP BY u.trace_id ORDER BY u.trace_id
    """
    return _run(
        con, [terminal_types_sql(terminal_types), _TERMINAL], select, terminal_types=terminal_types
    )


def ignored_input(con: duckdb.DuckDBPyConnection) -> list[Hit]:
    """FM-2.5: an unhandled message whose addressee kept acting afterwards in the trace.

    When the addressee never acts again, the handler was dropped (the event-flow ``unhandled``
    finding), which is not an agent ignoring its input.
    """
    un = unhandled_events(con)[["trace_id", "event_id", "target", "ts"]]
    select = """
            SELECT n.trace_id, 'FM-2.5' AS mode, 0.8 AS confidence,
                   list_distinct(flatten(list([n.event_id, a.event_id] ORDER BY n.ts))) AS event_ids,
                   any_value(n.target) || ' never reacted to ' || any_value(n.event_id)
                       || ' but acted afterwards (' || any_value(a.type) || ')' AS reason
            FROM _unhandled n JOIN LATERAL (
                SELECT u.event_id, u.type FROM uev u
                WHERE u.trace_id = n.trace_id AND u.source = n.target AND u.ts > n.ts
                ORDER BY u.ts, u.seq LIMIT 1
            ) a ON true
            WHERE n.target IS NOT NULL
            GROUP BY n.trace_id ORDER BY n.trace_id
        """
    return _run(con, [], select, frames={"_unhandled": un})


def premature_termination(
    con: duckdb.DuckDBPyConnection, terminal_types: list[str] | None
) -> list[Hit]:
    """FM-3.1: a completed run that skipped a required step or left a request open.

    *Required*: an event type that at least 75% of the system's completed runs (5 or more) take
    before their terminal event. *Open*: a request declaring a timeout (``attrs.timeoutms``)
    that neither got an answer from someone else nor a reaction from its requester before the
    terminal event.
    """
    ctes = [
        terminal_types_sql(terminal_types), _TERMINAL,
        """done AS (
            SELECT t.*, coalesce(tr.system, '(unknown)') AS system
            FROM terminal t LEFT JOIN traces tr USING (trace_id))""",
        """taken AS (
            SELECT DISTINCT d.trace_id, d.system, u.type FROM done d JOIN uev u USING (trace_id)
            WHERE u.ts <= d.term_ts AND u.type NOT IN (SELECT type FROM terminal_type))""",
        """required AS (
            SELECT k.system, k.type FROM taken k
            JOIN (SELECT system, count(*) AS runs FROM done GROUP BY system) r USING (system)
            GROUP BY k.system, k.type, r.runs
            HAVING r.runs >= $min_runs AND count(*) >= $share * r.runs)""",
        """missing AS (
            SELECT d.trace_id, d.term_id, q.type FROM done d JOIN required q USING (system)
            WHERE NOT EXISTS (SELECT 1 FROM taken k WHERE k.trace_id = d.trace_id
                                                   AND k.type = q.type))""",
        """open_request AS (
            SELECT d.trace_id, d.term_id, r.event_id, r.type FROM done d
            JOIN uev r USING (trace_id)
            WHERE r.timeout_ms IS NOT NULL AND r.ts < d.term_ts AND NOT EXISTS (
                SELECT 1 FROM edge e WHERE e.pk = r.k
                                       AND e.c_ts <= d.term_ts))""",
    ]  # fmt: skip
    select = """
        SELECT trace_id, 'FM-3.1' AS mode, 0.8 AS confidence,
               list_distinct(flatten(list(ids ORDER BY part))) AS event_ids,
               'completed (' || any_value(term_id) || ') ' || string_agg(why, '; ' ORDER BY part)
                   AS reason
        FROM (
            SELECT trace_id, 1 AS part, any_value(term_id) AS term_id, [any_value(term_id)] AS ids,
                   'without the required step(s) ' || string_agg(type, ', ' ORDER BY type) AS why
            FROM missing GROUP BY trace_id
            UNION ALL
            SELECT trace_id, 2, any_value(term_id), list(event_id ORDER BY event_id),
                   'with request(s) still open: ' || string_agg(event_id, ', ' ORDER BY event_id)
            FROM open_request GROUP BY trace_id
        ) GROUP BY trace_id ORDER BY trace_id
    """
    return _run(
        con, ctes, select, terminal_types=terminal_types, min_runs=REQUIRED_MIN_RUNS,
        share=REQUIRED_SHARE,
    )  # fmt: skip


_ENDS = """ends AS (
    -- where a run ends: its terminal event when its system has terminal types, else its last
    -- event (a chat log ends where the conversation ended)
    SELECT u.trace_id, coalesce(t.term_id, arg_max(u.event_id, (u.ts, u.seq))) AS end_id,
           coalesce(t.term_ts, max(u.ts)) AS end_ts, t.term_id IS NOT NULL AS typed
    FROM uev u LEFT JOIN terminal t USING (trace_id)
    LEFT JOIN traces tr USING (trace_id)
    WHERE t.term_id IS NOT NULL OR coalesce(tr.system, '') NOT IN (
        SELECT DISTINCT coalesce(tr2.system, '') FROM terminal JOIN traces tr2 USING (trace_id))
    GROUP BY u.trace_id, t.term_id, t.term_ts
)"""
_MESSAGES = MESSAGES_SQL


def no_verification(con: duckdb.DuckDBPyConnection, terminal_types: list[str] | None) -> list[Hit]:
    """FM-3.2: a run that ended without any verification step before its end.

    A verification step is an event whose type names one (``VERIFY_TYPE``) or whose content
    says it checks something (``VERIFY_TEXT``); the trace's first event (the task statement,
    which may *ask* for checks) does not count. Only message and event logs that carry text are
    judged: a span tree shows the work done, and a verifier that was not instrumented leaves
    no span, so its absence there says nothing.
    """
    select = """
        SELECT d.trace_id, 'FM-3.2' AS mode, CASE WHEN d.typed THEN 0.8 ELSE 0.5 END AS confidence,
               [d.end_id] AS event_ids,
               'ended (' || d.end_id || ') with no verification step before it' AS reason
        FROM ends d JOIN first_msg f USING (trace_id)
        WHERE EXISTS (SELECT 1 FROM msg m WHERE m.trace_id = d.trace_id AND m.content IS NOT NULL)
          -- span trees show the work, not whether anyone checked it: a missing verifier span
          -- is missing instrumentation as often as missing verification
          AND NOT EXISTS (SELECT 1 FROM msg m WHERE m.trace_id = d.trace_id
                          AND m.kind IN ('span', 'span_event'))
          AND NOT EXISTS (
            SELECT 1 FROM msg m WHERE m.trace_id = d.trace_id AND m.ts <= d.end_ts
              AND m.event_id <> f.first_id AND m.event_id <> d.end_id
              AND (regexp_matches(m.type, $vt) OR (m.type <> 'log'
                   AND regexp_matches(coalesce(m.content, ''), $vx))))
        ORDER BY d.trace_id
    """
    return _run(
        con, [terminal_types_sql(terminal_types), _TERMINAL, _ENDS, _MESSAGES], select,
        terminal_types=terminal_types, vt=VERIFY_TYPE, vx=VERIFY_TEXT,
    )  # fmt: skip


def incorrect_verification(con: duckdb.DuckDBPyConnection) -> list[Hit]:
    """FM-3.3: a verification that passed in a run whose recorded outcome is a failure."""
    select = """
        SELECT m.trace_id, 'FM-3.3' AS mode,
               CASE WHEN bool_or(regexp_matches(m.type, $pt)) THEN 0.8 ELSE 0.5 END AS confidence,
               list(m.event_id ORDER BY m.ts, m.seq) AS event_ids,
               count(*) || ' verification(s) passed (first: ' || arg_min(m.event_id, (m.ts, m.seq))
                   || ') but the run failed' AS reason
        FROM msg m JOIN traces t USING (trace_id) JOIN first_msg f USING (trace_id)
        WHERE t.outcome = 'failure' AND m.event_id <> f.first_id AND m.type <> 'log'
          AND (regexp_matches(m.type, $pt)
               OR ((regexp_matches(m.type, $vt) OR regexp_matches(coalesce(m.content, ''), $vx))
                   AND regexp_matches(coalesce(m.content, ''), $px)))
        GROUP BY m.trace_id ORDER BY m.trace_id
    """
    return _run(
        con, [_MESSAGES], select, pt=PASSED_TYPE, px=PASSED_TEXT, vt=VERIFY_TYPE, vx=VERIFY_TEXT
    )


def learnt_terminal_types(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The event types that end traces, learnt from the whole database."""
    base, params = scoped()
    q = Query([base, terminal_types_sql(None)], "SELECT type FROM terminal_type ORDER BY type",
              params, ["type"])  # fmt: skip
    return [str(t) for t in run(con, q)["type"]]


def as_frame(hits: list[Hit]) -> pd.DataFrame:
    """Hits as a DataFrame (``trace_id, mode, confidence, event_ids, reason``)."""
    return pd.DataFrame(hits, columns=["trace_id", "mode", "confidence", "event_ids", "reason"])
