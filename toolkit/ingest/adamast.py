"""AdaMAST unified traces (ATLAS, by the MAST authors): one record per run.

AdaMAST (``github.com/multi-agent-systems-failure-taxonomy/ATLAS``, ``vendor/adamast/traces``)
turns the traces it accepts (τ-bench results, Codex and Claude Code sessions, event logs,
conversations, KIRA steps, MAST records) into one shape, and reads it back one record per line
(JSONL) or as a JSON list::

    {"problem_id": "...", "task": "...", "raw_trajectory": "<the run as text>",
     "metadata": {"mas_name": "...", "llm_name": "...", "benchmark_name": "...",
                  "trace_id": ..., "_format": "<the converter>", ...}}

Kept, and where:

===========================  ====================================================================
record                       ``traces`` row, ``trace_id`` = ``adamast:<mas_name>:<problem_id>``;
                             a repeat within one file gets ``#<n>``
``metadata.mas_name``        ``traces.system`` (MAST's names as in the ``mast`` reader:
                             ``Magentic`` -> ``Magentic-One``)
``task``                     ``traces.task`` (else the task the MAST log shows)
``metadata``                 ``traces.attrs``: ``llm``, ``benchmark``, ``source_trace_id``,
                             ``source_format`` (``_format``) and the other keys as written
``=== RESULT: <v> ===``      ``traces.outcome``: ``success`` for ``SUCCESS``, ``failure`` for
                             ``FAILURE`` or ``ERROR ...``; the verdict (and ``reward=``) in
                             ``traces.attrs``
``raw_trajectory``           events, one per block (below); ``seq`` = ``event_id`` = block index
                             (0-based), ``parent_id`` = the block before (conversation order)
``metadata.mast_annotation`` ``annotations`` as in the MAD full dataset (annotator ``mast-llm``)
===========================  ====================================================================

**Blocks.** A trajectory of a MAST system is split by its log format first
(:mod:`toolkit.ingest.mast_logs`). Otherwise it is split at the headers AdaMAST's converters
write, each at the start of a line:

* ``=== NAME ===`` opens agent ``NAME``'s section (``=== NAME OUTPUT ===`` its output): the
  text right under it is a ``message`` from ``NAME``, and the ``[ASSISTANT]``-like blocks that
  follow speak for it; ``=== FINAL_ANSWER ===`` is a ``final_answer``, ``=== RESULT: v ===`` a
  ``result`` (source ``harness``);
* ``[SYSTEM]``, ``[USER]``, ``[ASSISTANT]`` (``[System]``, ``[User]``, ``[Response]``,
  ``[ASSISTANT Step n]``, other chat roles) are a ``message`` from that role (the assistant is
  the section's agent, else ``assistant``);
* ``[ASSISTANT TOOL CALL] f(args)``, ``[TOOL CALL] f(args)``, ``[TOOL USE: f]`` and
  ``[Step n - Action]`` are a ``tool_call`` (target ``f``); ``[TOOL RESPONSE: f]``,
  ``[TOOL RESULT]``, ``[TOOL OUTPUT]`` and ``[Step n - Observation]`` a ``tool_result`` (source
  ``f``, else ``tool``); ``[Step n - Reasoning]`` a ``message`` (``attrs.step`` = n).

Text before the first header is a ``log`` block; a bracketed line that is none of these
(``[TASK_COMPLETE]`` in KIRA steps) is text of the block it is in; a trajectory without any
header is one ``log`` block (``attrs.split`` = ``none``).

Rejected: a line (``path:N``) or list item (``path#N``) that is not JSON or not an object with a
``raw_trajectory`` string; a ``metadata`` that is not an object; an annotation as the ``mast``
reader rejects it. The rest loads.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb

from toolkit.ingest import mast
from toolkit.ingest.base import Format, Rejects, stage_rows
from toolkit.ingest.chatlog import Parsed, chain
from toolkit.ingest.files import (
    RECORD_FAILURES,
    check_record,
    file_head,
    json_lines,
    looks_like_jsonl,
    parse_json,
    read_bytes,
    reason_of,
)
from toolkit.ingest.mast_logs import split_trajectory

_SECTION = re.compile(r"^=== (?P<name>.+?) ===\s*$")
_BRACKET = re.compile(r"^\[(?P<head>[^\]\n]{1,80})\](?P<rest>.*)$")
_STEP = re.compile(r"^Step (?P<n>\d+)\s*-?\s*(?P<part>Reasoning|Action|Observation)$", re.I)
_CALL = re.compile(r"^\s*(?P<name>[\w.:-]+)\s*\(")
_ROLES = {"SYSTEM", "USER", "HUMAN", "DEVELOPER", "ASSISTANT", "RESPONSE", "AI", "MODEL"}
_ASSISTANT = {"ASSISTANT", "RESPONSE", "AI", "MODEL"}
_RESERVED = {"mas_name", "llm_name", "benchmark_name", "trace_id", "_format", "mast_annotation"}


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage every AdaMAST record of ``path`` (JSONL or a JSON list)."""
    rejects = Rejects(con)
    traces: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    seen: Counter[str] = Counter()
    for origin, record in _records(path, rejects):
        try:
            check_record(record)
            trace, rows = _run(record, origin)
        except RECORD_FAILURES as e:
            rejects.add(origin, reason_of(e), record)
            continue
        seen[trace["trace_id"]] += 1
        if seen[trace["trace_id"]] > 1:  # the same run twice in one file: both are kept
            trace["trace_id"] += f"#{seen[trace['trace_id']]}"
            rows = [r | {"trace_id": trace["trace_id"]} for r in rows]
        traces.append(trace)
        events += rows
        labels = record["metadata"].get("mast_annotation")
        if labels is not None:
            try:
                notes += mast.llm_labels(con, labels, trace["trace_id"], origin)
            except RECORD_FAILURES as e:
                rejects.add(origin, f"mast_annotation: {reason_of(e)}", labels)
    rejects.flush()
    stage_rows(con, "traces", traces)
    stage_rows(con, "events", events)
    stage_rows(con, "annotations", notes)


def _records(path: Path, rejects: Rejects) -> list[tuple[str, Any]]:
    """``(origin, record)`` for each record: list items ``path#N``, lines ``path:N``."""
    text = read_bytes(path).decode("utf-8", errors="replace")
    if not text.strip(" \t\r\n"):  # an empty file holds no records
        return []
    if not looks_like_jsonl(file_head(path)):
        try:
            doc = parse_json(text)
        except ValueError as e:
            rejects.add(f"{path}#0", f"file is not valid JSON: {e}", text[:10000])
            return []
        items = doc if isinstance(doc, list) else [doc]
        return [(f"{path}#{n}", item) for n, item in enumerate(items, start=1)]
    return json_lines(path, text, rejects)


def _run(record: Any, origin: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``traces`` row and the event rows of one record (``ValueError``: not a record)."""
    if not isinstance(record, dict) or not isinstance(record.get("raw_trajectory"), str):
        raise ValueError("not an AdaMAST record (an object with a raw_trajectory string)")
    meta = record.setdefault("metadata", {})
    if meta is None:
        meta = record["metadata"] = {}
    if not isinstance(meta, dict):
        raise ValueError(f"metadata is not an object but {type(meta).__name__}")
    mas_name = _given(meta.get("mas_name"))
    system = mast.SYSTEMS.get(mas_name or "", mas_name)
    problem = record.get("problem_id")
    trace_id = f"adamast:{mas_name or 'unknown'}:{problem if problem is not None else ''}"
    text = record["raw_trajectory"]
    messages, task, attrs = split_trajectory(system, text)
    if messages[0].get("attrs", {}).get("split") == "none":  # not a MAST log: AdaMAST's headers
        messages, task, attrs = split_blocks(text)
    task = record.get("task") if isinstance(record.get("task"), str) and record["task"] else task
    outcome = attrs.pop("outcome", None)
    attrs |= {
        "llm": _given(meta.get("llm_name")),
        "benchmark": _given(meta.get("benchmark_name")),
        "source_trace_id": meta.get("trace_id"),
        "source_format": meta.get("_format"),
        **{k: v for k, v in meta.items() if k not in _RESERVED},
    }
    trace = {
        "trace_id": trace_id,
        "system": system,
        "task": task,
        "outcome": outcome,
        "attrs": {k: v for k, v in attrs.items() if v is not None},
    }
    return trace, chain(trace_id, messages, f"{origin}/")


def _given(value: Any) -> Any:
    """``value``, or ``None`` for AdaMAST's placeholders of a missing name (``""``,
    ``"unknown"``)."""
    if isinstance(value, str) and value.strip().lower() in ("", "unknown"):
        return None
    return value


def split_blocks(text: str) -> Parsed:
    """The blocks of a trajectory as AdaMAST's converters write it (see the module's text):
    messages, no task, and the run's verdict (``outcome``, ``verdict``, ``reward``)."""
    messages: list[dict[str, Any]] = []
    run: dict[str, Any] = {}
    agent: str | None = None
    current: dict[str, Any] | None = None
    body: list[str] = []

    def close() -> None:
        if current is None:
            if "\n".join(body).strip():
                messages.append({"type": "log", "content": "\n".join(body).strip()})
        elif current.pop("keep", True) or "\n".join(body).strip():
            text = "\n".join([current.pop("first", ""), *body]).strip()
            messages.append(current | {"content": text or None})
        body.clear()

    for line in text.split("\n"):
        section, bracket = _SECTION.match(line), _BRACKET.match(line)
        block = None
        if section:
            block, agent = _section(section["name"].strip(), agent, run)
        elif bracket:
            block = _bracket(bracket["head"].strip(), bracket["rest"], agent)
        if block is None:
            body.append(line)
            continue
        close()
        current = block
    close()
    if not any(m["type"] != "log" for m in messages):
        return [{"type": "log", "content": text, "attrs": {"split": "none"}}], None, {}
    return messages, None, run


def _section(name: str, agent: str | None, run: dict[str, Any]) -> tuple[dict, str | None]:
    """The block a ``=== name ===`` line opens, and the agent speaking from there on."""
    upper = name.upper()
    if upper.startswith("RESULT:"):
        verdict = name[len("RESULT:") :].strip()
        word = verdict.split(" ", 1)[0].upper()
        run["verdict"] = verdict
        run["outcome"] = (
            "success" if word == "SUCCESS" else "failure" if word in ("FAILURE", "ERROR") else None
        )
        reward = re.search(r"reward=(-?[\d.]+)", verdict)
        if reward:
            run["reward"] = float(reward[1])
        return {"type": "result", "source": "harness", "first": verdict, "keep": True}, agent
    if upper == "FINAL_ANSWER":
        return {"type": "final_answer", "source": agent or "assistant", "keep": False}, agent
    if upper.endswith(" OUTPUT"):
        name = name[: -len(" OUTPUT")].strip()
        return {
            "type": "message",
            "source": name,
            "attrs": {"section": "output"},
            "keep": False,
        }, name
    return {"type": "message", "source": name, "keep": False}, name


def _bracket(head: str, rest: str, agent: str | None) -> dict[str, Any] | None:
    """The block a ``[head] rest`` line opens, or ``None``: not a header (text of its block)."""
    upper = head.upper()
    speaker = agent or "assistant"
    step = _STEP.match(head)
    if step:
        kind = step["part"].lower()
        attrs = {"step": int(step["n"])}
        if kind == "reasoning":
            return {"type": "message", "source": speaker, "attrs": attrs, "first": rest}
        if kind == "action":
            return {"type": "tool_call", "source": speaker, "attrs": attrs, "first": rest}
        return {
            "type": "tool_result",
            "source": "tool",
            "target": speaker,
            "attrs": attrs,
            "first": rest,
        }
    if upper.startswith("ASSISTANT STEP "):
        return {"type": "message", "source": speaker, "first": rest}
    if upper in ("ASSISTANT TOOL CALL", "TOOL CALL") or upper.startswith("TOOL USE"):
        tool = head.split(":", 1)[1].strip() if ":" in head else None
        call = _CALL.match(rest)
        return {
            "type": "tool_call",
            "source": speaker,
            "target": tool or (call and call["name"]),
            "first": rest,
        }
    if upper.startswith(("TOOL RESPONSE", "TOOL RESULT", "TOOL OUTPUT")) or upper == "TOOL":
        tool = head.split(":", 1)[1].strip() if ":" in head else None
        return {"type": "tool_result", "source": tool or "tool", "target": speaker, "first": rest}
    if upper in _ASSISTANT:
        return {"type": "message", "source": speaker, "first": rest}
    if upper in _ROLES:  # (in an agent's section: a prompt to that agent)
        return {"type": "message", "source": head.lower(), "target": agent, "first": rest}
    return None


_KEYS = re.compile(rb'"(problem_id|raw_trajectory)"\s*:')


def sniff(head: bytes) -> bool:
    """AdaMAST: JSON records (a list, or one per line) with ``problem_id`` and
    ``raw_trajectory``."""
    return head[:1] in (b"{", b"[") and len({m[1] for m in _KEYS.finditer(head)}) == 2


FORMAT = Format(name="adamast", sniff=sniff, read=read)
