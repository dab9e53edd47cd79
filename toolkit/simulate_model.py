"""The numpy model behind :func:`toolkit.simulate`: who emits what, when, and which faults.

Every trace has the same template of ``N_SLOTS`` event slots (see the slot constants); faults
switch slots on or off and move their times. The whole batch is built as ``(traces, slots)``
arrays, so millions of events take seconds. :mod:`toolkit.simulate` turns the arrays into
CloudEvents and ground truth.
"""

from __future__ import annotations

import numpy as np

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

    trace_idx, slots = np.nonzero(present)
    events: dict[str, np.ndarray] = {
        "trace": trace_idx, "slot": slots, "ts": ts[trace_idx, slots],
        "end": end[trace_idx, slots], "parent": parent[trace_idx, slots],
        "status": status[trace_idx, slots], "arrival": ts[trace_idx, slots],
        "copy": np.zeros(len(slots), np.bool_),
    }  # fmt: skip
    # The redelivered copies: the same record again, logged 0.5-5 s later.
    copies = np.nonzero(dup[trace_idx, slots])[0]
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
