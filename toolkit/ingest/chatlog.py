"""Helpers shared by the readers of public agent-failure datasets (MAST, Who&When, AgentRx, τ-bench).

These datasets are JSON documents holding chat logs: a conversation is a list of messages, and a
message's causation is the conversation order (each message reacts to the one before it), so
``parent_id`` is the previous message's ``event_id``. Event ids are the message's position, which
the datasets themselves use to point at steps (``mistake_step``, ``step_number``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

# A parsed trajectory: (messages, task statement or None, facts about the run).
Parsed = tuple[list[dict[str, Any]], str | None, dict[str, Any]]


def blocks(
    lines: list[str], header: re.Pattern[str]
) -> tuple[list[str], list[tuple[re.Match, list[str]]]]:
    """Group lines into ``(preamble, [(header match, body lines)])``."""
    pre: list[str] = []
    blocks: list[tuple[re.Match, list[str]]] = []
    for line in lines:
        m = header.match(line)
        if m:
            blocks.append((m, []))
        elif blocks:
            blocks[-1][1].append(line)
        else:
            pre.append(line)
    return pre, blocks


def log_message(text: str, **row: Any) -> list[dict[str, Any]]:
    """A one-element list holding a ``log`` message with ``text``; empty for blank text."""
    return [{"type": "log", "content": text, **row}] if text.strip() else []


def parse_ts(value: str, fmt: str) -> datetime | None:
    """``value`` parsed with ``fmt`` as a UTC time (the logs name no zone), or ``None``."""
    try:
        return datetime.strptime(value, fmt).replace(tzinfo=UTC)
    except ValueError:
        return None


_ROLE = re.compile(r"^\s*(?P<agent>[^()]+?)\s*\((?P<detail>[^()]*)\)\s*$")


def raw(record: Any) -> str:
    """The JSON text of a record, for ``rejects.record``."""
    return json.dumps(record, ensure_ascii=False, default=str)


def is_missing(value: Any) -> bool:
    """``None`` or a float NaN: a value the dataset did not give."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def split_role(role: str) -> tuple[str, str | None, str | None]:
    """Split a Magentic-One role label into ``(source, target, detail)``.

    ``"Orchestrator (-> WebSurfer)"`` -> ``("Orchestrator", "WebSurfer", None)``;
    ``"Orchestrator (thought)"`` -> ``("Orchestrator", None, "thought")``; other labels are kept.
    """
    m = _ROLE.match(role)
    if not m:
        return role.strip(), None, None
    detail = m["detail"].strip()
    if detail.startswith("->"):
        return m["agent"], detail[2:].strip() or None, None
    return m["agent"], None, detail or None


def text_of(content: Any) -> str | None:
    """Message content as text: strings as they are, lists of lines joined, other JSON dumped."""
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(c, str) for c in content):
        return "\n".join(content)
    return raw(content)


def chain(
    trace_id: str,
    messages: Iterable[Mapping[str, Any]],
    origin: str,
    *,
    first_seq: int = 0,
) -> list[dict[str, Any]]:
    """Event rows for a conversation: ``seq``/``event_id`` from the position, parent = previous.

    Each message is a mapping of event columns (``source``, ``target``, ``type``, ``content``,
    ``ts``, ``attrs``, ...); ``seq`` counts from ``first_seq`` unless the message gives one, and
    the origin of a message is ``<origin><seq>`` (pass ``path#`` or ``path#N/``). A message may name its own ``parent_id`` (a
    tool result naming its call); otherwise its parent is the message before it.
    """
    rows: list[dict[str, Any]] = []
    previous: str | None = None
    for i, message in enumerate(messages):
        row = dict(message)
        seq = row.setdefault("seq", first_seq + i)
        row.setdefault("event_id", str(seq))
        row.setdefault("type", "message")
        if "parent_id" not in row:
            row["parent_id"] = previous
        row["trace_id"] = trace_id
        row["origin"] = f"{origin}{seq}"
        rows.append(row)
        previous = row["event_id"]
    return rows
