"""AgentRx (microsoft/AgentRx): Magentic-One trajectories and their ground-truth failures.

Two kinds of file, paired by trajectory id:

* a **trajectory** (``data/magentic_dataset/<id>.json``): a JSON list of ``{role, content}`` steps
  in Magentic-One's role labels (``human``, ``Orchestrator (thought)``,
  ``Orchestrator (-> WebSurfer)``, ``WebSurfer``, ...). The id is the file stem.
* a **ground truth** (``data/ground_truth/*.json``): a list of ``{trajectory_id, failures[],
  root_cause, failure_summary}``; each failure has ``step_number``, ``failure_category``,
  ``failed_agent``, ``step_reason``, ``category_reason``.

``step_number`` is **1-based**: in ``magentic_one_ground_truth.json`` it reaches the trajectory's
length (e.g. 93 of 93 steps) and step ``n`` is spoken by ``failed_agent`` when read as
``list[n-1]``. So ``seq`` = ``event_id`` = list index + 1 (an offset of one from the file's
0-based list), and an annotation's ``step`` names the event with that ``seq``.

Kept, and where:

=================================  ==============================================================
trajectory file stem (the id)      ``trace_id`` = ``agentrx:magentic:<id>``; ``traces.system`` =
                                   ``Magentic-One``; ``traces.task`` = the first ``human`` step
step ``i`` (0-based in the list)   one event, ``seq`` = ``event_id`` = ``i + 1``, parent = step ``i``
``role``                           ``source`` / ``target`` (``Orchestrator (-> X)``: target X;
                                   ``(thought)``, ``(termination condition)``: ``attrs.detail``);
                                   the label as written in ``attrs.role``
``content``                        ``content``
ground-truth ``trajectory_id``     ``trace_id`` = ``agentrx:<domain>:<id>``, domain ``tau_retail``
                                   for ``tau_retail.json`` (ids there are τ-bench task ids), else
                                   ``magentic``; ``traces.outcome`` = ``failure``;
                                   ``failure_summary`` and ``root_cause`` in ``traces.attrs``
each ``failures[]`` entry          annotation mode ``attribution``, annotator ``human``,
                                   evidence ``{agent, step, category, root_cause, reason,
                                   category_reason, failure_id, event_ids}`` (``root_cause``:
                                   whether ``root_cause.failure_id`` names this failure); and a
                                   second row, mode ``agentrx:<category>``, same evidence
=================================  ==============================================================

Dropped: nothing. The sample copies under ``trajectories/magentic-one/trajectories/`` are byte
copies of dataset files (the same bytes are skipped by the ingest's file hash); ingested alone they
get their file stem as id, since ``trajectories_info.json`` names one of them with an id that no
dataset file has. Rejects: a step that is not an object with ``role`` (``path#<step>``); a
ground-truth entry without a ``trajectory_id`` or a failure without ``step_number``
(``path#<entry>``, 1-based).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb

from toolkit.ingest.base import Format, RecordError, Rejects, reject, stage_rows
from toolkit.ingest.chatlog import chain, raw, split_role, text_of
from toolkit.ingest.files import (
    RECORD_FAILURES,
    as_key,
    as_list,
    as_object,
    check_record,
    load_json,
    reason_of,
)


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage an AgentRx trajectory or ground-truth file."""
    doc = load_json(con, path)
    if doc is None:
        return
    if isinstance(doc, list) and doc and isinstance(doc[0], dict) and "trajectory_id" in doc[0]:
        _read_ground_truth(con, path, doc)
    elif isinstance(doc, list):
        _read_trajectory(con, path, doc)
    else:
        reject(con, f"{path}#0", "not an AgentRx trajectory or ground-truth list", raw(doc)[:10000])


def _read_trajectory(con: duckdb.DuckDBPyConnection, path: Path, steps: list[Any]) -> None:
    trace_id = f"agentrx:magentic:{path.stem}"
    messages, task = [], None
    rejects = Rejects(con)
    for i, step in enumerate(steps):
        seq = i + 1  # the ground truth's step_number is 1-based
        try:
            if not isinstance(step, dict) or not isinstance(step.get("role"), str):
                raise RecordError("step is not an object with a role")
            check_record(step)
            source, target, detail = split_role(step["role"])
            content = text_of(step.get("content"))
        except RECORD_FAILURES as e:
            rejects.add(f"{path}#{seq}", reason_of(e), step)
            continue
        if task is None and source == "human":
            task = content
        attrs = {"role": step["role"], **({"detail": detail} if detail else {})}
        messages.append(
            {"seq": seq, "source": source, "target": target, "content": content, "attrs": attrs}
        )
    rejects.flush()
    stage_rows(
        con,
        "traces",
        [
            {
                "trace_id": trace_id,
                "system": "Magentic-One",
                "task": task,
                "attrs": {"dataset": "agentrx", "trajectory_id": path.stem},
            }
        ],
    )
    stage_rows(con, "events", chain(trace_id, messages, f"{path}#"))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else raw(value)


def _read_ground_truth(con: duckdb.DuckDBPyConnection, path: Path, entries: list[Any]) -> None:
    domain = "tau_retail" if "tau" in path.stem.lower() else "magentic"
    traces, notes = [], []
    rejects = Rejects(con)
    for n, entry in enumerate(entries, start=1):
        origin = f"{path}#{n}"
        try:
            if not isinstance(entry, dict) or entry.get("trajectory_id") in (None, ""):
                raise RecordError("ground-truth entry without a trajectory_id")
            check_record(entry)
            trajectory_id = as_key(entry["trajectory_id"], "trajectory_id")
            root = as_object(entry.get("root_cause"), "root_cause")
            failures = as_list(entry.get("failures"), "failures")
        except RECORD_FAILURES as e:
            rejects.add(origin, reason_of(e), entry)
            continue
        trace_id = f"agentrx:{domain}:{trajectory_id}"
        traces.append(
            {
                "trace_id": trace_id,
                "outcome": "failure",
                "system": "Magentic-One" if domain == "magentic" else "tau-bench",
                "attrs": {
                    "dataset": "agentrx",
                    "trajectory_id": entry["trajectory_id"],
                    "failure_summary": entry.get("failure_summary"),
                    "root_cause": root,
                },
            }
        )
        for failure in failures:
            step = failure.get("step_number") if isinstance(failure, dict) else None
            if not isinstance(step, int) or isinstance(step, bool):
                rejects.add(origin, "failure without an integer step_number", failure)
                continue
            category = failure.get("failure_category")
            evidence = {
                "agent": failure.get("failed_agent"),
                "step": step,
                "category": category,
                "root_cause": failure.get("failure_id") == root.get("failure_id"),
                "reason": failure.get("step_reason"),
                "category_reason": failure.get("category_reason"),
                "failure_id": failure.get("failure_id"),
                "event_ids": [str(step)],
            }
            row = {
                "trace_id": trace_id,
                "annotator": "human",
                "confidence": 1.0,
                "evidence": evidence,
                "origin": origin,
            }
            notes.append(row | {"mode": "attribution"})
            if category:
                notes.append(row | {"mode": f"agentrx:{_text(category)}"})
    rejects.flush()
    stage_rows(con, "traces", traces)
    stage_rows(con, "annotations", notes)


_GROUND_TRUTH = re.compile(rb'"trajectory_id"\s*:.*"failure_category"\s*:', re.S)
_FIRST_ROLE = re.compile(rb'"role"\s*:\s*"([^"]*)"')
_ORCHESTRATOR = re.compile(rb'"role"\s*:\s*"Orchestrator \(')


def sniff(head: bytes) -> bool:
    """AgentRx: a list of ground-truth entries, or a list of Magentic-One ``{role, content}`` steps."""
    if head[:1] != b"[":
        return False
    if _GROUND_TRUTH.search(head):
        return True
    first = _FIRST_ROLE.search(head)
    return first is not None and first[1] == b"human" and bool(_ORCHESTRATOR.search(head))


FORMAT = Format(name="agentrx", sniff=sniff, read=read)
