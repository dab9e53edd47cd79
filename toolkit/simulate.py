"""A seeded event-driven multi-agent system with injected faults and their ground truth.

Each trace is one task handled by a planner, 2-4 workers, tool services, a verifier and a human
escalation channel, all talking in CloudEvents with causation ids:

```
task.created (user) -> plan.created (planner)
  per subtask s:  subtask.assigned (planner -> worker-s)
                  -> tool.requested (worker -> tool, idempotencykey, timeoutms=2000)
                  -> tool.responded (tool -> worker, same key; a span: time..endtime)
                  -> subtask.completed (worker -> planner) -> subtask.accepted (planner)
  plan.created -> verification.requested (planner -> verifier, timeoutms=5000)
               -> verification.passed (verifier -> planner) -> task.completed (planner)
```

Faults (``kind``: what is injected; the ground-truth row(s) it must produce):

* ``unhandled``: a worker drops its ``subtask.assigned``; row: that event.
* ``duplicate``: the broker redelivers a ``subtask.completed`` (same id recorded twice, later in
  the file, ``deliverycount`` 2); row: that event id.
* ``idempotency_violation``: the tool executes one keyed request twice (a second
  ``tool.responded`` with the same key); row: the second response.
* ``late``: the tool answers after the request's timeout; the worker had given up
  (``subtask.completed`` with status ``timeout`` reacting to the request); row: the response.
* ``out_of_order``: the tool's clock is behind: its response is recorded before the request;
  row: the response.
* ``hang``: a tool request is never answered; row: the request.
* ``missing_terminal``: the planner dies before verification: no ``verification.*`` and no
  ``task.completed``; row: the trace's last recorded event (latest ``time``).
* ``escalation``: a low-confidence result is handed to a human (``escalation.requested`` ->
  ``escalation.resolved``); row: the ``escalation.requested`` event.
* ``step_repetition``: a worker sends its ``subtask.completed`` twice with the same content
  under a new id; row: the repeat.
* ``premature_termination``: the planner completes the task without verification; row: the
  ``task.completed`` event.
* ``ignored_message``: the planner never reacts to a ``subtask.completed``; rows: that event,
  once as ``ignored_message`` and once as ``unhandled`` (the event flow snaps there too).

Subtask-level faults go to distinct subtasks of a trace (faults beyond the trace's number of
subtasks are not injected); ``missing_terminal`` and ``premature_termination`` exclude each
other (the first drawn wins, in that order). Generation is vectorised with numpy and the JSON is
written by DuckDB, so millions of events take seconds.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from toolkit.simulate_model import (
    _C,
    _E,
    _REGIONS,
    _SLOT_KINDS,
    _TASKS,
    _TOOLS,
    DEFAULT_FAULTS,
    DONE,
    FAULT_KINDS,
    N_SLOTS,
    PLAN,
    ROOT,
    TOOL_TIMEOUT_MS,
    VERIFY_OK,
    VERIFY_REQ,
    VERIFY_TIMEOUT_MS,
    _simulate_arrays,
)

__all__ = ["DEFAULT_FAULTS", "FAULT_KINDS", "simulate"]


def _slot_table() -> pa.Table:
    """type, source and target templates of each of the N_SLOTS slots."""
    rows: dict[str, list[Any]] = {"slot": [], "sub": [], "type": [], "source": [], "target": []}
    named = {
        ROOT: "root",
        PLAN: "plan",
        VERIFY_REQ: "verify_req",
        VERIFY_OK: "verify_ok",
        DONE: "done",
    }
    for slot in range(N_SLOTS):
        key = named.get(slot, (slot - 2) % 10)
        kind, source, target = _SLOT_KINDS[key]
        rows["slot"].append(slot)
        rows["sub"].append((slot - 2) // 10 + 1 if slot not in named else None)
        rows["type"].append(kind)
        rows["source"].append(source)
        rows["target"].append(target)
    return pa.table(rows)


_CONTENT = """CASE type
    WHEN 'task.created' THEN task
    WHEN 'plan.created' THEN 'Plan for: ' || task
    WHEN 'subtask.assigned' THEN 'Subtask ' || sub::VARCHAR || ' of: ' || task
    WHEN 'tool.requested' THEN 'Call ' || tool || ' for subtask ' || sub
    WHEN 'tool.responded' THEN tool || ' returned the data for subtask ' || sub
    WHEN 'subtask.completed' THEN 'Result of subtask ' || sub || ' (confidence '
        || CASE WHEN escalated THEN '0.31' ELSE '0.92' END || ')'
    WHEN 'subtask.accepted' THEN 'Accepted subtask ' || sub
    WHEN 'escalation.requested' THEN 'Low confidence on subtask ' || sub || '; asking a human'
    WHEN 'escalation.resolved' THEN 'A human approved subtask ' || sub
    WHEN 'verification.requested' THEN 'Verify the results of: ' || task
    WHEN 'verification.passed' THEN 'All subtask results check out'
    WHEN 'task.completed' THEN 'Done: ' || task
END"""


def simulate(
    out_dir: str | Path,
    *,
    traces: int = 100,
    seed: int = 0,
    faults: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Simulate ``traces`` runs and write ``events.jsonl`` (CloudEvents) and ``truth.csv``.

    Args:
        out_dir: the folder to write into (created if missing).
        traces: how many runs (tasks); each has 2-4 subtasks, about 20 events.
        seed: the random seed; the same seed gives byte-identical files.
        faults: fault kind -> rate per trace (see the module docstring); ``None`` uses
            ``DEFAULT_FAULTS``, ``{}`` simulates clean runs with an empty truth.

    Returns:
        ``{"events": path, "truth": path, "traces": n, "events_written": m, "findings": f}``.

    Raises:
        ValueError: an unknown fault kind or a rate outside [0, 1].
    """
    faults = dict(DEFAULT_FAULTS if faults is None else faults)
    unknown = set(faults) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(
            f"unknown fault kind(s) {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}"
        )
    if any(not 0.0 <= rate <= 1.0 for rate in faults.values()):
        raise ValueError("fault rates must be between 0 and 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim = _simulate_arrays(traces, seed, faults)
    truth = {
        k.removeprefix("truth_"): sim.pop(k) for k in ("truth_trace", "truth_slot", "truth_kind")
    }
    escalated = np.zeros((traces, N_SLOTS), bool)
    esc = truth["kind"] == "escalation"
    escalated[truth["trace"][esc], truth["slot"][esc] - (_E - _C)] = True
    sim["escalated"] = escalated[sim["trace"], sim["slot"]]

    con = duckdb.connect()
    # No progress bar on the terminal for long writes; in Jupyter without ipywidgets DuckDB
    # refuses the setting, which is harmless there.
    with contextlib.suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")
    con.register("sim", pa.table(sim))
    con.register("slots", _slot_table())
    con.register("truth", pa.table(truth))
    tasks = [t.format(r=r) for t in _TASKS for r in _REGIONS]
    con.execute(
        "CREATE TEMP TABLE tasks AS SELECT unnest($t) AS task, generate_subscripts($t, 1) - 1 AS i",
        {"t": tasks},
    )
    con.execute(
        "CREATE TEMP TABLE tools AS SELECT unnest($t) AS tool, generate_subscripts($t, 1) - 1 AS i",
        {"t": list(_TOOLS)},
    )
    trace_id = f"'sim{seed}-' || lpad(trace::VARCHAR, 7, '0')"
    event_id = f"{trace_id} || ':' || lpad(slot::VARCHAR, 2, '0')"
    events_path = out / "events.jsonl"
    # One JSON text per row, written as a one-column CSV without quoting: JSON Lines. The
    # relation API takes the path as an argument, so no path is spliced into SQL text.
    con.sql(f"""
            SELECT json_merge_patch('{{}}', json_object(
                'specversion', '1.0', 'id', {event_id}, 'source', source, 'type', type,
                'time', strftime(make_timestamp(ts), '%Y-%m-%dT%H:%M:%S.%fZ'),
                'traceid', {trace_id},
                'causationid', CASE WHEN parent >= 0
                    THEN {trace_id} || ':' || lpad(parent::VARCHAR, 2, '0') END,
                'target', target,
                'status', CASE status WHEN 1 THEN 'ok' WHEN 2 THEN 'timeout' END,
                'endtime', CASE WHEN "end" >= 0
                    THEN strftime(make_timestamp("end"), '%Y-%m-%dT%H:%M:%S.%fZ') END,
                'idempotencykey', CASE WHEN type LIKE 'tool.%' THEN {trace_id} || ':k' || sub END,
                'timeoutms', CASE type WHEN 'tool.requested' THEN {TOOL_TIMEOUT_MS}
                                       WHEN 'verification.requested' THEN {VERIFY_TIMEOUT_MS} END,
                'reason', CASE WHEN type = 'escalation.requested' THEN 'low_confidence' END,
                'deliverycount', CASE WHEN copy THEN 2 END,
                'system', CASE WHEN type = 'task.created' THEN 'sim' END,
                'task', CASE WHEN type = 'task.created' THEN task END,
                'data', {_CONTENT}
            ))::VARCHAR AS line
            FROM (
                SELECT s.*, sl.type,
                       replace(replace(sl.source, '{{w}}', 'worker-' || coalesce(sl.sub, 0)),
                               '{{t}}', 'tool-' || tl.tool) AS source,
                       replace(replace(sl.target, '{{w}}', 'worker-' || coalesce(sl.sub, 0)),
                               '{{t}}', 'tool-' || tl.tool) AS target,
                       sl.sub::VARCHAR AS sub, tk.task, tl.tool, row_number() OVER () AS pos
                FROM sim s JOIN slots sl USING (slot) JOIN tasks tk ON tk.i = s.task_i
                JOIN tools tl ON tl.i = s.tool_i
            ) ORDER BY pos
    """).write_csv(str(events_path), sep="\x01", header=False, quotechar="", escapechar="")
    truth_path = out / "truth.csv"
    trace_id_t = trace_id.replace("trace", "t")
    truth_rows = con.sql(f"""
        SELECT DISTINCT {trace_id_t} AS trace_id,
               {trace_id_t} || ':' || lpad(slot::VARCHAR, 2, '0') AS event_id, kind
        FROM (SELECT trace AS t, slot, kind FROM truth) ORDER BY ALL
    """)
    truth_rows.write_csv(str(truth_path), header=True)
    written = len(sim["slot"])
    findings = int(truth_rows.aggregate("count(*)").fetchall()[0][0])
    con.close()
    return {
        "events": events_path,
        "truth": truth_path,
        "traces": traces,
        "events_written": written,
        "findings": findings,
    }
