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

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

DEFAULT_FAULTS: dict[str, float] = {
    "unhandled": 0.04,
    "duplicate": 0.04,
    "idempotency_violation": 0.03,
    "late": 0.04,
    "out_of_order": 0.03,
    "hang": 0.03,
    "missing_terminal": 0.03,
    "escalation": 0.05,
    "step_repetition": 0.03,
    "premature_termination": 0.03,
    "ignored_message": 0.03,
}
FAULT_KINDS = tuple(DEFAULT_FAULTS)
_SUBTASK_FAULTS = (
    "unhandled", "duplicate", "idempotency_violation", "late", "out_of_order", "hang",
    "escalation", "step_repetition", "ignored_message",
)  # fmt: skip
_TRACE_FAULTS = ("missing_terminal", "premature_termination")

MAX_SUBTASKS = 4
TOOL_TIMEOUT_MS = 2000
VERIFY_TIMEOUT_MS = 5000
_BASE_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z

# Slots: the position of each event in a trace's template; the event id is "<trace>:<slot>".
ROOT, PLAN, VERIFY_REQ, VERIFY_OK, DONE = 0, 1, 42, 43, 44
_A, _Q, _R, _R2, _C, _C2, _K, _K2, _E, _H = range(10)  # offsets within a subtask's 10 slots
N_SLOTS = 45

# Event type, source and target per slot kind ('{w}': the subtask's worker, '{t}': its tool).
_SLOT_KINDS = {
    "root": ("task.created", "user", "planner"),
    "plan": ("plan.created", "planner", None),
    _A: ("subtask.assigned", "planner", "{w}"),
    _Q: ("tool.requested", "{w}", "{t}"),
    _R: ("tool.responded", "{t}", "{w}"),
    _R2: ("tool.responded", "{t}", "{w}"),
    _C: ("subtask.completed", "{w}", "planner"),
    _C2: ("subtask.completed", "{w}", "planner"),
    _K: ("subtask.accepted", "planner", None),
    _K2: ("subtask.accepted", "planner", None),
    _E: ("escalation.requested", "planner", "human"),
    _H: ("escalation.resolved", "human", "planner"),
    "verify_req": ("verification.requested", "planner", "verifier"),
    "verify_ok": ("verification.passed", "verifier", "planner"),
    "done": ("task.completed", "planner", "user"),
}
_TOOLS = ("search", "calculator", "database", "payments")
_TASKS = (
    "Summarise last quarter's sales for the {r} region",
    "Find three suppliers for {r} and compare their prices",
    "Reconcile the {r} invoices against the ledger",
    "Draft a customer update about the {r} outage",
    "Book travel for the {r} sales team offsite",
)
_REGIONS = ("north", "south", "east", "west", "central", "EMEA", "APAC")


def _slot(s: int, offset: int) -> int:
    return 2 + s * 10 + offset


def _ms(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    """Uniform delays in microseconds."""
    return (rng.uniform(lo, hi, n) * 1000).astype(np.int64)


def _draw_faults(rng: np.random.Generator, n: int, k: np.ndarray, faults: dict[str, float]):
    """Which fault hits which subtask (``-1``: none) and which trace-level fault each trace has."""
    rates = np.array([faults.get(kind, 0.0) for kind in _SUBTASK_FAULTS])
    drawn = rng.random((n, len(_SUBTASK_FAULTS))) < rates
    order = np.argsort(rng.random((n, MAX_SUBTASKS)), axis=1)  # a random subtask order per trace
    rank = np.cumsum(drawn, axis=1) - 1
    sub_of = np.full((n, len(_SUBTASK_FAULTS)), -1)
    ok = drawn & (rank < k[:, None])
    rows, cols = np.nonzero(ok)
    sub_of[rows, cols] = order[rows, rank[rows, cols]]
    missing = rng.random(n) < faults.get("missing_terminal", 0.0)
    premature = ~missing & (rng.random(n) < faults.get("premature_termination", 0.0))
    fault_at = np.full((n, MAX_SUBTASKS), -1)  # index into _SUBTASK_FAULTS per subtask
    for j in range(len(_SUBTASK_FAULTS)):
        hit = sub_of[:, j] >= 0
        fault_at[np.nonzero(hit)[0], sub_of[hit, j]] = j
    return fault_at, missing, premature


def _simulate_arrays(n: int, seed: int, faults: dict[str, float]) -> dict[str, np.ndarray]:
    """All events as flat numpy arrays (one element per recorded event)."""
    rng = np.random.default_rng(seed)
    k = rng.integers(2, MAX_SUBTASKS + 1, n)
    fault_at, missing, premature = _draw_faults(rng, n, k, faults)
    f = {kind: j for j, kind in enumerate(_SUBTASK_FAULTS)}

    present = np.zeros((n, N_SLOTS), bool)
    ts = np.zeros((n, N_SLOTS), np.int64)
    end = np.full((n, N_SLOTS), -1, np.int64)
    parent = np.full((n, N_SLOTS), -1, np.int16)
    status = np.zeros((n, N_SLOTS), np.int8)  # 0 none, 1 ok, 2 timeout
    dup = np.zeros((n, N_SLOTS), bool)
    truth: list[tuple[np.ndarray, np.ndarray, str]] = []  # (trace idx, slot, kind)

    t0 = _BASE_US + np.arange(n, dtype=np.int64) * 1_000_000 + _ms(rng, 0, 900, n)
    present[:, [ROOT, PLAN]] = True
    ts[:, ROOT] = t0
    ts[:, PLAN] = t0 + _ms(rng, 200, 800, n)
    parent[:, PLAN] = ROOT
    done_by = ts[:, PLAN].copy()  # when the planner has everything it waits for
    for s in range(MAX_SUBTASKS):
        live = s < k
        fa = np.where(live, fault_at[:, s], -1)
        a, q, r, r2, c, c2, kk, kk2, e, h = (_slot(s, o) for o in range(10))
        ts[:, a] = ts[:, PLAN] + _ms(rng, 10, 60, n) + s * 20_000
        ts[:, q] = ts[:, a] + _ms(rng, 50, 300, n)
        latency = np.clip(rng.lognormal(np.log(300), 0.5, n), 20, 1500)
        ts[:, r] = ts[:, q] + (latency * 1000).astype(np.int64)
        end[:, r] = ts[:, r] + _ms(rng, 50, 400, n)
        ts[:, c] = end[:, r] + _ms(rng, 20, 200, n)
        parent[:, [a, q, r, c, kk]] = [PLAN, a, q, r, c]
        status[:, r] = 1

        late = fa == f["late"]  # the response comes after the timeout; the worker gave up first
        ts[late, r] = ts[late, q] + TOOL_TIMEOUT_MS * 1000 + _ms(rng, 100, 3000, late.sum())
        end[late, r] = ts[late, r] + _ms(rng, 50, 400, late.sum())
        ts[late, c] = ts[late, q] + TOOL_TIMEOUT_MS * 1000 + _ms(rng, 5, 20, late.sum())
        parent[late, c] = q
        status[late, c] = 2
        ts[:, kk] = ts[:, c] + _ms(rng, 5, 50, n)

        skew = fa == f["out_of_order"]  # the tool's clock runs behind: recorded before the request
        shift = ts[skew, r] - ts[skew, q] + _ms(rng, 50, 500, skew.sum())
        ts[skew, r] -= shift
        end[skew, r] -= shift

        dropped = fa == f["unhandled"]
        hang = fa == f["hang"]
        ignored = fa == f["ignored_message"]
        present[:, a] = live
        present[:, q] = live & ~dropped
        present[:, [r, c]] = (live & ~dropped & ~hang)[:, None]
        present[:, kk] = live & ~dropped & ~hang & ~ignored
        finished = np.where(present[:, kk], ts[:, kk], ts[:, c] + 10_000_000)
        finished = np.where(dropped, ts[:, a] + 10_000_000, finished)
        finished = np.where(hang, ts[:, q] + 10_000_000, finished)

        twice = fa == f["idempotency_violation"]
        present[:, r2] = twice
        ts[:, r2] = ts[:, r] + _ms(rng, 50, 500, n)
        end[:, r2] = ts[:, r2] + _ms(rng, 50, 400, n)
        parent[:, r2] = q
        status[:, r2] = 1

        again = fa == f["step_repetition"]
        present[:, [c2, kk2]] = again[:, None]
        ts[:, c2] = ts[:, c] + _ms(rng, 100, 1000, n)
        ts[:, kk2] = ts[:, c2] + _ms(rng, 5, 50, n)
        parent[:, [c2, kk2]] = [r, c2]
        finished = np.where(again, ts[:, kk2], finished)

        esc = fa == f["escalation"]
        present[:, [e, h]] = esc[:, None]
        ts[:, e] = ts[:, c] + _ms(rng, 5, 30, n)
        ts[:, h] = ts[:, e] + _ms(rng, 10_000, 120_000, n)
        parent[:, [e, h]] = [c, e]
        finished = np.where(esc, ts[:, h], finished)

        redelivered = fa == f["duplicate"]
        dup[:, c] = redelivered
        done_by = np.where(live, np.maximum(done_by, finished), done_by)
        for kind, slot, hit in (
            ("unhandled", a, dropped), ("duplicate", c, redelivered),
            ("idempotency_violation", r2, twice), ("late", r, late), ("out_of_order", r, skew),
            ("hang", q, hang), ("escalation", e, esc), ("step_repetition", c2, again),
            ("ignored_message", c, ignored), ("unhandled", c, ignored),
        ):  # fmt: skip
            truth.append((np.nonzero(hit)[0], np.full(hit.sum(), slot), kind))

    finish = ~missing
    verify = finish & ~premature
    present[:, [VERIFY_REQ, VERIFY_OK]] = verify[:, None]
    present[:, DONE] = finish
    ts[:, VERIFY_REQ] = done_by + _ms(rng, 20, 100, n)
    ts[:, VERIFY_OK] = ts[:, VERIFY_REQ] + _ms(rng, 100, 1500, n)
    ts[:, DONE] = np.where(premature, done_by, ts[:, VERIFY_OK]) + _ms(rng, 10, 100, n)
    parent[:, [VERIFY_REQ, VERIFY_OK]] = [PLAN, VERIFY_REQ]
    parent[:, DONE] = np.where(premature, PLAN, VERIFY_OK)
    status[:, VERIFY_OK] = 1
    status[:, DONE] = 1
    truth.append(
        (np.nonzero(premature)[0], np.full(premature.sum(), DONE), "premature_termination")
    )
    # Whatever a fault pushed past the end of the task (e.g. a second effect after a premature
    # completion) is late too.
    after = present & finish[:, None] & (ts > ts[:, [DONE]])
    truth.append((np.nonzero(after)[0], np.nonzero(after)[1], "late"))
    last = np.argmax(np.where(present, ts, np.iinfo(np.int64).min), axis=1)
    truth.append((np.nonzero(missing)[0], last[missing], "missing_terminal"))

    trace_idx, slot = np.nonzero(present)
    events = {
        "trace": trace_idx, "slot": slot, "ts": ts[trace_idx, slot], "end": end[trace_idx, slot],
        "parent": parent[trace_idx, slot], "status": status[trace_idx, slot],
        "arrival": ts[trace_idx, slot], "copy": np.zeros(len(slot), bool),
    }  # fmt: skip
    # The redelivered copies: the same record again, logged 0.5-5 s later.
    copies = np.nonzero(dup[trace_idx, slot])[0]
    for key, values in events.items():
        extra = values[copies]
        if key == "arrival":
            extra = extra + _ms(rng, 500, 5000, len(copies))
        elif key == "copy":
            extra = np.ones(len(copies), bool)
        events[key] = np.concatenate([values, extra])
    order = np.lexsort((events["slot"], events["trace"], events["arrival"]))
    events = {key: values[order] for key, values in events.items()}
    del events["arrival"]
    events["task_i"] = rng.integers(0, len(_TASKS) * len(_REGIONS), n)[events["trace"]]
    sub = np.clip((events["slot"] - 2) // 10, 0, MAX_SUBTASKS - 1)
    events["tool_i"] = rng.integers(0, len(_TOOLS), (n, MAX_SUBTASKS))[events["trace"], sub]
    events["truth_trace"] = np.concatenate([t for t, _, _ in truth]).astype(np.int64)
    events["truth_slot"] = np.concatenate([s for _, s, _ in truth]).astype(np.int64)
    events["truth_kind"] = np.concatenate([np.full(len(t), kind) for t, _, kind in truth])
    return events


def _slot_table() -> pa.Table:
    """type, source and target templates of each of the N_SLOTS slots."""
    rows = {"slot": [], "sub": [], "type": [], "source": [], "target": []}
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
) -> dict[str, object]:
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
    con.execute(f"""
        COPY (
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
        ) TO '{_sql_path(events_path)}' (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x01')
    """)
    truth_path = out / "truth.csv"
    trace_id_t = trace_id.replace("trace", "t")
    con.execute(f"""
        COPY (SELECT DISTINCT {trace_id_t} AS trace_id,
                     {trace_id_t} || ':' || lpad(slot::VARCHAR, 2, '0') AS event_id, kind
              FROM (SELECT trace AS t, slot, kind FROM truth) ORDER BY ALL)
        TO '{_sql_path(truth_path)}' (FORMAT csv, HEADER true)
    """)
    written = len(sim["slot"])
    findings = int(
        con.execute(f"SELECT count(*) FROM read_csv('{_sql_path(truth_path)}')").fetchall()[0][0]
    )
    con.close()
    return {
        "events": events_path,
        "truth": truth_path,
        "traces": traces,
        "events_written": written,
        "findings": findings,
    }


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
