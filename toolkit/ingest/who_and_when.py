"""Who&When (ICML 2025, "Which Agent Causes Task Failures and When?"): one failed run per file.

Each file is one JSON object: ``history`` (the conversation), the question, the ground truth and
the human failure attribution (``mistake_agent``, ``mistake_step``, ``mistake_reason``). The
subset is the name of the folder holding the file (``Algorithm-Generated``: CaptainAgent runs;
``Hand-Crafted``: Magentic-One runs).

Kept, and where:

====================================  ==========================================================
file                                  ``traces.trace_id`` = ``whowhen:<subset>:<file stem>``
subset                                ``traces.system`` (CaptainAgent / Magentic-One), ``attrs.subset``
``question``                          ``traces.task``
``is_correct`` / ``is_corrected``     ``traces.outcome``: ``success`` when true, else ``failure``
                                      (the hand-crafted subset spells it ``is_corrected``)
``ground_truth``, ``question_ID``,    ``traces.attrs`` (same names)
``level``, ``mistake_type``,
``system_prompt``
``history[i]``                        one event: ``seq`` = ``event_id`` = ``i`` (0-based, the index
                                      ``mistake_step`` uses); ``parent_id`` = step ``i-1``
``history[i].name`` (else ``role``)   ``events.source``; a hand-crafted role
                                      ``Orchestrator (-> WebSurfer)`` gives source
                                      ``Orchestrator``, target ``WebSurfer``; ``(thought)`` and
                                      ``(termination condition)`` go to ``attrs.detail``
``history[i].role``                   ``events.attrs.role`` (as written)
``history[i].content``                ``events.content``
``mistake_*``                         one ``annotations`` row: mode ``attribution``, annotator
                                      ``human``, confidence 1.0, evidence ``{agent, step, reason}``
====================================  ==========================================================

Dropped: nothing else is present. A step that is not an object with ``content`` is rejected
(``path#<i>``) and the rest of the trace loads; a file that is not a Who&When object is rejected
whole (``path#0``).
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from toolkit.ingest.base import Format, RecordError, Rejects, reject, stage_rows
from toolkit.ingest.chatlog import chain, raw, split_role, text_of
from toolkit.ingest.files import RECORD_FAILURES, as_key, check_record, load_json, reason_of

SYSTEMS = {"Algorithm-Generated": "CaptainAgent", "Hand-Crafted": "Magentic-One"}
_TRACE_ATTRS = ("ground_truth", "question_ID", "level", "mistake_type", "system_prompt")


def trace_id_for(path: Path) -> str:
    """``whowhen:<subset>:<file stem>``, the subset being the parent folder's name."""
    return f"whowhen:{path.parent.name}:{path.stem}"


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage one Who&When file: its trace, one event per history step, the attribution."""
    doc = load_json(con, path)
    if doc is None:
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("history"), list):
        reject(con, f"{path}#0", "not a Who&When record (an object with a history list)", raw(doc))
        return
    try:
        check_record({k: v for k, v in doc.items() if k != "history"})
    except RecordError as e:
        reject(con, f"{path}#0", str(e), None)
        return
    trace_id = trace_id_for(path)
    subset = path.parent.name
    correct = doc.get("is_correct", doc.get("is_corrected"))
    attrs = {"subset": subset, **{k: doc[k] for k in _TRACE_ATTRS if k in doc}}
    stage_rows(
        con,
        "traces",
        [
            {
                "trace_id": trace_id,
                "system": SYSTEMS.get(subset),
                "task": doc.get("question"),
                "outcome": None if correct is None else ("success" if correct else "failure"),
                "attrs": attrs,
            }
        ],
    )
    steps = []
    rejects = Rejects(con)
    for i, step in enumerate(doc["history"]):
        try:
            if not isinstance(step, dict) or "content" not in step:
                raise RecordError("history step is not an object with content")
            check_record(step)
            role = step.get("role")
            name = step.get("name")
            label = as_key(name, "name") or as_key(role, "role") or ""
            source, target, detail = split_role(label)
            attrs = {"role": role, **({"detail": detail} if detail else {})}
            steps.append(
                {
                    "seq": i,
                    "source": source or None,
                    "target": target,
                    "content": text_of(step.get("content")),
                    "attrs": attrs,
                }
            )
        except RECORD_FAILURES as e:
            rejects.add(f"{path}#{i}", reason_of(e), step)
    rejects.flush()
    stage_rows(con, "events", chain(trace_id, steps, f"{path}#"))
    _stage_attribution(con, path, trace_id, doc)


def _stage_attribution(
    con: duckdb.DuckDBPyConnection, path: Path, trace_id: str, doc: dict
) -> None:
    agent, step = doc.get("mistake_agent"), doc.get("mistake_step")
    if agent is None and step is None:
        return
    try:
        step_index = None if step is None else int(str(step).strip())
    except ValueError:
        reject(
            con,
            f"{path}#0",
            f"mistake_step is not an integer: {step!r}",
            raw({k: doc.get(k) for k in ("mistake_agent", "mistake_step", "mistake_reason")}),
        )
        return
    stage_rows(
        con,
        "annotations",
        [
            {
                "trace_id": trace_id,
                "mode": "attribution",
                "annotator": "human",
                "confidence": 1.0,
                "evidence": {
                    "agent": agent,
                    "step": step_index,
                    "reason": doc.get("mistake_reason"),
                    "event_ids": [] if step_index is None else [str(step_index)],
                },
                "origin": f"{path}#0",
            }
        ],
    )


_SNIFF = re.compile(rb'"(mistake_agent|mistake_step|question_ID)"\s*:|"role"\s*:\s*"human"')
_HISTORY = re.compile(rb'"history"\s*:\s*\[')


def sniff(head: bytes) -> bool:
    """Who&When: a JSON object with a ``history`` list and ``mistake_*`` or ``question_ID``.

    The keys after a long ``history`` can lie beyond the head, so the hand-crafted files (which
    begin with ``history``) are recognised by their first step's ``"role": "human"``.
    """
    return head[:1] == b"{" and bool(_HISTORY.search(head)) and bool(_SNIFF.search(head))


FORMAT = Format(name="who_and_when", sniff=sniff, read=read)
