"""ATIF agent trajectories (Agent Trajectory Interchange Format, as Harbor and Phoenix use it).

A file holds one trajectory (``{schema_version: "ATIF-v1.x", session_id, agent, steps, ...}``,
possibly with embedded ``subagent_trajectories`` (v1.7)), or an object whose values are
trajectories (``{"parent": ..., "child": ...}``). One trajectory is one trace: ``trace_id`` is
its ``session_id`` (``<session_id>/<trajectory_id>`` when it has a ``trajectory_id``; an embedded
subagent without a session inherits its parent's). A continuation (``<id>-cont-N``) is its own
trace; ``traces.attrs.continues`` names the trajectory it continues.

Mapping (all ids derived from positions and the source's own ids, so a re-ingest finds them):

====================  ====================================================================
step                  an event ``step:<step_id>``: ``type`` ``<source>_step`` (``user_step``,
                      ``agent_step``, ``system_step``), ``source`` the agent's name for agent
                      steps, else ``user``/``system``; ``content`` the ``message`` (multimodal
                      parts: their text, ``[image: path]`` for images); ``ts`` its
                      ``timestamp``; ``parent_id`` the previous step's last observation
                      result, else the previous step (what this step reacts to)
``tool_calls[j]``     an event ``step:<id>:tool:<tool_call_id>`` (``tool_call``), ``source`` the
                      agent, ``target`` the function name, ``content`` the arguments as JSON,
                      ``parent_id`` the step
``observation``       an event per result ``step:<id>:result:<k>`` (``tool_result``), ``source``
``.results[k]``       the function it answers (else ``environment``), ``parent_id`` its
                      ``source_call_id``'s tool call, else the step; ``content`` the content
subagent trajectory   its first step's ``parent_id`` is the delegating tool call (else the
                      result naming it), ``attrs.parent_trace_id`` the parent's trace, when
                      both are in the same file; the ref itself stays in the result's
                      ``attrs.subagent_trajectory_ref`` (a cross-file link by trace id)
``model_name``,       step ``attrs`` (``model_name``, ``reasoning_content``, ``metrics``,
``metrics``...        ``is_copied_context``, ``llm_call_count``, ``extra``, ``step_id``)
agent, final_metrics  ``traces``: ``system`` the agent name, ``task`` the first user
                      message, ``attrs`` the ``agent`` object, ``final_metrics``,
                      ``schema_version``, ``continued_trajectory_ref``, ``notes``
====================  ====================================================================

Dropped: nothing the format defines; ``reasoning_content`` and ``metrics`` stay in attrs
(Phoenix drops logprobs and token ids, we keep them in ``metrics``).

A step is rejected (origin ``path#N``, the N-th step of the file, counting across
trajectories) when it is not an object or has no ``source``; a trajectory without ``steps``
(origin ``path#0``) or a file that is not JSON is rejected whole.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from toolkit.ingest.base import Format, RecordError, Rejects, reject, stage_rows
from toolkit.ingest.files import (
    RECORD_FAILURES,
    as_key,
    as_list,
    as_object,
    check_record,
    json_kind,
    load_json,
    reason_of,
)

_SNIFF = re.compile(rb'"schema_version"\s*:\s*"ATIF')
_STEP_KEYS = {"step_id", "timestamp", "source", "message", "tool_calls", "observation"}
_TRACE_KEYS = ("agent", "final_metrics", "schema_version", "continued_trajectory_ref", "notes")


def sniff(head: bytes) -> bool:
    """True when ``head`` holds an ATIF ``schema_version``."""
    return bool(_SNIFF.search(head))


def _text(message: Any) -> str | None:
    """A message or result content as text (Phoenix's rule for multimodal parts)."""
    if message is None or isinstance(message, str):
        return message
    if not isinstance(message, list):
        return json.dumps(message, ensure_ascii=False)
    parts = []
    for part in message:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("text"):
            parts.append(str(part["text"]))
        elif isinstance(part, dict) and part.get("type") == "image":
            source = part.get("source")
            parts.append(f"[image: {source.get('path') if isinstance(source, dict) else source}]")
    return "\n".join(parts)


def _ts(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))  # ValueError: kept in attrs
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def _trace_id(session: Any, trajectory_id: Any) -> str | None:
    session = as_key(session, "session_id")
    trajectory_id = as_key(trajectory_id, "trajectory_id")
    if trajectory_id:
        return f"{session}/{trajectory_id}" if session else trajectory_id
    return session


def _trajectories(doc: Any) -> list[tuple[dict, str | None]]:
    """Each trajectory in the document with its inherited session id (embedded ones included)."""
    if isinstance(doc, dict) and "steps" not in doc and "schema_version" not in doc:
        found = list(doc.values())
    else:
        found = [doc] if isinstance(doc, dict) else as_list(doc, "the document")
    out: list[tuple[Any, Any]] = []
    for traj in found:
        session = traj.get("session_id") if isinstance(traj, dict) else None
        out.append((traj, session))
        if isinstance(traj, dict):
            subs = traj.get("subagent_trajectories")
            out += [(s, session) for s in (subs if isinstance(subs, list) else [])]
    return out


def _clip(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)[:10000]
    except (ValueError, RecursionError):
        return repr(value)[:10000]


class _Reader:
    """Turns the trajectories of one file into rows; keeps the step counter for origins."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.con, self.path, self.n, self.ord = con, path, 0, 0
        self.events: list[dict] = []
        self.traces: list[dict] = []
        self.delegations: dict[str, tuple[str, str]] = {}  # child trace -> (parent trace, event)
        self.rejects = Rejects(con)

    def event(self, out: list[dict], **row: Any) -> None:
        out.append(row)

    def trajectory(self, traj: Any, session: Any) -> None:
        try:
            if not isinstance(traj, dict):
                raise RecordError(f"trajectory is not an object but {json_kind(traj)}")
            check_record(
                {k: v for k, v in traj.items() if k not in ("steps", "subagent_trajectories")}
            )
            trace_id = _trace_id(traj.get("session_id") or session, traj.get("trajectory_id"))
            steps = traj.get("steps")
            if not trace_id or not isinstance(steps, list):
                raise RecordError("trajectory lacks session_id/trajectory_id or steps")
        except RECORD_FAILURES as e:
            self.rejects.add(f"{self.path}#0", reason_of(e), _clip(traj))
            return
        agent = traj.get("agent")
        agent = agent if isinstance(agent, dict) else {}
        attrs = {k: traj[k] for k in _TRACE_KEYS if traj.get(k) is not None}
        base = re.fullmatch(r"(.+)-cont-\d+", trace_id)
        if base:
            attrs["continues"] = base.group(1)
        try:  # the first user message; a step too odd to read is rejected below instead
            task = next(
                (
                    _text(s.get("message"))
                    for s in steps
                    if isinstance(s, dict) and s.get("source") == "user"
                ),
                None,
            )
        except RECORD_FAILURES:
            task = None
        self.traces.append(
            {
                "trace_id": trace_id,
                "system": agent.get("name"),
                "task": task,
                "attrs": attrs or None,
            }
        )
        previous: str | None = None
        for i, step in enumerate(steps, start=1):
            self.n += 1
            origin = f"{self.path}#{self.n}"
            try:
                if not isinstance(step, dict):
                    raise RecordError(f"step is not an object but {json_kind(step)}")
                if not step.get("source"):
                    raise RecordError("step has no source")
                if not isinstance(step["source"], str):
                    raise RecordError(f"source must be a string, not {json_kind(step['source'])}")
                check_record(step)
                parent_trace, before = None, previous
                if previous is None and trace_id in self.delegations:
                    parent_trace, before = self.delegations[trace_id]
                rows: list[dict] = []
                last = self.step(rows, step, i, trace_id, agent, origin, before, parent_trace)
            except RECORD_FAILURES as e:
                self.rejects.add(origin, reason_of(e), step)
                continue
            for row in rows:
                self.ord += 1
                self.events.append(row | {"ord": self.ord, "seq": self.ord})
            previous = last

    def step(
        self,
        out: list[dict],
        step: dict,
        i: int,
        trace_id: str,
        agent: dict,
        origin: str,
        parent: str | None,
        parent_trace: str | None,
    ) -> str:
        """Stage one step, its tool calls and results; return the id the next step reacts to."""
        sid = f"step:{step.get('step_id', i)}"
        who = step["source"]
        actor = (agent.get("name") or "agent") if who == "agent" else who
        attrs = {k: v for k, v in step.items() if k not in _STEP_KEYS or k == "step_id"}
        if parent_trace:
            attrs["parent_trace_id"] = parent_trace
        try:
            ts = _ts(step.get("timestamp"))
        except ValueError:
            ts, attrs["timestamp"] = None, step.get("timestamp")
        row = {"trace_id": trace_id, "ts": ts, "origin": origin}
        self.event(
            out,
            **row,
            event_id=sid,
            parent_id=parent,
            type=f"{who}_step",
            source=actor,
            content=_text(step.get("message")),
            attrs=attrs,
        )
        calls = {}
        for j, call in enumerate(as_list(step.get("tool_calls"), "tool_calls"), start=1):
            call = call if isinstance(call, dict) else {"arguments": call}
            call_id = as_key(call.get("tool_call_id"), "tool_call_id") or f"tc_{j}"
            calls[call_id] = (f"{sid}:tool:{call_id}", call.get("function_name"))
            extra = {k: v for k, v in call.items() if k not in ("function_name", "arguments")}
            args = call.get("arguments")
            self.event(
                out,
                **row,
                event_id=calls[call_id][0],
                parent_id=sid,
                type="tool_call",
                source=actor,
                target=call.get("function_name"),
                content=None if args is None else json.dumps(args, ensure_ascii=False),
                attrs=extra or None,
            )
        last = sid
        observation = as_object(step.get("observation"), "observation")
        results = as_list(observation.get("results"), "observation.results")
        for k, result in enumerate(results, start=1):
            result = result if isinstance(result, dict) else {"content": result}
            source_call = as_key(result.get("source_call_id"), "source_call_id")
            call_event, function = calls.get(source_call or "", (sid, None))
            last = f"{sid}:result:{k}"
            extra = {k2: v for k2, v in result.items() if k2 != "content"}
            self.event(
                out,
                **row,
                event_id=last,
                parent_id=call_event,
                type="tool_result",
                source=function or "environment",
                target=actor,
                content=_text(result.get("content")),
                attrs=extra or None,
            )
            for ref in as_list(result.get("subagent_trajectory_ref"), "subagent_trajectory_ref"):
                if isinstance(ref, dict):
                    child = _trace_id(ref.get("session_id"), ref.get("trajectory_id"))
                    if child:
                        self.delegations[child] = (
                            trace_id,
                            call_event if call_event != sid else last,
                        )
        return last


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage the ATIF trajectories in ``path`` for ``toolkit.ingest``."""
    doc = load_json(con, path)
    if doc is None:
        return
    reader = _Reader(con, path)
    try:
        trajectories = _trajectories(doc)
    except RecordError as e:
        reject(con, f"{path}#0", f"not an ATIF document: {e}", _clip(doc))
        return
    for traj, session in trajectories:
        reader.trajectory(traj, session)
    reader.rejects.flush()
    stage_rows(con, "events", reader.events)
    stage_rows(con, "traces", reader.traces)


FORMAT = Format("atif", sniff, read)
