"""All event-flow findings in one long table, and counts of them per trace or system."""

from __future__ import annotations

from typing import Literal, Unpack

import duckdb
import pandas as pd

from toolkit.analyze.delivery import duplicates, late_events
from toolkit.analyze.flow import escalations, hangs, unhandled_events
from toolkit.analyze.scope import Filters, run, scoped

# The vocabulary of the simulator's truth.csv for event-flow findings, with a severity each.
SEVERITY = {
    "unhandled": "error",
    "hang": "error",
    "missing_terminal": "error",
    "idempotency_violation": "error",
    "duplicate": "warning",
    "late": "warning",
    "out_of_order": "warning",
    "escalation": "info",
}
FINDING_KINDS = tuple(SEVERITY)
FINDING_COLUMNS = ["trace_id", "event_id", "kind", "severity", "detail"]


def findings(
    con: duckdb.DuckDBPyConnection, *, terminal_types: list[str] | None = None,
    **filters: Unpack[Filters],
) -> pd.DataFrame:  # fmt: skip
    """Every finding of the event-flow analyses, one row per (trace, event, kind).

    Runs :func:`unhandled_events`, :func:`duplicates`, :func:`late_events`, :func:`hangs` and
    :func:`escalations` with their defaults (``terminal_types`` passed on) and stacks them.

    Returns:
        Columns ``trace_id``, ``event_id``, ``kind`` (one of ``FINDING_KINDS``, the words of
        the simulator's ``truth.csv``), ``severity`` (error, warning, info), ``detail``.
    """
    parts = [
        unhandled_events(con, terminal_types=terminal_types, **filters)
        .assign(kind="unhandled").rename(columns={"reason": "detail"}),
        duplicates(con, **filters),
        late_events(con, terminal_types=terminal_types, **filters),
        hangs(con, terminal_types=terminal_types, **filters),
        escalations(con, **filters).assign(
            kind="escalation", detail=lambda d: "handed to " + d["target"].fillna("?")
            + " (" + d["trigger"] + ")"),
    ]  # fmt: skip
    rows = pd.concat(
        [p[["trace_id", "event_id", "kind", "detail"]] for p in parts], ignore_index=True
    )
    rows = rows.drop_duplicates(["trace_id", "event_id", "kind"])
    rows.insert(3, "severity", rows["kind"].map(SEVERITY))
    return rows.sort_values(["trace_id", "event_id", "kind"], ignore_index=True)[FINDING_COLUMNS]


def summary(
    con: duckdb.DuckDBPyConnection, *, by: Literal["system", "trace"] = "system",
    terminal_types: list[str] | None = None, **filters: Unpack[Filters],
) -> pd.DataFrame:  # fmt: skip
    """Counts of each finding kind per system or per trace.

    Returns:
        Columns ``system`` (or ``trace_id`` and ``system`` when ``by="trace"``), ``traces``,
        ``events``, ``findings``, then one column per kind in ``FINDING_KINDS``. Every trace in
        scope is counted, with zeros where nothing was found.
    """
    found = findings(con, terminal_types=terminal_types, **filters)
    base, params = scoped(**filters)
    keys = ["trace_id", "system"] if by == "trace" else ["system"]
    kinds = ", ".join(
        f"coalesce(sum(f.n) FILTER (f.kind = '{k}'), 0)::BIGINT AS {k}" for k in FINDING_KINDS
    )
    ctes = [base, """per_trace AS (
        SELECT trace_id, coalesce(any_value(t.system), '(unknown)') AS system, count(*) AS events
        FROM ev LEFT JOIN traces t USING (trace_id) GROUP BY trace_id)""",
            "found AS (SELECT trace_id, kind, count(*) AS n FROM _found GROUP BY ALL)",
            """counted AS (
        SELECT pt.trace_id, pt.system, pt.events, coalesce(sum(f.n), 0)::BIGINT AS findings, """ + kinds + """
        FROM per_trace pt LEFT JOIN found f USING (trace_id) GROUP BY ALL)"""]  # fmt: skip
    sums = ", ".join(f"sum({k})::BIGINT AS {k}" for k in ("events", "findings", *FINDING_KINDS))
    select = f"""
        SELECT {", ".join(keys)}, count(*) AS traces, {sums} FROM counted
        GROUP BY {", ".join(keys)} ORDER BY findings DESC, {", ".join(keys)}
    """
    con.register("_found", found)
    try:
        return run(
            con, ctes, select, params, [*keys, "traces", "events", "findings", *FINDING_KINDS]
        )
    finally:
        con.unregister("_found")
