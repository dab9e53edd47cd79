"""MAST trajectory parsers for AG2, HyperAgent, Magentic-One and OpenManus logs.

See :mod:`toolkit.ingest.mast_logs` for how each log is split; this module holds half the parsers
so that each module stays small.
"""

from __future__ import annotations

import json
import re
from typing import Any

from toolkit.ingest.chatlog import Parsed, blocks, log_message, parse_ts

LOGURU = re.compile(r"^(.*?)(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \| (\w+)\s*\| (\S+) - (.*)$")


def parse_ag2(text: str) -> Parsed:
    record = json.loads(text)
    turns = record.get("trajectory") or []
    names = list(dict.fromkeys(t.get("name") for t in turns if isinstance(t, dict)))
    messages = []
    for t in turns:
        content = t.get("content")
        content = "\n".join(content) if isinstance(content, list) else content
        other = [n for n in names if n != t.get("name")] if len(names) == 2 else []
        messages.append(
            {
                "type": "message",
                "source": t.get("name"),
                "target": other[0] if other else None,
                "content": content,
                "attrs": {"role": t.get("role")},
            }
        )
    return messages, _statement(record), _run_attrs(record)


def _statement(record: dict) -> str | None:
    statement = record.get("problem_statement")
    if isinstance(statement, list):
        statement = "\n".join(statement)
    return statement.strip() if isinstance(statement, str) and statement.strip() else None


def _run_attrs(record: dict) -> dict[str, Any]:
    return {k: record[k] for k in ("instance_id", "other_data", "note") if k in record}


_HYPER = re.compile(r"^HyperAgent_\S+ - (\w+) - (.*)$")
_HY_MSG = re.compile(r"^(?:([\w-]+)'s Response|(\w+)->(\w+)): ?(.*)$")
_HY_INTERN = re.compile(r"^Intern Name: (.+)$", re.M)


def _intern(name: str) -> str:
    """The Planner's ``Intern Name: Codebase Navigator`` is the agent that answers as Navigator."""
    return name.strip().removeprefix("Codebase ")


def parse_hyperagent(text: str) -> Parsed:
    record = json.loads(text)
    lines = [str(line) for line in record.get("trajectory") or []]
    pre, parts = blocks(lines, _HYPER)
    messages = log_message("\n".join(pre))
    for m, body in parts:
        content = "\n".join([m[2], *body]).strip()
        if msg := _HY_MSG.match(m[2]):
            content = "\n".join([msg[4], *body]).strip()
            intern = _HY_INTERN.search(content) if msg[1] == "Planner" else None
            messages.append(
                {
                    "type": "message",
                    "source": msg[1] or msg[2],
                    "target": msg[3] or (_intern(intern[1]) if intern else None),
                    "content": content,
                    "attrs": {"level": m[1]},
                }
            )
        else:
            messages.append({"type": "log", "content": content, "attrs": {"level": m[1]}})
    return messages, _statement(record), _run_attrs(record)


_MAGENTIC = re.compile(r"^-{10} (.+?) -{10}\s*$")


def parse_magentic(text: str) -> Parsed:
    pre, parts = blocks(text.split("\n"), _MAGENTIC)
    messages = log_message("\n".join(pre))
    task = None
    for n, (m, body) in enumerate(parts):
        speaker, content = m[1].strip(), "\n".join(body).strip()
        nxt = parts[n + 1][0][1].strip() if n + 1 < len(parts) else None
        target = nxt if "Orchestrator" in speaker and nxt != speaker else None
        if task is None and speaker == "user":
            task = content
        messages.append(
            {"type": "message", "source": speaker, "target": target, "content": content}
        )
    return messages, task, {}


_OM_THOUGHT = re.compile(r"^\W*(\w+)'s thoughts: ?(.*)$", re.S)
_OM_ARGS = re.compile(r"^\W*Tool arguments: ?(.*)$", re.S)
_OM_RESULT = re.compile(r"^\W*Tool '([^']+)' completed its mission! Result: ?(.*)$", re.S)
_OM_PREPARED = re.compile(r"Tools being prepared: \['([^']+)'")


def parse_openmanus(text: str) -> Parsed:
    pre, parts = blocks(text.split("\n"), LOGURU)
    messages = log_message("\n".join(pre))
    agent, tool = "Manus", None
    for m, body in parts:
        msg = "\n".join([m[5], *body]).strip()
        row = {
            "ts": parse_ts(m[2], "%Y-%m-%d %H:%M:%S.%f"),
            "attrs": {"level": m[3], "logger": m[4], **({"prefix": m[1]} if m[1] else {})},
        }
        if prepared := _OM_PREPARED.search(m[5]):
            tool = prepared[1]
        if th := _OM_THOUGHT.match(msg):
            agent = th[1]
            messages.append(row | {"type": "message", "source": agent, "content": th[2].strip()})
        elif args := _OM_ARGS.match(msg):
            messages.append(
                row
                | {"type": "tool_call", "source": agent, "target": tool, "content": args[1].strip()}
            )
        elif res := _OM_RESULT.match(msg):
            messages.append(
                row
                | {
                    "type": "tool_output",
                    "source": res[1],
                    "target": agent,
                    "content": res[2].strip(),
                }
            )
        else:
            messages.append(row | {"type": "log", "source": m[4].split(":")[0], "content": msg})
    return messages, None, {}
