"""Split the raw MAST (MAD) trajectories into messages, one small parser per framework.

Each parser takes the trajectory text and returns ``(messages, task, attrs)``: messages are
dicts of event columns (``source``, ``target``, ``type``, ``content``, ``ts``, ``attrs``), the task
statement when the log shows it, and facts about the run for ``traces.attrs``. Every line of the
text lands in some message: text before the first recognised header becomes a ``log`` message,
and a trajectory no parser can split stays one ``log`` message with the whole text.

How each log is split (as seen in MAD_human_labelled_dataset.json):

* **ChatDev**: records ``[YYYY-DD-MM HH:MM:SS INFO] ...`` (ChatDev's own day-before-month date
  format; the ``**Timestamp**: 20250117113643`` line confirms it; no zone given, read as UTC).
  ``Role: **A<->B on : Phase, turn N**`` is a message from Role to the other of A/B;
  ``Role: **[Start Chat]**`` a message to the other role of the current role play (from the
  ``System: **[RolePlaying]**`` table); everything else (``System:``, ``**[...]**``, HTTP and
  flask lines) a ``log``. Task: the ``**task_prompt**:`` line.
* **MetaGPT**: a JSON record ``{run_id, prompt, content, ...}`` whose content is loguru lines
  ``<ts> | INFO | <logger> - Alice(SimpleCoder): to do <Action>``: source ``SimpleCoder``; task =
  ``prompt``. Or a communication log: ``[<ts>] FROM: X TO: Y`` / ``ACTION:`` / ``CONTENT:`` and
  ``[<ts>] NEW MESSAGES:`` followed by ``Role: text``.
* **AG2**: JSON ``{instance_id, problem_statement, other_data, trajectory[], note}``; each
  trajectory entry ``{content, role, name}`` is a message from ``name`` to the other participant
  (a two-agent chat). Task: ``problem_statement``.
* **HyperAgent**: JSON like AG2 whose trajectory is log lines ``HyperAgent_<id> - INFO - ...``:
  ``X's Response:`` (source X; a Planner naming ``Intern Name: Y`` targets Y) and ``A->B:``.
* **AppWorld**: blocks ``Response from X Agent`` (source X), ``Message to X Agent`` (target X;
  the first message of a sub-agent loop comes from the caller, later ones are execution output
  fed back: source ``environment``), ``Reply from X Agent to Y``, ``Code Execution Output`` and
  ``Response from send_message API`` (``tool_output``), loop enter/exit lines (``log``). Task: the
  text after the ``*** Task n/m ***`` banner.
* **Magentic-One**: console blocks ``---------- Speaker ----------``; the orchestrator's message
  targets the next speaker (it hands the turn to the agent it addresses). Task: the first
  ``user`` block.
* **OpenManus**: loguru lines; ``X's thoughts:`` (message), ``Tool arguments:`` (``tool_call``
  to the tool being prepared), ``Tool 'T' completed its mission! Result:`` (``tool_output`` from
  T); other lines are ``log`` events whose source is the logger. No task in the log.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable
from typing import Any

from toolkit.ingest.chatlog import Parsed, blocks, log_message, parse_ts
from toolkit.ingest.mast_agents import (
    LOGURU,
    parse_ag2,
    parse_hyperagent,
    parse_magentic,
    parse_openmanus,
)

_CHATDEV = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\w+)\] (.*)$")
_CD_TURN = re.compile(r"^([^*:]+): \*\*(.+?)<->(.+?) on : (\w+), turn (\d+)\*\*(.*)$")
_CD_START = re.compile(r"^([^*:]+): \*\*\[Start Chat\]\*\*(.*)$")
_CD_ROLE = re.compile(r"^\| \*\*(assistant|user)_role_name\*\* \| (.+?) \|", re.M)


def parse_chatdev(text: str) -> Parsed:
    pre, parts = blocks(text.split("\n"), _CHATDEV)
    messages = log_message("\n".join(pre))
    roles: dict[str, str] = {}
    for m, body in parts:
        ts = parse_ts(m[1], "%Y-%d-%m %H:%M:%S") or parse_ts(m[1], "%Y-%m-%d %H:%M:%S")
        rest, tail = m[3], "\n".join(body)
        row: dict[str, Any] = {"ts": ts, "attrs": {"level": m[2]}}
        if turn := _CD_TURN.match(rest):
            speaker, a, b = turn[1].strip(), turn[2].strip(), turn[3].strip()
            row["attrs"] |= {"phase": turn[4], "turn": int(turn[5])}
            messages.append(
                row
                | {
                    "type": "message",
                    "source": speaker,
                    "target": b if speaker == a else a,
                    "content": (turn[6] + "\n" + tail).strip(),
                }
            )
        elif start := _CD_START.match(rest):
            speaker = start[1].strip()
            other = [r for r in roles.values() if r != speaker]
            row["attrs"]["kind"] = "start_chat"
            messages.append(
                row
                | {
                    "type": "message",
                    "source": speaker,
                    "target": other[0] if other else None,
                    "content": (start[2] + "\n" + tail).strip(),
                }
            )
        else:
            content = (rest + "\n" + tail).strip()
            if rest.startswith("System: **[RolePlaying]**"):
                roles = {k: v.strip() for k, v in _CD_ROLE.findall(content)}
            source = "System" if rest.startswith("System:") else None
            messages.append(row | {"type": "log", "source": source, "content": content})
    task = re.search(r"^\*\*task_prompt\*\*: (.*)$", text, re.M)
    return messages, task[1].strip() if task else None, {}


_MG_ACT = re.compile(r"^(\w+)\((\w+)\): to do (\w+)")
_MG_COMM = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] (?:FROM: (.+?) TO: (.+)|NEW MESSAGES:)\s*$|^=== .* ===\s*$"
)
_MG_BODY = re.compile(r"^\s*(?:ACTION: ([^\n]*)\n)?(?:CONTENT:\n)?(.*?)\s*(?:-{20,}\s*)?$", re.S)


def parse_metagpt(text: str) -> Parsed:
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return _metagpt_comm(text)
    pre, parts = blocks(str(record.get("content", "")).split("\n"), LOGURU)
    messages = log_message("\n".join(pre))
    for m, body in parts:
        row: dict[str, Any] = {
            "ts": parse_ts(m[2], "%Y-%m-%d %H:%M:%S.%f"),
            "attrs": {"level": m[3], "logger": m[4]},
        }
        content = "\n".join(body).strip()
        if act := _MG_ACT.match(m[5]):
            row["attrs"] |= {"name": act[1], "action": act[3]}
            messages.append(row | {"type": "message", "source": act[2], "content": content})
        else:
            messages.append(row | {"type": "log", "content": (m[5] + "\n" + content).strip()})
    attrs = {k: v for k, v in record.items() if k not in ("content", "prompt")}
    return messages, record.get("prompt"), attrs


def _metagpt_comm(text: str) -> Parsed:
    pre, parts = blocks(text.split("\n"), _MG_COMM)
    messages = log_message("\n".join(pre))
    task = None
    for m, body in parts:
        if not m[1]:
            messages.append({"type": "log", "content": "\n".join([m[0], *body]).strip()})
            continue
        row: dict[str, Any] = {
            "ts": parse_ts(m[1], "%Y-%m-%d %H:%M:%S"),
            "type": "message",
            "attrs": {},
        }
        said = _MG_BODY.match("\n".join(body))
        action, content = (said[1], said[2]) if said else (None, "\n".join(body))
        if action:
            row["attrs"]["action"] = action.strip()
        if m[2]:
            row |= {"source": m[2].strip(), "target": m[3].strip().strip("{}'\"") or None}
            task = task or content
        elif speaker := re.match(r"^(\w+): ?", content):
            row["source"], content = speaker[1], content[speaker.end() :]
        messages.append(row | {"content": content.strip()})
    return messages, task, {}


_APPWORLD = re.compile(
    r"^\s*(?:Response from (?P<resp>.+ Agent)|Message to (?P<to>.+ Agent)|Reply from (?P<rfrom>.+ Agent)"
    r" to (?P<rto>.+)|(?P<exec>Code Execution Output)|Response from (?P<api>\S+) API"
    r"|(?P<loop>Entering|Exiting) (?P<lagent>.+ Agent) message loop)\s*$"
)


def parse_appworld(text: str) -> Parsed:
    pre, parts = blocks(text.split("\n"), _APPWORLD)
    banner = next((i for i, line in enumerate(pre) if line.strip().startswith("*****")), None)
    task = "\n".join(pre[banner + 1 :]).strip() if banner is not None else None
    messages = log_message("\n".join(pre))
    if task:  # the banner and the task statement: the user's request to the supervisor
        messages[0] |= {"type": "message", "source": "user", "target": "Supervisor Agent"}
    stack = ["Supervisor Agent"]  # agents whose message loop is open, innermost last
    fresh = False  # the next "Message to" opens a sub-agent loop: it comes from the caller
    for m, body in parts:
        content = textwrap.dedent("\n".join(body)).strip()
        if m["loop"]:
            if m["loop"] == "Entering":
                stack.append(m["lagent"])
                fresh = True
            elif len(stack) > 1:
                stack.pop()
            messages.append({"type": "log", "content": m[0].strip()})
        elif m["resp"]:
            messages.append({"type": "message", "source": m["resp"], "content": content})
        elif m["to"]:
            source = stack[-2] if fresh and len(stack) > 1 else "environment"
            fresh = False
            messages.append(
                {"type": "message", "source": source, "target": m["to"], "content": content}
            )
        elif m["rfrom"]:
            target = m["rto"].strip()
            target = target if target.endswith("Agent") else f"{target} Agent"
            messages.append(
                {"type": "message", "source": m["rfrom"], "target": target, "content": content}
            )
        else:
            source = "environment" if m["exec"] else f"{m['api']} API"
            messages.append(
                {"type": "tool_output", "source": source, "target": stack[-1], "content": content}
            )
    return messages, task or None, {}


PARSERS: dict[str, Callable[[str], Parsed]] = {
    "ChatDev": parse_chatdev,
    "MetaGPT": parse_metagpt,
    "AG2": parse_ag2,
    "HyperAgent": parse_hyperagent,
    "AppWorld": parse_appworld,
    "Magentic-One": parse_magentic,
    "OpenManus": parse_openmanus,
}


def split_trajectory(system: str | None, text: str) -> Parsed:
    """Messages, task and run facts of one trajectory; one ``log`` message when it cannot split.

    The message's ``attrs.split`` says how: the parser's name, or ``none`` (whole text kept).
    """
    parser = PARSERS.get(system or "")
    messages: list[dict[str, Any]] = []
    task: str | None = None
    attrs: dict[str, Any] = {}
    if parser is not None:
        try:
            messages, task, attrs = parser(text)
        except (ValueError, TypeError, AttributeError, KeyError) as e:
            attrs = {"split_error": f"{type(e).__name__}: {e}"}
            messages = []
    if not any(msg["type"] != "log" for msg in messages):
        return [{"type": "log", "content": text, "attrs": {"split": "none"}}], task, attrs
    return messages, task, attrs
