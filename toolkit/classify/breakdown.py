"""How often each MAST mode was flagged, per system / framework / model: data for charts."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import numpy as np
import pandas as pd

from toolkit.classify.classify import RULE_MODES, RULES_ANNOTATOR
from toolkit.classify.taxonomy import taxonomy_frame
from toolkit.db import query

BREAKDOWN_COLUMNS = [
    "group", "category", "category_name", "mode", "mode_name", "traces", "flags", "trace_share",
    "flag_share", "assessed",
]  # fmt: skip
# Where a group's value lives: the traces table, or the trace attributes the importers fill.
_GROUP_SQL = {
    "all": "'all'",
    "system": "coalesce(t.system, '(unknown)')",
    "framework": "coalesce(t.system, '(unknown)')",
    "model": "coalesce(json_extract_string(t.attrs, '$.llm'), "
    "json_extract_string(t.attrs, '$.model'), '(unknown)')",
    "benchmark": "coalesce(json_extract_string(t.attrs, '$.benchmark'), '(unknown)')",
}


def failure_breakdown(
    con: duckdb.DuckDBPyConnection,
    by: tuple[str, ...] = ("category", "mode"),
    *,
    group_by: str = "all",
    system: str | None = None,
    annotator: str = RULES_ANNOTATOR,
    assessed: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Counts and shares of each MAST mode's flags, one row per group x mode (all 14 modes).

    Two shares, not to be confused: ``trace_share`` is the share of the group's traces flagged
    with the mode (traces that the annotator looked at: all traces of the group that have
    events); ``flag_share`` is the mode's share of all the group's flags, which is how the MAST
    paper reports prevalence (its per-mode percentages sum to 100). A human reference's flags
    are its yes votes (confidence > 0), so one trace can give several flags for a mode.

    Args:
        con: the connection.
        by: the taxonomy levels of the rows; always category and mode (kept for callers that
            pass it explicitly; sum ``traces``/``flags`` by ``category`` for category totals).
        group_by: ``all``, ``system`` (= ``framework``), ``model`` or ``benchmark``.
        system: only traces of this system.
        annotator: whose annotations (``rules``, a judge's name, ``human``, ``human:1``...).
            ``human`` counts ``human`` and ``human:*`` votes.
        assessed: modes the annotator can see; default ``RULE_MODES`` for ``rules``, else all.
            The others have NaN counts and ``assessed`` False.

    Returns:
        Columns ``group``, ``category`` (FC1-FC3), ``category_name``, ``mode`` (FM-1.1 ...),
        ``mode_name``, ``traces`` (traces flagged with the mode), ``flags`` (annotation rows
        with confidence > 0), ``trace_share`` and ``flag_share`` (0-1), ``assessed`` (bool).

    Raises:
        ValueError: an unknown ``group_by``.
    """
    if group_by not in _GROUP_SQL:
        raise ValueError(f"group_by must be one of {sorted(_GROUP_SQL)}, not {group_by!r}")
    if not set(by) <= {"category", "mode"}:
        raise ValueError("by may name only 'category' and 'mode'")
    if assessed is None:
        assessed = RULE_MODES if annotator == RULES_ANNOTATOR else taxonomy_frame()["mode"]
    seen = set(assessed)
    group = _GROUP_SQL[group_by]
    traces = query(
        con,
        f"""SELECT {group} AS "group", count(*) AS n FROM traces t
            WHERE t.trace_id IN (SELECT DISTINCT trace_id FROM events)
              AND ($system IS NULL OR t.system = $system) GROUP BY 1""",
        system=system,
    )
    flags = query(
        con,
        f"""SELECT {group} AS "group", a.mode, count(DISTINCT a.trace_id) AS traces,
                   count(*) AS flags
            FROM annotations a JOIN traces t USING (trace_id)
            WHERE (a.annotator = $a OR ($a = 'human' AND a.annotator LIKE 'human:%'))
              AND a.confidence > 0 AND a.mode LIKE 'FM-%'
              AND ($system IS NULL OR t.system = $system)
            GROUP BY ALL""",
        a=annotator,
        system=system,
    )
    tax = taxonomy_frame()[["category", "category_name", "mode", "mode_name"]]
    groups = sorted(traces["group"]) or (["all"] if group_by == "all" else [])
    grid = pd.DataFrame({"group": groups}).merge(tax, how="cross")
    out = grid.merge(flags, on=["group", "mode"], how="left").merge(traces, on="group", how="left")
    out["assessed"] = out["mode"].isin(seen)
    out[["traces", "flags"]] = out[["traces", "flags"]].fillna(0)
    total = out[out["assessed"]].groupby("group")["flags"].sum()
    out["trace_share"] = out["traces"] / out["n"].where(out["n"] > 0)
    out["flag_share"] = out["flags"] / out["group"].map(total).where(lambda s: s > 0)
    for col in ("traces", "flags", "trace_share", "flag_share"):
        out[col] = out[col].astype(float).where(out["assessed"], np.nan)
    out["group"] = out["group"].astype(str)
    return out[BREAKDOWN_COLUMNS].reset_index(drop=True)
