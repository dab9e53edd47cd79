"""``classify``: run the rules (or a judge) over traces and store what they find as annotations."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import duckdb
import pandas as pd

from toolkit.classify import rules_content as rc
from toolkit.classify import rules_flow as rf
from toolkit.classify.judge import MAX_CHARS, Judge, build_prompt, judge_name, parse_answer
from toolkit.classify.taxonomy import TAXONOMY
from toolkit.db import query
from toolkit.ingest.base import create_stage, drop_stage, merge_annotations, stage_rows

RULES_ANNOTATOR = "rules"
# The modes a rule can see; the others are "not assessed" by the rules (never "absent").
RULE_MODES: tuple[str, ...] = (
    "FM-1.3", "FM-1.5", "FM-2.1", "FM-2.3", "FM-2.5", "FM-3.1", "FM-3.2", "FM-3.3",
)  # fmt: skip
CLASSIFY_COLUMNS = ["trace_id", "mode", "annotator", "verdict", "confidence", "evidence", "status"]


def _rules(con: duckdb.DuckDBPyConnection, terminal_types: list[str]) -> list[dict[str, Any]]:
    runs: list[Callable[[], list[rf.Hit]]] = [
        lambda: rf.repetition_flow(con),
        lambda: rc.repetition_content(con),
        lambda: rf.after_terminal(con, terminal_types),
        lambda: rc.termination_content(con),
        lambda: rc.reset(con),
        lambda: rc.derailment(con),
        lambda: rf.ignored_input(con),
        lambda: rf.premature_termination(con, terminal_types),
        lambda: rf.no_verification(con, terminal_types),
        lambda: rf.incorrect_verification(con),
    ]
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        for hit in run():
            key = (hit["trace_id"], hit["mode"])
            if key not in merged:
                merged[key] = dict(hit)
                continue
            seen = merged[key]  # two rules for one mode: one row, evidence of both
            seen["confidence"] = max(seen["confidence"], hit["confidence"])
            seen["event_ids"] = list(dict.fromkeys([*seen["event_ids"], *hit["event_ids"]]))
            seen["reason"] = f"{seen['reason']}; {hit['reason']}"
    return [merged[k] for k in sorted(merged)]


def _in_scope(
    con: duckdb.DuckDBPyConnection, trace_id: str | None, system: str | None
) -> list[str]:
    return query(
        con,
        """SELECT DISTINCT trace_id FROM events
           WHERE ($trace_id IS NULL OR trace_id = $trace_id)
             AND ($system IS NULL OR trace_id IN (SELECT trace_id FROM traces WHERE system = $system))
           ORDER BY trace_id""",
        trace_id=trace_id,
        system=system,
    )["trace_id"].tolist()


def _store(
    con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, annotator: str, replaced: list[str]
) -> None:
    """Replace ``annotator``'s FM annotations of the ``replaced`` traces by ``rows``, atomically."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "DELETE FROM annotations WHERE annotator = $a AND mode LIKE 'FM-%' "
            "AND list_contains($t, trace_id)",
            {"a": annotator, "t": replaced},
        )
        create_stage(con)
        stage_rows(
            con,
            "annotations",
            [
                {
                    "trace_id": r.trace_id,
                    "mode": r.mode,
                    "annotator": annotator,
                    "confidence": r.confidence,
                    "evidence": r.evidence,
                    "origin": f"toolkit.classify:{annotator}",
                }
                for r in rows.itertuples(index=False)
            ],
        )
        merge_annotations(con)
        drop_stage(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def classify(
    con: duckdb.DuckDBPyConnection,
    *,
    judge: Judge | None = None,
    annotator: str | None = None,
    trace_id: str | None = None,
    system: str | None = None,
    terminal_types: list[str] | None = None,
    max_chars: int = MAX_CHARS,
    store: bool = True,
) -> pd.DataFrame:
    """Classify traces by MAST failure mode and store the modes found in ``annotations``.

    Without a judge, the offline rules run (``RULE_MODES``; see ``rules_flow`` and
    ``rules_content`` for each rule's definition) and write rows with annotator ``rules``. With
    ``judge`` (any ``prompt -> answer`` callable), one prompt per trace is sent to it and the
    modes it answers *yes* are stored under ``annotator`` (default: the judge's ``__name__``).
    Either way the annotator's earlier FM rows for the traces classified are replaced, in one
    transaction, so a re-run leaves the same table; a trace whose judge call failed keeps its
    earlier rows. Evidence is ``{"event_ids": [...], "reason": "..."}``.

    Args:
        con: the connection.
        judge: a callable taking the prompt text and returning the judge's answer text.
        annotator: the name stored for the judge's rows (rules always store ``rules``).
        trace_id: classify one trace.
        system: classify the traces of one system.
        terminal_types: event types that end a trace; ``None`` learns them from the database.
        max_chars: the budget for the trace's events in a judge prompt.
        store: write the annotations (``False``: only return them).

    Returns:
        Columns ``trace_id``, ``mode``, ``annotator``, ``verdict`` (``yes``; for a judge also
        ``no`` / ``unknown``), ``confidence``, ``evidence`` (JSON text), ``status`` (``ok``; for
        a judge ``malformed`` or ``error: <message>``, with ``mode`` empty). Only ``yes`` rows
        are stored.
    """
    scope = _in_scope(con, trace_id, system)
    if judge is None:
        types = rf.learnt_terminal_types(con) if terminal_types is None else terminal_types
        keep = set(scope)
        rows = [
            {
                "trace_id": h["trace_id"],
                "mode": h["mode"],
                "annotator": RULES_ANNOTATOR,
                "verdict": "yes",
                "confidence": float(h["confidence"]),
                "evidence": json.dumps({"event_ids": h["event_ids"], "reason": h["reason"]}),
                "status": "ok",
            }
            for h in _rules(con, types)
            if h["trace_id"] in keep
        ]
        name, judged = RULES_ANNOTATOR, scope
    else:
        name = judge_name(judge, annotator)
        rows, judged = _judge_all(con, judge, name, scope, max_chars)
    out = pd.DataFrame(rows, columns=CLASSIFY_COLUMNS)
    if store:
        _store(con, out[(out["verdict"] == "yes") & (out["status"] == "ok")], name, judged)
    return out.reset_index(drop=True)


def _judge_all(
    con: duckdb.DuckDBPyConnection, judge: Judge, name: str, scope: list[str], max_chars: int
) -> tuple[list[dict[str, Any]], list[str]]:
    events = query(
        con,
        """SELECT e.trace_id, e.event_id, e.seq, e.source, e.target, e.type, e.content
           FROM events e WHERE list_contains($t, e.trace_id) ORDER BY e.trace_id, e.seq, e.ts""",
        t=scope,
    )
    tasks = dict(
        query(con, "SELECT trace_id, task FROM traces WHERE list_contains($t, trace_id)", t=scope)
        .itertuples(index=False, name=None)
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    judged: list[str] = []
    by_trace = dict(tuple(events.groupby("trace_id", sort=True)))
    for trace_id in scope:
        ev = by_trace[trace_id]
        base = {"trace_id": trace_id, "annotator": name}
        try:
            answer = judge(build_prompt(trace_id, tasks.get(trace_id), ev, max_chars=max_chars))
        except Exception as e:  # one failing call must not lose the other traces
            rows.append({**base, "mode": None, "verdict": None, "status": f"error: {e!r}"[:300]})
            continue
        status, verdicts = parse_answer(answer)
        if status != "ok":
            rows.append({**base, "mode": None, "verdict": None, "status": status})
            continue
        judged.append(trace_id)
        ids = dict(zip(ev["seq"].astype(str), ev["event_id"], strict=True))
        for mode in TAXONOMY:
            verdict, text, steps, confidence = verdicts[mode]
            event_ids = [ids[str(s)] for s in steps if str(s) in ids]
            rows.append(
                {
                    **base,
                    "mode": mode,
                    "verdict": verdict,
                    "confidence": confidence,
                    "evidence": json.dumps({"event_ids": event_ids, "reason": text}),
                    "status": "ok",
                }
            )
    return rows, judged
