"""Failure attribution: which agent, at which step, made a failed run fail (offline rules).

``attribute_failure`` walks a cascade of evidence, most specific first, and stops at the first
rule that fires:

1. **stall**: the first message in which a coordinator's progress ledger says no progress is
   being made or the team is in a loop (Magentic-One's ``is_progress_being_made: false`` /
   ``is_in_loop: true``); blamed: the latest earlier step by another agent, whose output the
   coordinator was judging.
2. **failed execution**: the first tool / terminal output reporting a failure (non-zero exit
   code, traceback); blamed: the latest earlier agent step, whose code or call was executed.
3. **answer origin**: the first agent step (after the task statement) containing at least half
   of the distinctive tokens of the final answer (the last substantive agent message's words
   that are not in the task; its numbers when it has any): the claim the rest repeats.
4. **first contribution**: the first agent step after the task statement.

Steps are ``events.seq`` (for Who&When the index into ``history``; for AgentRx the 1-based step
number). Tools, terminals and the human/user are never blamed; ``(thought)`` and
``(termination condition)`` steps of a coordinator are agent steps.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import pandas as pd

from toolkit.db import query

NOT_AGENT = re.compile(r"(?i)terminal|^(human|user|system|environment)$")
STALL = re.compile(
    r'(?is)"is_progress_being_made"\s*:\s*\{\s*"reason"\s*:\s*"(?:[^"\\]|\\.)*"\s*,\s*"answer"\s*:'
    r'\s*false|"is_in_loop"\s*:\s*\{\s*"reason"\s*:\s*"(?:[^"\\]|\\.)*"\s*,\s*"answer"\s*:\s*true'
)
FAILED = re.compile(
    r"(?i)exitcode: [1-9]|execution failed|traceback \(most recent|exit code: [1-9]"
)
_SCORES = {"stall": 0.6, "failed_execution": 0.5, "answer_origin": 0.4, "first_contribution": 0.2}
ATTRIBUTION_COLUMNS = ["group", "traces", "agent_accuracy", "step_accuracy", "both_accuracy"]


def _words(text: Any) -> set[str]:
    return set(re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", str(text).lower()))


def _steps(con: duckdb.DuckDBPyConnection, trace_id: str) -> tuple[pd.DataFrame, str]:
    ev = query(
        con,
        """SELECT seq, any_value(source) AS source, any_value(content) AS content
           FROM events WHERE trace_id = $t GROUP BY seq ORDER BY seq""",
        t=trace_id,
    )
    task = query(con, "SELECT task FROM traces WHERE trace_id = $t", t=trace_id)["task"]
    return ev, str(task.iloc[0]) if len(task) and task.iloc[0] is not None else ""


def _before(agent: list[bool], src: list[str], i: int, other_than: str | None) -> int | None:
    for k in range(i - 1, -1, -1):
        if agent[k] and src[k] != other_than:
            return k
    return None


def attribute_failure(con: duckdb.DuckDBPyConnection, trace_id: str) -> dict[str, Any]:
    """The agent and step that a failed run's failure is attributed to (see the module doc).

    Returns:
        ``{"trace_id", "agent"`` (the source as the trace spells it), ``"step"`` (``events.seq``
        of the decisive step, an int), ``"score"`` (0-1, how specific the rule that fired is),
        ``"rule"``, ``"evidence"`` (``{"event_seq": [...], "reason": ...}``)``}``; agent and
        step are ``None`` for a trace without agent steps.

    Raises:
        KeyError: the trace has no events.
    """
    ev, task = _steps(con, trace_id)
    if ev.empty:
        raise KeyError(f"no events for trace {trace_id!r}")
    src = [str(s) if s is not None else "" for s in ev["source"]]
    text = [str(c) if c is not None else "" for c in ev["content"]]
    seq = [int(s) for s in ev["seq"]]
    agent = [bool(s) and not NOT_AGENT.search(s) for s in src]
    start = next((i for i, a in enumerate(agent) if a), None)

    def found(i: int | None, rule: str, by: int | None, why: str) -> dict[str, Any] | None:
        if i is None:
            return None
        cited = [seq[i]] + ([seq[by]] if by is not None and by != i else [])
        return {"trace_id": trace_id, "agent": src[i], "step": seq[i], "score": _SCORES[rule],
                "rule": rule, "evidence": {"event_seq": cited, "reason": why}}  # fmt: skip

    for i, body in enumerate(text):
        if STALL.search(body):
            hit = found(_before(agent, src, i, src[i]), "stall", i,
                        f"step {seq[i]} reports no progress / a loop; blamed the output it judged")  # fmt: skip
            if hit:
                return hit
    for i, body in enumerate(text):
        if not agent[i] and FAILED.search(body[:400]):
            hit = found(_before(agent, src, i, None), "failed_execution", i,
                        f"step {seq[i]} reports a failed execution of this step's code/call")  # fmt: skip
            if hit:
                return hit
            break
    talk = [i for i, a in enumerate(agent) if a and i != start and len(text[i].strip()) > 20]
    if talk:
        final = _words(text[talk[-1]]) - _words(task)
        key = {w for w in final if re.search(r"\d", w)} or final
        for i in talk:
            if key and len(key & _words(text[i])) >= 0.5 * len(key):
                hit = found(i, "answer_origin", talk[-1],
                            f"first step holding the final answer's claim (step {seq[talk[-1]]})")  # fmt: skip
                if hit:
                    return hit
    later = next((i for i, a in enumerate(agent) if a and start is not None and i > start), start)
    if later is None:
        return {"trace_id": trace_id, "agent": None, "step": None, "score": 0.0,
                "rule": None, "evidence": {"event_seq": [], "reason": "no agent steps"}}  # fmt: skip
    hit = found(later, "first_contribution", None, "the first agent contribution after the task")
    assert hit is not None  # `later` indexes an agent step, for which `found` always answers
    return hit


def attribution_labels(
    con: duckdb.DuckDBPyConnection, *, system: str | None = None
) -> pd.DataFrame:
    """The human attribution labels (annotations with mode ``attribution``), one per trace.

    Returns:
        Columns ``trace_id``, ``system``, ``agent``, ``step``; for AgentRx traces with several
        failures, the root-cause failure when marked, else the earliest step.
    """
    return query(
        con,
        """SELECT a.trace_id, any_value(t.system) AS system,
                  arg_min(json_extract_string(a.evidence, '$.agent'),
                          (NOT coalesce(json_extract(a.evidence, '$.root_cause')::BOOLEAN, false),
                           json_extract(a.evidence, '$.step')::BIGINT)) AS agent,
                  arg_min(json_extract(a.evidence, '$.step')::BIGINT,
                          (NOT coalesce(json_extract(a.evidence, '$.root_cause')::BOOLEAN, false),
                           json_extract(a.evidence, '$.step')::BIGINT)) AS step
           FROM annotations a JOIN traces t USING (trace_id)
           WHERE a.mode = 'attribution' AND a.annotator = 'human'
             AND a.trace_id IN (SELECT DISTINCT trace_id FROM events)
             AND ($system IS NULL OR t.system = $system)
           GROUP BY a.trace_id ORDER BY a.trace_id""",
        system=system,
    )


def attribution_accuracy(
    con: duckdb.DuckDBPyConnection, *, system: str | None = None, by: str = "system"
) -> pd.DataFrame:
    """Exact-match accuracy of :func:`attribute_failure` against the human labels.

    Agent: case-insensitive equality of names. Step: integer equality (no substring matching,
    unlike the Who&When paper's script, which flatters two-digit steps).

    Args:
        con: the connection.
        system: only traces of this system.
        by: ``system`` (one row per system, plus ``all``) or ``trace`` (one row per trace).

    Returns:
        For ``by="system"``: columns ``group``, ``traces``, ``agent_accuracy``,
        ``step_accuracy``, ``both_accuracy`` (0-1). For ``by="trace"``: ``trace_id``,
        ``system``, ``agent``, ``step`` (labels), ``pred_agent``, ``pred_step``, ``rule``,
        ``agent_ok``, ``step_ok``.
    """
    labels = attribution_labels(con, system=system)
    preds = [attribute_failure(con, t) for t in labels["trace_id"]]
    out = labels.assign(
        pred_agent=[p["agent"] for p in preds], pred_step=[p["step"] for p in preds],
        rule=[p["rule"] for p in preds],
    )  # fmt: skip
    # As pandas strings, so that no labels (an empty or None-only column) compare too.
    label_agent = out["agent"].astype("string").str.casefold()
    pred_agent = out["pred_agent"].astype("string").str.casefold()
    out["agent_ok"] = (label_agent == pred_agent).fillna(False).astype(bool)
    out["step_ok"] = (out["step"] == out["pred_step"]).astype(bool)
    if by == "trace":
        return out
    parts = [(str(g), d) for g, d in out.groupby("system", sort=True)] + [("all", out)]
    return pd.DataFrame(
        [
            {
                "group": g,
                "traces": len(d),
                "agent_accuracy": d["agent_ok"].mean(),
                "step_accuracy": d["step_ok"].mean(),
                "both_accuracy": (d["agent_ok"] & d["step_ok"]).mean(),
            }
            for g, d in parts
            if len(d)
        ],
        columns=ATTRIBUTION_COLUMNS,
    )
