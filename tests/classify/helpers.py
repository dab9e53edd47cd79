"""Literal traces for the classify tests: rows straight into the canonical tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from toolkit.ingest.base import create_stage, drop_stage, merge_stage, stage_rows

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def load(con, trace_id: str, steps: list[tuple], *, task=None, outcome=None, system="lit") -> None:
    """Load one trace: steps are ``(event_id, type, source, target, parent_id, content)`` one
    second apart, optionally with a 7th item ``attrs``."""
    rows = []
    for i, step in enumerate(steps):
        event_id, kind, source, target, parent, content, *rest = step
        rows.append({
            "trace_id": trace_id, "event_id": event_id, "type": kind, "source": source,
            "target": target, "parent_id": parent, "content": content,
            "ts": T0 + timedelta(seconds=i), "seq": i, "origin": f"lit:{i}",
            "attrs": rest[0] if rest else None,
        })  # fmt: skip
    create_stage(con)
    stage_rows(con, "events", rows)
    stage_rows(con, "traces", [{"trace_id": trace_id, "system": system, "task": task,
                                "outcome": outcome}])  # fmt: skip
    merge_stage(con)
    drop_stage(con)


def chat(con, trace_id: str, messages: list[tuple[str, str]], **kw) -> None:
    """A chat log: ``(source, content)`` messages, each reacting to the one before."""
    steps = [(str(i), "message", s, None, str(i - 1) if i else None, c)
             for i, (s, c) in enumerate(messages)]  # fmt: skip
    load(con, trace_id, steps, **kw)


def pipeline(con, trace_id: str, *, verify=True, done=True, extra=(), drop=()) -> None:
    """An event-driven run: task, plan, two workers, (verification), completion."""
    steps = [
        ("e0", "task.created", "user", "planner", None, "Reconcile the invoices"),
        ("e1", "plan.created", "planner", None, "e0", "Plan"),
        ("e2", "subtask.assigned", "planner", "worker-1", "e1", "Subtask 1"),
        ("e3", "subtask.completed", "worker-1", "planner", "e2", "Result 1"),
        ("e4", "subtask.accepted", "planner", None, "e3", "Accepted 1"),
        ("e5", "subtask.assigned", "planner", "worker-2", "e1", "Subtask 2"),
        ("e6", "subtask.completed", "worker-2", "planner", "e5", "Result 2"),
        ("e7", "subtask.accepted", "planner", None, "e6", "Accepted 2"),
    ]
    if verify:
        steps += [("e8", "verification.requested", "planner", "verifier", "e1", "Verify"),
                  ("e9", "verification.passed", "verifier", "planner", "e8", "Checks out")]  # fmt: skip
    if done:
        steps.append(("e10", "task.completed", "planner", "user", "e9" if verify else "e1", "Done"))
    steps = [s for s in steps if s[0] not in drop] + list(extra)
    load(con, trace_id, steps, system="pipe")
