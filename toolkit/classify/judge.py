"""The judge protocol: one prompt per trace, a yes/no per MAST mode back, parsed robustly.

A judge is any callable ``prompt: str -> str`` (an LLM client wrapped by the user; nothing here
touches the network). The prompt holds the taxonomy in our wording and the trace's events,
truncated for long traces (the prompt says how). The answer must contain one JSON object
mapping mode ids to ``{"answer": "yes"|"no", "evidence": "...", "steps": [...]}``; plain
``"yes"``/``"no"``/booleans are accepted too, as are codes without the ``FM-`` prefix.

Parsing: a mode missing from the answer (or with an answer that is neither yes nor no) is
``unknown``, never ``no``. An answer with no JSON object in it is ``malformed``; a judge that
raises is ``error``; neither yields annotations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from toolkit.classify.taxonomy import CATEGORIES, SOURCE, TAXONOMY

Judge = Callable[[str], str]
MAX_CHARS = 24_000  # the trace part of the prompt
MAX_MESSAGE_CHARS = 600  # one message

_YES = {"yes", "y", "true", "1", "present"}
_NO = {"no", "n", "false", "0", "absent"}


def judge_name(judge: Judge, annotator: str | None = None) -> str:
    """The annotator name for a judge: ``annotator``, else the callable's ``__name__``."""
    return annotator or getattr(judge, "__name__", None) or type(judge).__name__


def render_trace(events: pd.DataFrame, *, max_chars: int = MAX_CHARS) -> tuple[str, str]:
    """The events as numbered lines, and a sentence saying what was truncated.

    Each message is cut to ``MAX_MESSAGE_CHARS``; when the lines exceed ``max_chars`` the first
    third and the last two thirds of the budget are kept and the steps in between are left out.
    """
    lines = []
    cut = 0
    for row in events.itertuples(index=False):
        text = re.sub(r"\s+", " ", str(row.content or "")).strip()
        if len(text) > MAX_MESSAGE_CHARS:
            text, cut = text[:MAX_MESSAGE_CHARS] + " [...]", cut + 1
        arrow = f" -> {row.target}" if isinstance(row.target, str) else ""
        lines.append(f"[{row.seq}] {row.source or '?'}{arrow} ({row.type}): {text}")
    notes = [f"The trace has {len(lines)} steps."]
    if cut:
        notes.append(f"{cut} messages were cut to {MAX_MESSAGE_CHARS} characters (marked [...]).")
    if sum(len(line) + 1 for line in lines) > max_chars:
        head: list[str] = []
        tail: list[str] = []
        size = 0
        for line in lines:
            if size + len(line) + 1 > max_chars // 3:
                break
            head.append(line)
            size += len(line) + 1
        size = 0
        for line in reversed(lines[len(head) :]):
            if size + len(line) + 1 > max_chars - max_chars // 3:
                break
            tail.insert(0, line)
            size += len(line) + 1
        left_out = len(lines) - len(head) - len(tail)
        notes.append(
            f"It is too long to show whole: steps {len(head)} to {len(lines) - len(tail) - 1} "
            f"({left_out} steps) are left out; the first {len(head)} and the last {len(tail)} "
            "are shown."
        )
        lines = [*head, f"... [{left_out} steps left out] ...", *tail]
    return "\n".join(lines), " ".join(notes)


def build_prompt(
    trace_id: str, task: str | None, events: pd.DataFrame, *, max_chars: int = MAX_CHARS
) -> str:
    """The prompt for one trace: the taxonomy, the trace, the answer format."""
    modes = "\n".join(
        f"- {m.id} {m.name} ({CATEGORIES[m.category].name}): {m.definition}"
        for m in TAXONOMY.values()
    )
    body, note = render_trace(events, max_chars=max_chars)
    example = {
        "FM-1.3": {"answer": "yes", "evidence": "step 7 repeats step 4", "steps": [4, 7]},
        "FM-2.1": {"answer": "no", "evidence": "", "steps": []},
    }
    return f"""You are annotating a multi-agent system's run for failure modes of the MAST taxonomy
({SOURCE}).

Failure modes:
{modes}

Task of the run: {task or "(not recorded)"}
Trace id: {trace_id}
{note}
Each line is [step] source -> target (event type): content.

{body}

For EVERY mode above, decide whether it occurs in this run. Answer with one JSON object and
nothing else, keyed by mode id, each value {{"answer": "yes" or "no", "evidence": one sentence,
"steps": [step numbers]}}. Example of two entries: {json.dumps(example)}
"""


def _json_object(text: str) -> dict | None:
    """The first JSON object in ``text`` (code fences and prose around it allowed)."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text[m.start() :])
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _mode_id(key: Any) -> str | None:
    m = re.search(r"(\d)\.(\d)", str(key))
    mode = f"FM-{m[1]}.{m[2]}" if m else None
    return mode if mode in TAXONOMY else None


def _verdict(value: Any) -> tuple[str, str, list, float]:
    """``(verdict, evidence text, steps, confidence)`` from one mode's value."""
    evidence, steps, confidence = "", [], 1.0
    answer = value
    if isinstance(value, dict):
        answer = value.get("answer", value.get("present", value.get("verdict")))
        evidence = str(value.get("evidence") or value.get("reason") or "")
        raw_steps = value.get("steps") or []
        steps = raw_steps if isinstance(raw_steps, list) else [raw_steps]
        try:
            confidence = float(value.get("confidence", 1.0))
        except (TypeError, ValueError):
            confidence = 1.0
    word = str(answer).strip().lower() if answer is not None else ""
    if isinstance(answer, bool):
        word = "yes" if answer else "no"
    verdict = "yes" if word in _YES else "no" if word in _NO else "unknown"
    return verdict, evidence, steps, confidence


def parse_answer(text: str) -> tuple[str, dict[str, tuple[str, str, list, float]]]:
    """Parse a judge's answer into ``(status, {mode: (verdict, evidence, steps, confidence)})``.

    ``status`` is ``ok`` or ``malformed`` (no JSON object found); modes the answer does not
    mention are ``unknown``.
    """
    obj = _json_object(text if isinstance(text, str) else "")
    if obj is None:
        return "malformed", {}
    if (
        len(obj) == 1
        and isinstance(next(iter(obj.values())), dict)
        and not _mode_id(next(iter(obj)))
    ):
        obj = next(iter(obj.values()))  # {"modes": {...}} or similar wrapping
    found: dict[str, tuple[str, str, list, float]] = {}
    for key, value in obj.items():
        mode = _mode_id(key)
        if mode is not None:
            found[mode] = _verdict(value)
    verdicts = {m: found.get(m, ("unknown", "", [], float("nan"))) for m in TAXONOMY}
    return "ok", verdicts
