"""Write small literal traces as CloudEvents and load them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import toolkit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ce(id, type, src="a", parent=None, t=0.0, trace="t1", **extra) -> dict:
    """One CloudEvent; ``t`` is seconds after 2026-01-01T00:00:00Z (``None``: no time)."""
    record = {"specversion": "1.0", "id": id, "source": src, "type": type, "traceid": trace}
    if t is not None:
        record["time"] = (T0 + timedelta(seconds=t)).isoformat().replace("+00:00", "Z")
    if parent is not None:
        record["causationid"] = parent
    for key, value in extra.items():
        if key == "end":
            record["endtime"] = (T0 + timedelta(seconds=value)).isoformat().replace("+00:00", "Z")
        elif key == "key":
            record["idempotencykey"] = value
        elif key == "timeout":
            record["timeoutms"] = value
        else:
            record[key] = value
    return record


def load(con, tmp_path, records: list[dict], name: str = "case.jsonl"):
    """Write ``records`` to a file and ingest it; returns ``con``."""
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = toolkit.ingest(con, path, format="cloudevents")
    assert result.loc[0, "rejected"] == 0
    return con


def chain(
    trace: str, types: list[str], src: str = "a", t0: float = 0.0, step: float = 1.0
) -> list[dict]:
    """A linear causal chain of events ``<trace>-0``, ``<trace>-1``, ... one ``step`` apart."""
    return [
        ce(
            f"{trace}-{i}",
            ty,
            src=src,
            parent=f"{trace}-{i - 1}" if i else None,
            t=t0 + i * step,
            trace=trace,
        )
        for i, ty in enumerate(types)
    ]
