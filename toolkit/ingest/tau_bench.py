"""τ-bench (sierra-research/tau-bench) run results: a JSON list of runs, or one run object.

A run is ``{task_id, trial, reward, info, traj}``; ``traj`` is an OpenAI-style message list
(``system``, ``user``, ``assistant`` with optional ``tool_calls``, ``tool`` with
``tool_call_id``). AgentRx's ``trajectories/tau-retail/*.json`` are single runs of this shape.

Kept, and where:

===============================  ================================================================
run                              ``trace_id`` = ``taubench:<file stem>:<task_id>:<trial>`` (trial
                                 absent: the run's 1-based position in the file); ``system`` =
                                 ``tau-bench``
``reward``                       ``outcome``: ``success`` when ``reward == 1``, else ``failure``;
                                 the value in ``traces.attrs.reward``
``info.task.instruction``        ``traces.task``
``info`` (all of it), ``task_id``, ``trial``, other run keys (AgentRx's ``records``):
                                 ``traces.attrs``
``traj[i]``                      one event per message, ``seq`` = ``i`` (0-based) and ``event_id``
                                 = ``str(i)``; an assistant message with ``tool_calls`` gives one
                                 event per call (``seq`` = ``i``, ``event_id`` = ``<i>.<k>``) plus
                                 a ``message`` event for its text when it has any
``role``                         ``source``; ``type`` ``message`` (system/user/assistant text)
tool call                        ``type`` ``tool_call``, source ``assistant``, ``target`` = tool
                                 name, ``content`` = the arguments (JSON text),
                                 ``correlation_id`` = the call id
``tool`` message                 ``type`` ``tool_result``, source = tool name, target
                                 ``assistant``, ``parent_id`` = the latest earlier call with the
                                 same ``tool_call_id`` (that id in ``correlation_id``)
===============================  ================================================================

Why the call id is not the ``event_id``: GPT-4o reuses call ids within a run (the airline file
has 1,164 calls but 134 distinct ids), and a repeated ``event_id`` means a redelivery in this
schema. Other messages' parent is the event before them (conversation order).

Dropped: the call's ``type`` (always ``function``). Rejects: a run without a ``traj`` list, or a
message without a ``role`` (``path#<run>`` / ``path#<run>/<i>``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb

from toolkit.ingest.base import Format, RecordError, Rejects, reject, stage_rows
from toolkit.ingest.chatlog import raw, text_of
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
    """Stage every run of a τ-bench results file."""
    doc = load_json(con, path)
    if doc is None:
        return
    runs = [doc] if isinstance(doc, dict) else doc
    if not isinstance(runs, list):
        reject(con, f"{path}#0", "not a τ-bench run or list of runs", raw(doc)[:10000])
        return
    traces, events = [], []
    rejects = Rejects(con)
    for n, run in enumerate(runs, start=1):
        try:
            if not isinstance(run, dict) or not isinstance(run.get("traj"), list):
                raise RecordError("run without a traj list")
            check_record({k: v for k, v in run.items() if k != "traj"})
            trial = as_key(run.get("trial"), "trial") or n
            trace_id = f"taubench:{path.stem}:{as_key(run.get('task_id'), 'task_id')}:{trial}"
            info = as_object(run.get("info"), "info")
            task_value = info.get("task")
            task: dict = task_value if isinstance(task_value, dict) else {}
            reward = run.get("reward")
            trace = {
                "trace_id": trace_id,
                "system": "tau-bench",
                "task": task.get("instruction"),
                "outcome": None if reward is None else ("success" if reward == 1 else "failure"),
                "attrs": {k: v for k, v in run.items() if k != "traj"},
            }
        except RECORD_FAILURES as e:
            rejects.add(f"{path}#{n}", reason_of(e), run)
            continue
        traces.append(trace)
        events += _run_events(rejects, trace_id, run["traj"], f"{path}#{n}/")
    rejects.flush()
    stage_rows(con, "traces", traces)
    stage_rows(con, "events", events)


def _run_events(rejects: Rejects, trace_id: str, traj: list[Any], origin: str) -> list[dict]:
    rows: list[dict[str, Any]] = []
    calls: dict[str, str] = {}  # call id -> event_id of its latest call

    def row(seq: int, event_id: str, parent: str | None, **cols: Any) -> dict[str, Any]:
        return {
            "trace_id": trace_id,
            "seq": seq,
            "event_id": event_id,
            "origin": f"{origin}{seq}",
            "parent_id": parent,
            **cols,
        }

    for i, msg in enumerate(traj):
        try:
            new = _message_rows(i, msg, calls, rows[-1]["event_id"] if rows else None, row)
        except RECORD_FAILURES as e:
            rejects.add(f"{origin}{i}", reason_of(e), msg)
            continue
        for r in new:
            if r.get("tool_call_id"):
                calls[r.pop("tool_call_id")] = r["event_id"]
            r.pop("tool_call_id", None)
        rows += new
    return rows


def _message_rows(
    i: int, msg: Any, calls: dict[str, str], previous: str | None, row: Any
) -> list[dict[str, Any]]:
    """The events of message ``i``; raises with the reject reason when it cannot be read."""
    if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
        raise RecordError("message without a role")
    check_record(msg)
    role = msg["role"]
    if role == "tool":
        call_id = as_key(msg.get("tool_call_id"), "tool_call_id")
        parent = (calls.get(call_id) if call_id else None) or previous
        return [
            row(
                i,
                str(i),
                parent,
                type="tool_result",
                source=msg.get("name"),
                target="assistant",
                content=text_of(msg.get("content")),
                correlation_id=call_id,
            )
        ]
    tool_calls = as_list(msg.get("tool_calls"), "tool_calls")
    content = text_of(msg.get("content"))
    out: list[dict[str, Any]] = []
    if content or not tool_calls:
        out.append(row(i, str(i), previous, type="message", source=role, content=content))
    for k, call in enumerate(tool_calls):
        call = as_object(call, "tool call")
        fn = as_object(call.get("function"), "function")
        args = fn.get("arguments")
        call_id = as_key(call.get("id"), "tool call id")
        event_id = f"{i}.{k}"
        out.append(
            row(
                i,
                event_id,
                out[-1]["event_id"] if out else previous,
                type="tool_call",
                source=role,
                target=fn.get("name"),
                content=args if isinstance(args, str) else json.dumps(args),
                correlation_id=call_id,
                tool_call_id=call_id,
            )
        )
    return out


_TRAJ = re.compile(rb'"traj"\s*:\s*\[')
_REWARD = re.compile(rb'"reward"\s*:')


def sniff(head: bytes) -> bool:
    """τ-bench: JSON runs carrying ``reward`` and a ``traj`` message list."""
    return head[:1] in (b"{", b"[") and bool(_TRAJ.search(head)) and bool(_REWARD.search(head))


FORMAT = Format(name="tau_bench", sniff=sniff, read=read)
