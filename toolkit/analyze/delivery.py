"""Delivery problems: duplicates and idempotency violations, late and out-of-order events."""

from __future__ import annotations

from typing import Unpack

import duckdb
import pandas as pd

from toolkit.analyze.scope import (
    TERMINAL_SQL,
    Filters,
    Query,
    TerminalTypes,
    known_terminal_types,
    run,
    scoped,
    terminal_frames,
    terminal_types_sql,
)

DUPLICATE_COLUMNS = ["trace_id", "event_id", "kind", "type", "source", "idempotency_key",
                     "copies", "first_event_id", "detail"]  # fmt: skip
LATE_COLUMNS = ["trace_id", "event_id", "kind", "type", "source", "ts", "reference_event_id",
                "reference_ts", "delay_s", "detail"]  # fmt: skip

# Events whose parent carries the same idempotency key are the *effects* of a keyed request.
# A repeat is the second or later of a group (session, key, type, effect or not, and for a
# request its sender): only groups of two or more are sorted for the window, found by a count
# of each group's hash (a collision only lets a group of one through, where n stays 1).
KEYED_SQL = """keyed AS (
    SELECT u.*, coalesce(p.idempotency_key = u.idempotency_key, false) AS is_effect
    FROM uev u LEFT JOIN (SELECT k, idempotency_key FROM uev WHERE idempotency_key IS NOT NULL) p
        ON p.k = u.pk
    WHERE u.idempotency_key IS NOT NULL
),
keyed_repeat AS (
    SELECT *, first_value(event_id) OVER w AS first_event_id, row_number() OVER w AS n,
           count(*) OVER g AS copies
    FROM keyed
    WHERE hash(session, idempotency_key, type, is_effect, CASE WHEN NOT is_effect THEN source END)
          IN (SELECT hash(session, idempotency_key, type, is_effect,
                          CASE WHEN NOT is_effect THEN source END) AS h
              FROM keyed GROUP BY h HAVING count(*) > 1)
    -- copies counts the whole group (g has no ORDER BY: with one, count is a running count)
    WINDOW g AS (PARTITION BY session, idempotency_key, type, is_effect,
                              CASE WHEN NOT is_effect THEN source END),
           w AS (PARTITION BY session, idempotency_key, type, is_effect,
                              CASE WHEN NOT is_effect THEN source END
                 ORDER BY ts, seq, event_id)
)"""

# Responses that came after their request's timeout, or after the requester had moved on (it
# reacted to its own request first). The edge carries what is read of the response.
LATE_RESPONSE_SQL = """late_response AS (
    SELECT e.ck AS k, e.c_trace AS trace_id, e.c_id AS event_id, e.c_type AS type,
           e.c_source AS source, e.c_ts AS ts, r.event_id AS reference_event_id,
           r.ts AS reference_ts, r.timeout_ms, coalesce(m.first_own < e.c_ts, false) AS moved_on
    FROM cause e JOIN uev r ON r.k = e.pk
    LEFT JOIN (SELECT pk, min(c_ts) AS first_own FROM cause
               WHERE c_source IS NOT DISTINCT FROM p_source GROUP BY pk) m ON m.pk = e.pk
    WHERE r.timeout_ms IS NOT NULL AND e.c_source IS DISTINCT FROM r.source
),
late_response_found AS (
    SELECT * FROM late_response
    WHERE moved_on OR (epoch_us(ts) - epoch_us(reference_ts)) > timeout_ms * 1000
)"""


def duplicates_query(**filters: Unpack[Filters]) -> Query:
    """The query behind :func:`duplicates`."""
    base, params = scoped(**filters)
    select = """
        SELECT trace_id, event_id, 'duplicate' AS kind, min(type) AS type, source,
               min(idempotency_key) AS idempotency_key, count(*) AS copies,
               event_id AS first_event_id,
               'recorded ' || count(*) || ' times (same source and id): a redelivery' AS detail
        FROM ev WHERE hash(trace_id, event_id) IN (SELECT k FROM uev WHERE records > 1)
        GROUP BY trace_id, source, event_id HAVING count(*) > 1
        UNION ALL
        SELECT trace_id, event_id,
               CASE WHEN is_effect THEN 'idempotency_violation' ELSE 'duplicate' END,
               type, source, idempotency_key, copies, first_event_id,
               CASE WHEN is_effect
                    THEN 'effect ' || n || ' of ' || copies || ' for idempotency key '
                         || idempotency_key || ' (first: ' || first_event_id || ')'
                    ELSE 'sent again with idempotency key ' || idempotency_key
                         || ' (first: ' || first_event_id || ')' END
        FROM keyed_repeat WHERE n > 1
        ORDER BY trace_id, event_id, kind
    """
    return Query([base, KEYED_SQL], select, params, DUPLICATE_COLUMNS)


def duplicates(con: duckdb.DuckDBPyConnection, **filters: Unpack[Filters]) -> pd.DataFrame:  # fmt: skip
    """Redeliveries and idempotency violations.

    * ``duplicate``: the same event (``trace_id``, ``source``, ``event_id``) recorded more than
      once (one row per event, ``copies`` records); or a request sent again: events of the same
      type and source sharing an idempotency key (one row per repeat, the first is not flagged).
    * ``idempotency_violation``: a keyed request whose handler produced its effect more than
      once. An *effect* is an event that carries the idempotency key of the event it reacts to;
      two or more effects of one type for one key are a violation, and each effect after the
      first (by time) is a row.

    Zipkin's shared client/server span ids are imported as two events (the server half's id is
    suffixed), so one RPC is never a duplicate.

    Args:
        con: the connection.
        **filters: ``trace_id``, ``system``, ``start``, ``end`` (see ``Filters``).

    Returns:
        Columns ``trace_id``, ``event_id``, ``kind``, ``type``, ``source``,
        ``idempotency_key``, ``copies`` (records, or events sharing the key),
        ``first_event_id`` (the first of the group), ``detail``.
    """
    return run(con, duplicates_query(**filters))


def late_events_query(
    *,
    terminal_types: TerminalTypes = None,
    **filters: Unpack[Filters],
) -> Query:
    """The query behind :func:`late_events`."""
    base, params = scoped(**filters)
    params["terminal_types"] = terminal_types
    sequenced = """sequenced AS (
        SELECT trace_id, event_id, type, source, ts, sq,
               lag(sq) OVER w AS prev_sq, lag(event_id) OVER w AS prev_id, lag(ts) OVER w AS prev_ts
        FROM (SELECT *, sequence AS sq FROM uev WHERE sequence IS NOT NULL)
        WINDOW w AS (PARTITION BY trace_id, source ORDER BY ts, seq)
    )"""
    delay = "(epoch_us({ts}) - epoch_us({ref})) / 1e6"
    select = f"""
        SELECT * FROM (
          SELECT *, row_number() OVER (PARTITION BY trace_id, event_id, kind
                                       ORDER BY pri, reference_event_id, detail) AS nth FROM (
            SELECT u.trace_id, u.event_id, 'late' AS kind, u.type, u.source, u.ts,
                   t.term_id AS reference_event_id, t.term_end AS reference_ts,
                   {delay.format(ref="t.term_end", ts="u.ts")} AS delay_s,
                   'after the trace ended with ' || t.term_id AS detail, 1 AS pri
            FROM uev u JOIN terminal t USING (trace_id) WHERE u.ts > t.term_end
            UNION ALL
            SELECT trace_id, event_id, 'late', type, source, ts, reference_event_id, reference_ts,
                   {delay.format(ref="reference_ts", ts="ts")},
                   CASE WHEN moved_on
                             AND (epoch_us(ts) - epoch_us(reference_ts)) <= timeout_ms * 1000
                        THEN 'response after the requester had moved on'
                        ELSE 'response after the request''s ' || timeout_ms || ' ms timeout' END, 0
            FROM late_response_found
            UNION ALL
            SELECT c_trace, c_id, 'out_of_order', c_type, c_source, c_ts, p_id, p_ts,
                   {delay.format(ref="p_ts", ts="c_ts")},
                   'recorded ' || round((epoch_us(p_ts) - epoch_us(c_ts)) / 1e3, 3)
                       || ' ms before its parent (clock skew?)', 0
            FROM pedge WHERE c_ts < p_ts
            UNION ALL
            SELECT trace_id, event_id, 'out_of_order', type, source, ts, prev_id, prev_ts,
                   {delay.format(ref="prev_ts", ts="ts")},
                   'sequence ' || sq || ' after ' || prev_sq || ' from the same source', 1
            FROM sequenced
            WHERE CASE WHEN regexp_matches(sq, '^[0-9]+$') AND regexp_matches(prev_sq, '^[0-9]+$')
                       THEN CAST(sq AS DECIMAL(38, 0)) < CAST(prev_sq AS DECIMAL(38, 0))
                       ELSE sq < prev_sq END
          )
        ) WHERE nth = 1 ORDER BY trace_id, ts, event_id, kind
    """
    ctes = [base, terminal_types_sql(terminal_types), TERMINAL_SQL, LATE_RESPONSE_SQL, sequenced]
    return Query(ctes, select, params, LATE_COLUMNS, terminal_frames(terminal_types))


def late_events(
    con: duckdb.DuckDBPyConnection, *, terminal_types: list[str] | None = None,
    **filters: Unpack[Filters],
) -> pd.DataFrame:  # fmt: skip
    """Late and out-of-order events.

    * ``late``: an event that happened after its trace's terminal event ended (the first event
      of a terminal type: ``terminal_types``, or learnt, see ``terminal_types_sql``); or a
      response (a child from someone other than the requester) to a request that declares a
      timeout (``attrs.timeoutms``), arriving after that timeout or after the requester had
      already reacted to the request itself (it gave up / moved on).
    * ``out_of_order``: a child recorded earlier than its parent (clock skew; ``delay_s`` is
      the negative skew), or a per-source ``sequence`` attribute (the CloudEvents sequence
      extension) going backwards in time order.

    Args:
        con: the connection.
        terminal_types: event types that end a trace; ``None`` learns them from the data.
        **filters: ``trace_id``, ``system``, ``start``, ``end``.

    Returns:
        Columns ``trace_id``, ``event_id``, ``kind``, ``type``, ``source``, ``ts``,
        ``reference_event_id`` (the terminal event, request or parent it is late or early
        against), ``reference_ts``, ``delay_s`` (seconds after the reference; negative for
        out-of-order), ``detail``. One row per event and kind.
    """
    known = known_terminal_types(con, terminal_types, **filters)
    return run(con, late_events_query(terminal_types=known, **filters))
