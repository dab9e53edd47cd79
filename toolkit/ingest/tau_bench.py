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

from toolkit.ingest.base import Format, reject, stage_rows
from toolkit.ingest.chatlog import raw, text_of
from toolkit.ingest.files import load_json


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
    for n, run in enumerate(runs, start=1):
        if not isinstance(run, dict) or not isinstance(run.get("traj"), list):
            reject(con, f"{path}#{n}", "run without a traj list", raw(run))
            continue
        trial = run.get("trial", n)
        trace_id = f"taubench:{path.stem}:{run.get('task_id')}:{trial}"
        info_value, task_value = run.get("info"), None
        info: dict = info_value if isinstance(info_value, dict) else {}
        task_value = info.get("task")
        task: dict = task_value if isinstance(task_value, dict) else {}
        reward = run.get("reward")
        traces.append(
            {
                "trace_id": trace_id,
                "system": "tau-bench",
                "task": task.get("instruction"),
                "outcome": None if reward is None else ("success" if reward == 1 else "failure"),
                "attrs": {k: v for k, v in run.items() if k != "traj"},
            }
        )
        events += _run_events(con, trace_id, run["traj"], f"{path}#{n}/")
    stage_rows(con, "traces", traces)
    stage_rows(con, "events", events)


def _run_events(
    con: duckdb.DuckDBPyConnection, trace_id: str, traj: list[Any], origin: str
) -> list[dict]:
    rows: list[dict[str, Any]] = []
    calls: dict[str, str] = {}  # call id -> event_id of its latest call

    def add(seq: int, event_id: str, **row: Any) -> None:
        row.setdefault("parent_id", rows[-1]["event_id"] if rows else None)
        rows.append(
            {
                "trace_id": trace_id,
                "seq": seq,
                "event_id": event_id,
                "origin": f"{origin}{seq}",
                **row,
            }
        )

    for i, msg in enumerate(traj):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            reject(con, f"{origin}{i}", "message without a role", raw(msg))
            continue
        role = msg["role"]
        if role == "tool":
            call_id = msg.get("tool_call_id")
            parent = calls.get(call_id) if call_id else None
            add(
                i,
                str(i),
                type="tool_result",
                source=msg.get("name"),
                target="assistant",
                content=text_of(msg.get("content")),
                correlation_id=call_id,
                **({"parent_id": parent} if parent else {}),
            )
            continue
        tool_calls = msg.get("tool_calls") or []
        content = text_of(msg.get("content"))
        if content or not tool_calls:
            add(i, str(i), type="message", source=role, content=content)
        for k, call in enumerate(tool_calls):
            fn = (call.get("function") or {}) if isinstance(call, dict) else {}
            args = fn.get("arguments")
            event_id = f"{i}.{k}"
            add(
                i,
                event_id,
                type="tool_call",
                source=role,
                target=fn.get("name"),
                content=args if isinstance(args, str) else json.dumps(args),
                correlation_id=call.get("id") if isinstance(call, dict) else None,
            )
            if isinstance(call, dict) and call.get("id"):
                calls[call["id"]] = event_id
    return rows


_TRAJ = re.compile(rb'"traj"\s*:\s*\[')
_REWARD = re.compile(rb'"reward"\s*:')


def sniff(head: bytes) -> bool:
    """τ-bench: JSON runs carrying ``reward`` and a ``traj`` message list."""
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] in (b"{", b"[") and bool(_TRAJ.search(head)) and bool(_REWARD.search(head))


FORMAT = Format(name="tau_bench", sniff=sniff, read=read)
