"""How well one annotator agrees with another, per MAST mode and per category."""

from __future__ import annotations

import math
from collections.abc import Iterable

import duckdb
import pandas as pd

from toolkit.classify.classify import RULE_MODES, RULES_ANNOTATOR
from toolkit.classify.taxonomy import CATEGORIES, TAXONOMY
from toolkit.db import query

AGREEMENT_COLUMNS = [
    "level", "category", "mode", "name", "assessed", "modes_not_assessed", "traces", "support",
    "tp", "fp", "fn", "tn", "accuracy", "precision", "recall", "f1", "kappa",
]  # fmt: skip


def reference_labels(
    con: duckdb.DuckDBPyConnection, reference: str = "human", *, system: str | None = None
) -> pd.DataFrame:
    """One label per (trace, mode) from ``reference``'s votes, by majority.

    ``reference`` matches the annotator of that name and its numbered members (``human``
    matches ``human`` and ``human:1``, ``human:2``, ...). A vote is yes when its confidence is
    above 0, no when it is 0; a missing vote is unknown (not counted). More yes than no votes
    gives yes, more no than yes gives no; a tie is unknown and left out.

    Returns:
        Columns ``trace_id``, ``mode``, ``yes_votes``, ``no_votes``, ``label`` (bool).
    """
    return query(
        con,
        """SELECT a.trace_id, a.mode, count(*) FILTER (a.confidence > 0) AS yes_votes,
                  count(*) FILTER (a.confidence = 0) AS no_votes,
                  count(*) FILTER (a.confidence > 0) > count(*) FILTER (a.confidence = 0) AS label
           FROM annotations a
           WHERE (a.annotator = $ref OR a.annotator LIKE $ref || ':%') AND a.mode LIKE 'FM-%'
             AND a.confidence IS NOT NULL
             AND ($system IS NULL OR a.trace_id IN (SELECT trace_id FROM traces WHERE system = $system))
           GROUP BY a.trace_id, a.mode
           HAVING count(*) FILTER (a.confidence > 0) <> count(*) FILTER (a.confidence = 0)
           ORDER BY a.trace_id, a.mode""",
        ref=reference,
        system=system,
    )


def _scores(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    n = tp + fp + fn + tn
    nan = float("nan")
    acc = (tp + tn) / n if n else nan
    prec = tp / (tp + fp) if tp + fp else nan
    rec = tp / (tp + fn) if tp + fn else nan
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else nan
    pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / n**2 if n else nan
    kappa = (acc - pe) / (1 - pe) if n and not math.isclose(pe, 1.0) else nan
    return {"accuracy": acc, "precision": prec, "recall": rec, "f1": f1, "kappa": kappa}


def agreement(
    con: duckdb.DuckDBPyConnection,
    reference: str = "human",
    candidate: str = RULES_ANNOTATOR,
    *,
    assessed: Iterable[str] | None = None,
    system: str | None = None,
) -> pd.DataFrame:
    """Agreement of ``candidate`` with ``reference`` on the traces the reference labelled.

    The reference label is the majority vote (:func:`reference_labels`). The candidate says yes
    for a (trace, mode) when it has a row with confidence above 0, and no otherwise: rules and
    judges store only the modes they found. Modes the candidate cannot see are *not assessed*
    (``assessed``; default: ``RULE_MODES`` for ``rules``, all 14 modes for others): their rows
    carry NaN scores and they are left out of the category and overall rows, which count them
    in ``modes_not_assessed``.

    Args:
        con: the connection.
        reference: the reference annotator (``human`` matches ``human`` and ``human:*``).
        candidate: the annotator to score.
        assessed: the modes the candidate assesses.
        system: only traces of this system.

    Returns:
        Columns ``level`` (``mode``, ``category``, ``all``), ``category``, ``mode`` (NaN above
        mode level), ``name``, ``assessed``, ``modes_not_assessed``, ``traces`` (pairs compared:
        traces, or trace x mode above mode level), ``support`` (reference yes), ``tp``, ``fp``,
        ``fn``, ``tn``, ``accuracy``, ``precision``, ``recall``, ``f1``, ``kappa`` (Cohen's).
    """
    if assessed is None:
        assessed = RULE_MODES if candidate == RULES_ANNOTATOR else tuple(TAXONOMY)
    seen = set(assessed)
    ref = reference_labels(con, reference, system=system)
    cand = query(
        con,
        "SELECT DISTINCT trace_id, mode FROM annotations WHERE annotator = $c AND confidence > 0",
        c=candidate,
    )
    flagged = set(zip(cand["trace_id"], cand["mode"], strict=True))
    ref["pred"] = [(t, m) in flagged for t, m in zip(ref["trace_id"], ref["mode"], strict=True)]
    rows = []

    def count(df: pd.DataFrame) -> dict[str, int]:
        label, pred = df["label"].astype(bool), df["pred"].astype(bool)
        return {
            "traces": len(df), "support": int(label.sum()), "tp": int((label & pred).sum()),
            "fp": int((~label & pred).sum()), "fn": int((label & ~pred).sum()),
            "tn": int((~label & ~pred).sum()),
        }  # fmt: skip

    for mode in TAXONOMY.values():
        part = ref[ref["mode"] == mode.id]
        c = count(part)
        ok = mode.id in seen
        scores = _scores(c["tp"], c["fp"], c["fn"], c["tn"]) if ok else {}
        counts: dict[str, int | None] = dict(c)
        if not ok:
            counts |= {"tp": None, "fp": None, "fn": None, "tn": None}
        rows.append({"level": "mode", "category": mode.category, "mode": mode.id,
                     "name": mode.name, "assessed": ok, "modes_not_assessed": int(not ok),
                     **counts, **scores})  # fmt: skip
    groups = [(cat.id, cat.name, [m for m in TAXONOMY.values() if m.category == cat.id])
              for cat in CATEGORIES.values()]  # fmt: skip
    groups.append(("all", "all modes", list(TAXONOMY.values())))
    for cat_id, name, modes in groups:
        ids = [m.id for m in modes if m.id in seen]
        c = count(ref[ref["mode"].isin(ids)])
        rows.append({"level": "all" if cat_id == "all" else "category",
                     "category": None if cat_id == "all" else cat_id, "mode": None, "name": name,
                     "assessed": bool(ids), "modes_not_assessed": len(modes) - len(ids), **c,
                     **_scores(c["tp"], c["fp"], c["fn"], c["tn"])})  # fmt: skip
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
