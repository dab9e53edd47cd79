"""Failure attribution on Who&When: our offline rules vs baselines and the paper's GPT-4o.

Usage: ``python benchmarks/attribution.py [WHO_AND_WHEN_DIR]`` (default:
``../shared/data/who_and_when`` beside the checkout). Each subset (Algorithm-Generated,
Hand-Crafted) is ingested into its own in-memory database and scored separately.

Scoring is exact match: agent names compared case-insensitively, steps as integers. The Who&When
paper's evaluation script matches steps by substring, which flatters two-digit steps (a
prediction "1" counts for step 12); its figures below are as published, not re-scored.
"""

from __future__ import annotations

import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import toolkit
from toolkit.classify.attribution import NOT_AGENT, attribution_labels

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "who_and_when"
# The paper's GPT-4o results (Who&When, ICML 2025): agent / step accuracy in %, with ground truth.
PAPER = {
    "Algorithm-Generated": {"All-at-Once": (54.3, 12.5), "Step-by-Step": (None, 25.5)},
    "Hand-Crafted": {"All-at-Once": (55.2, 5.3), "Step-by-Step": (None, 7.0)},
}
TARGET = {"Algorithm-Generated": (60.0, 25.0), "Hand-Crafted": (60.0, 10.0)}


def baselines(con, labels) -> dict[str, tuple[float, float | None]]:
    """Agent / step accuracy (%) of uniform random (expected value) and positional guesses."""
    hits: dict[str, list[tuple[bool, bool | None]]] = {}
    for row in labels.itertuples(index=False):
        ev = toolkit.query(
            con,
            "SELECT seq, any_value(source) AS source FROM events WHERE trace_id = $t "
            "GROUP BY seq ORDER BY seq",
            t=row.trace_id,
        )
        src = [str(s) for s in ev["source"]]
        steps = [int(s) for s in ev["seq"]]
        agents = [i for i, s in enumerate(src) if s and not NOT_AGENT.search(s)] or [0]
        names = sorted({src[i] for i in agents})
        top = Counter(src[i] for i in agents).most_common(1)[0][0]
        truth = str(row.agent).lower()
        guesses = {
            "first agent to speak": (src[agents[0]], steps[agents[0]]),
            "last agent to speak": (src[agents[-1]], steps[agents[-1]]),
            "majority agent": (top, None),
            "first step": (src[0], steps[0]),
            "last step": (src[-1], steps[-1]),
        }
        for name, (agent, step) in guesses.items():
            ok_step = None if step is None else step == row.step
            hits.setdefault(name, []).append((agent.lower() == truth, ok_step))
        rand_agent = sum(n.lower() == truth for n in names) / len(names)
        rand_step = 1 / len(steps)
        hits.setdefault("uniform random (expected)", []).append((rand_agent, rand_step))
    out = {}
    for name, rows in hits.items():
        agent = 100 * sum(a for a, _ in rows) / len(rows)
        steps_ok = [s for _, s in rows if s is not None]
        out[name] = (agent, 100 * sum(steps_ok) / len(steps_ok) if steps_ok else None)
    return out


def fmt(x: float | None) -> str:
    return "   -  " if x is None else f"{x:5.1f}%"


def main(folder: Path) -> None:
    random.seed(0)
    for subset in ("Algorithm-Generated", "Hand-Crafted"):
        con = toolkit.connect()
        toolkit.ingest(con, sorted((folder / subset).glob("*.json")))
        labels = attribution_labels(con)
        t0 = time.perf_counter()
        per = toolkit.attribution_accuracy(con, by="trace")
        seconds = time.perf_counter() - t0
        ours = (100 * per["agent_ok"].mean(), 100 * per["step_ok"].mean())
        print(f"\n{subset}: {len(labels)} traces (exact match; {seconds:.2f} s for ours)")
        print(f"  {'method':38s} {'agent':>7s} {'step':>7s}")
        print(f"  {'toolkit rules (offline)':38s} {fmt(ours[0])} {fmt(ours[1])}")
        for name, (a, s) in baselines(con, labels).items():
            print(f"  {name:38s} {fmt(a)} {fmt(s)}")
        for name, (a, s) in PAPER[subset].items():
            print(f"  {'paper GPT-4o ' + name + ' (substring)':38s} {fmt(a)} {fmt(s)}")
        ta, ts = TARGET[subset]
        print(
            f"  target: agent >= {ta:.0f}%, step >= {ts:.0f}%: agent "
            f"{'met' if ours[0] >= ta else 'NOT met'}, step {'met' if ours[1] >= ts else 'NOT met'}"
        )
        rules = Counter(per["rule"])
        by_rule = per.groupby("rule")[["agent_ok", "step_ok"]].mean().mul(100).round(1)
        print("  rule that fired: " + ", ".join(f"{r} {n}" for r, n in rules.most_common()))
        print(re.sub(r"^", "    ", by_rule.to_string(), flags=re.M))
        con.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
