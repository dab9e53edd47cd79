"""A seeded mutation fuzzer for ``toolkit.ingest``: hostile variants of real trace files, and an
oracle for the ingest rule (see :mod:`toolkit.ingest`).

Seeds are the trace files under ``tests/fixtures`` and ``data/samples`` plus a few literal ones
for the formats those folders lack (one per format at least). Each mutant is written under an
odd file name and ingested twice (format detected, format forced); every outcome is classified:

* ``ok``: a result row; every reject and every event names this file; the database changed
  only if the file was loaded; nothing silently lost (JSON Lines: every non-blank line is an
  event's or a reject's origin; ``empty`` only for a file that holds no record);
* ``error``: an :class:`~toolkit.ingest.IngestError` naming the file (``cannot detect the
  format`` included), and the database unchanged;
* ``bug``: an ``IngestError`` saying a reader failed unexpectedly;
* ``other``: any other exception (the rule forbids it);
* ``lost``: a result whose records do not add up (see ``ok``).

Used by ``tests/ingest/test_fuzz.py`` (a few hundred mutants per format) and by
``benchmarks/fuzz_ingest.py`` (the long campaign, with a timeout per input).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

import toolkit
from toolkit.ingest import IngestError, detect_format, ingest

ROOT = Path(__file__).resolve().parents[2]
SEED_DIRS = [ROOT / "tests" / "fixtures", ROOT / "data" / "samples"]
MAX_SEED_BYTES = 70_000

_OI_SPAN = {
    "name": "ChatCompletion",
    "context": {"trace_id": "a1", "span_id": "b1"},
    "span_kind": "LLM",
    "parent_id": None,
    "start_time": "2025-01-01T00:00:00+00:00",
    "end_time": "2025-01-01T00:00:01+00:00",
    "status_code": "OK",
    "attributes": {"input.value": "hi", "output.value": "hello", "llm.model_name": "gpt"},
    "events": [],
}
_OTLP = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "s"},
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "name": "invoke_agent",
                            "kind": 1,
                            "startTimeUnixNano": "1700000000000000000",
                            "endTimeUnixNano": "1700000001000000000",
                            "attributes": [
                                {"key": "gen_ai.agent.name", "value": {"stringValue": "a"}}
                            ],
                        },
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b175",
                            "parentSpanId": "eee19b7ec3c1b174",
                            "name": "tool",
                            "startTimeUnixNano": "1700000000500000000",
                            "status": {"code": 2},
                        },
                    ],
                }
            ],
        }
    ]
}
_SDK_SPAN = {
    "name": "agent",
    "context": {"trace_id": "0x5b8efff798038103d269b633813fc60c", "span_id": "0xeee19b7ec3c1b174"},
    "kind": "SpanKind.INTERNAL",
    "parent_id": None,
    "start_time": "2025-01-01T00:00:00.000000Z",
    "end_time": "2025-01-01T00:00:01.000000Z",
    "status": {"status_code": "OK"},
    "attributes": {"gen_ai.agent.name": "a"},
    "events": [],
    "links": [],
    "resource": {"attributes": {"service.name": "svc"}},
}
_TAU = [
    {
        "task_id": 1,
        "trial": 0,
        "reward": 1.0,
        "info": {"task": {"instruction": "refund"}},
        "traj": [
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": "refund please"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "refund", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "name": "refund", "content": "ok"},
        ],
    }
]
_AGENTRX = [
    {"role": "human", "content": "find the paper"},
    {"role": "Orchestrator (thought)", "content": "plan"},
    {"role": "Orchestrator (-> WebSurfer)", "content": "search"},
    {"role": "WebSurfer", "content": "found"},
]
_AGENTRX_TRUTH = [
    {
        "trajectory_id": "t1",
        "failures": [
            {"failure_id": "f1", "step_number": 2, "failure_category": "plan", "failed_agent": "O"}
        ],
        "root_cause": {"failure_id": "f1"},
    }
]

# Seeds for formats the fixture folders lack: (format, file name, text).
LITERAL_SEEDS: list[tuple[str, str, str]] = [
    ("openinference", "oi.json", json.dumps([_OI_SPAN, _OI_SPAN | {"name": "x"}], indent=1)),
    ("openinference", "oi.jsonl", json.dumps(_OI_SPAN) + "\n" + json.dumps(_OI_SPAN) + "\n"),
    ("otlp", "request.json", json.dumps(_OTLP, indent=2)),
    (
        "otlp",
        "requests.stream.json",
        json.dumps(_OTLP, indent=2) + "\n" + json.dumps(_OTLP, indent=2),
    ),
    (
        "otel_sdk",
        "console.txt",
        json.dumps(_SDK_SPAN, indent=4) + "\n" + json.dumps(_SDK_SPAN, indent=4),
    ),
    ("otel_sdk", "sdk.jsonl", json.dumps(_SDK_SPAN) + "\n" + json.dumps(_SDK_SPAN) + "\n"),
    ("tau_bench", "tau.json", json.dumps(_TAU, indent=1)),
    ("agentrx", "traj.json", json.dumps(_AGENTRX, indent=1)),
    ("agentrx", "truth.json", json.dumps(_AGENTRX_TRUTH, indent=1)),
]


@dataclass(frozen=True)
class Seed:
    """A seed file: its format, a name and its bytes."""

    format: str
    name: str
    data: bytes


def seeds(tmp: Path) -> list[Seed]:
    """Every seed: trace files under the seed folders (up to ``MAX_SEED_BYTES``), the literal
    seeds, and a canonical Parquet file exported from the CloudEvents sample."""
    found: list[Seed] = []
    for folder in SEED_DIRS:
        for f in sorted(folder.rglob("*")):
            if not f.is_file() or f.stat().st_size > MAX_SEED_BYTES or f.suffix in (".md", ".py"):
                continue
            fmt = detect_format(f)
            if fmt is not None:
                found.append(Seed(fmt, f.name, f.read_bytes()))
    found += [Seed(fmt, name, text.encode()) for fmt, name, text in LITERAL_SEEDS]
    con = toolkit.connect()
    try:
        ingest(con, ROOT / "data" / "samples" / "support_desk.jsonl")
        toolkit.export_parquet(con, tmp / "seed.parquet")
        found.append(Seed("parquet", "events.parquet", (tmp / "seed.parquet").read_bytes()))
    finally:
        con.close()
    return found


# --- mutations -------------------------------------------------------------------------------

_HOSTILE_VALUES: list[Any] = [
    7,
    -1,
    10**30,
    1e308,
    -9.5,
    True,
    None,
    "",
    "x" * 300,
    "2026-02-30T09:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-01-01T23:59:60Z",
    "0000-01-01T00:00:00Z",
    "\ud800",
    "line\u2028break",
    [],
    [1, "a", None],
    {},
    {"a": {"b": [1]}},
    "'); DROP TABLE events; --",
]
_IMPOSSIBLE = [
    "2026-02-30T09:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-01-01T23:59:60Z",
    "0000-01-01T00:00:00Z",
]
_TIME = re.compile(rb'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"')
NAMES = ["e[1].json", "*.json", "a?b.json", "it's.json", "sp ace.json", "~x.json", "{a,b}.json"]


def _nodes(doc: Any, limit: int = 3000) -> list[tuple[Any, Any]]:
    """(container, key) pairs of a parsed document, breadth first, up to ``limit``."""
    out: list[tuple[Any, Any]] = []
    queue = [doc]
    while queue and len(out) < limit:
        v = queue.pop(0)
        items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else []
        for k, child in items:
            out.append((v, k))
            if isinstance(child, dict | list):
                queue.append(child)
    return out


def _deep(levels: int) -> str:
    """JSON text nested ``levels`` deep (objects and lists alternating), built as text."""
    opens = "".join('{"k":' if i % 2 else "[" for i in range(levels))
    closes = "".join("}" if i % 2 else "]" for i in reversed(range(levels)))
    return opens + '"bottom"' + closes


def _retype(rng: random.Random, text: str) -> str | None:
    """Replace one value somewhere in a JSON document (or one JSON line) by a hostile one."""
    lines = text.split("\n")
    try:
        doc = json.loads(text)
        line_no = None
    except ValueError:
        candidates = [i for i, line in enumerate(lines) if line.strip()[:1] == "{"]
        if not candidates:
            return None
        line_no = rng.choice(candidates)
        try:
            doc = json.loads(lines[line_no])
        except ValueError:
            return None
    nodes = _nodes(doc)
    if not nodes:
        return None
    container, key = rng.choice(nodes)
    deep = None
    if rng.random() < 0.1:
        deep = _deep(rng.choice([300, 1100, 3000]))
        container[key] = "@@DEEP@@"
    elif rng.random() < 0.1 and isinstance(container[key], list):
        container[key] = "s" * rng.randint(1, 2000)  # a string where a list is expected
    else:
        container[key] = rng.choice(_HOSTILE_VALUES)
    try:
        new = json.dumps(doc, ensure_ascii=rng.random() < 0.5)
    except (ValueError, RecursionError):
        return None
    if deep is not None:
        new = new.replace('"@@DEEP@@"', deep, 1)
    if line_no is None:
        return new
    lines[line_no] = new
    return "\n".join(lines)


def mutate(rng: random.Random, data: bytes, is_parquet: bool) -> tuple[str, bytes]:
    """One mutation of ``data``: ``(what, new bytes)``."""
    if is_parquet:
        kind = rng.choice(["flip", "truncate", "flip", "truncate", "keep"])
    else:
        kind = rng.choice(
            ["flip", "truncate", "drop_line", "dup_line", "bom", "crlf", "blank_lines", "retype",
             "retype", "retype", "retype", "impossible_time", "u2028", "dup_key", "deep", "null",
             "empty", "concat"]
        )  # fmt: skip
    b = bytearray(data)
    if kind == "flip" and b:
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return kind, bytes(b)
    if kind == "truncate" and b:
        return kind, bytes(b[: rng.randrange(len(b))])
    if kind == "keep":
        return kind, data
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if kind == "drop_line" and len(lines) > 1:
        del lines[rng.randrange(len(lines))]
        return kind, "\n".join(lines).encode()
    if kind == "dup_line" and lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        return kind, "\n".join(lines).encode()
    if kind == "bom":
        return kind, b"\xef\xbb\xbf" + data
    if kind == "crlf":
        return kind, data.replace(b"\n", b"\r\n")
    if kind == "blank_lines":
        return kind, b"\n\n  \n" + data
    if kind == "impossible_time":
        matches = list(_TIME.finditer(data))
        if matches:
            m = rng.choice(matches)
            bad = json.dumps(rng.choice(_IMPOSSIBLE)).encode()
            return kind, data[: m.start()] + bad + data[m.end() :]
    if kind == "u2028":
        i = text.find('": "')
        if i >= 0:
            return kind, (text[: i + 4] + "\u2028" + text[i + 4 :]).encode()
    if kind == "dup_key":
        i = text.find('{"')
        j = text.find('"', i + 2)
        if i >= 0 and j > i:
            key = text[i + 1 : j + 1]
            return kind, (text[: i + 1] + key + ': "dup", ' + text[i + 1 :]).encode()
    if kind == "deep":
        deep = _deep(rng.choice([500, 1200, 5000]))
        return kind, (text.replace("[", "[" + deep + ",", 1) if "[" in text else deep).encode()
    if kind == "null":
        return kind, b"null"
    if kind == "empty":
        return kind, rng.choice([b"", b"\n\n", b"\xef\xbb\xbf"])
    if kind == "concat":
        return kind, data + b"\n" + data
    new = _retype(rng, text)
    if new is None:
        return "flip", bytes(b[:-1]) if b else b"x"
    return "retype", new.encode("utf-8", errors="surrogatepass")


def mutants(
    rng: random.Random, seeds: list[Seed], per_format: int
) -> Iterator[tuple[Seed, str, bytes]]:
    """``per_format`` mutants of each format's seeds, round robin over its seeds."""
    by_format: dict[str, list[Seed]] = {}
    for s in seeds:
        by_format.setdefault(s.format, []).append(s)
    for fmt in sorted(by_format):
        group = by_format[fmt]
        for i in range(per_format):
            seed = group[i % len(group)]
            what, data = mutate(rng, seed.data, fmt == "parquet")
            yield seed, what, data


# --- the oracle ------------------------------------------------------------------------------

OUTCOMES = ["ok", "error", "bug", "other", "lost", "hang"]


def _counts(con: duckdb.DuckDBPyConnection) -> tuple[int, ...]:
    return tuple(
        con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
        for t in ("events", "rejects", "traces", "annotations", "ingests")
    )


def _holds_records(data: bytes) -> bool:
    """Whether a file has content that should give at least one event or reject."""
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
    if not text:
        return False
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return True
    if isinstance(doc, dict):
        return any(v not in ([], {}, None) for v in doc.values())
    return doc != []


def check(
    con: duckdb.DuckDBPyConnection, path: Path, data: bytes, format: str | None
) -> tuple[str, str]:
    """Ingest ``path`` (holding ``data``) into the emptied database and classify the outcome:
    ``(outcome, detail)``. (Emptied: records that an earlier mutant loaded would otherwise be
    skipped as already present, and their lines would look lost.)"""
    for table in ("events", "rejects", "traces", "annotations", "ingests"):
        con.execute(f"DELETE FROM {table}")
    before = _counts(con)
    try:
        result = ingest(con, path, format)
    except IngestError as e:
        if _counts(con) != before:
            return "lost", f"failed ingest left rows: {e}"
        if "failed unexpectedly" in str(e):
            return "bug", str(e)[:300]
        if not str(e).startswith(str(path)):
            return "other", f"IngestError not naming the file: {e}"
        return "error", e.problem.split(";")[0][:80]
    except Exception as e:
        return "other", f"{type(e).__name__}: {str(e)[:300]}"
    row = result.iloc[0]
    p = str(path)
    origins = con.execute(
        "SELECT origin FROM rejects WHERE file_hash = (SELECT max(file_hash) FROM ingests WHERE path = $p)"
        " UNION ALL SELECT origin FROM events WHERE origin LIKE $p || '%' ESCAPE '\\'",
        {"p": p},
    ).fetchall()
    bad = [o for (o,) in origins if o is None or not o.startswith(p)]
    if bad:
        return "lost", f"origin not naming the file: {bad[:3]}"
    if row["status"] == "empty" and _holds_records(data):
        return "lost", "status empty, yet the file holds records"
    if row["status"] == "skipped" or row["format"] not in LINE_FORMATS:
        return "ok", str(row["status"])
    # One record per line (CloudEvents JSONL, Jaeger span-per-line): every non-blank line is an
    # event's or a reject's origin.
    after = [o[len(p) :] for (o,) in origins]
    if after and all(re.fullmatch(r":\d+", o) for o in after):
        seen = {int(o[1:]) for o in after}
        text = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        lines = text.split(b"\n")
        missing = [n for n, line in enumerate(lines, 1) if line.strip(b" \t\r") and n not in seen]
        if missing:
            return "lost", f"lines with no event or reject: {missing[:5]}"
    return "ok", str(row["status"])


LINE_FORMATS = {"cloudevents", "jaeger"}


def run(
    seeds: list[Seed],
    per_format: int,
    tmp: Path,
    seed: int = 0,
    detect_every: int = 1,
    timeout: float | None = None,
) -> Iterator[tuple[str, str, str, str, str]]:
    """Yield ``(format, mutation, mode, outcome, detail)`` for each ingest of each mutant: the
    format forced, and detected for every ``detect_every``-th mutant. With ``timeout``, an
    ingest running longer is interrupted and counted as ``hang``."""
    rng = random.Random(seed)
    con = toolkit.connect()
    try:
        for n, (s, what, data) in enumerate(mutants(rng, seeds, per_format)):
            folder = tmp / f"m{n}"
            folder.mkdir()
            path = folder / (rng.choice(NAMES) if rng.random() < 0.2 else s.name)
            path.write_bytes(data)
            modes = [("forced", s.format)]
            if n % detect_every == 0:
                modes.append(("detected", None))
            for mode, fmt in modes:
                if timeout is None:
                    outcome, detail = check(con, path, data, fmt)
                else:
                    outcome, detail = _check_in_time(con, path, data, fmt, timeout)
                    if outcome == "hang":
                        con.close()
                        con = toolkit.connect()
                yield s.format, what, mode, outcome, detail
    finally:
        con.close()


def _check_in_time(
    con: duckdb.DuckDBPyConnection, path: Path, data: bytes, fmt: str | None, timeout: float
) -> tuple[str, str]:
    """:func:`check`, interrupted after ``timeout`` seconds (DuckDB by ``interrupt``, Python by
    an alarm signal)."""
    import signal
    import threading

    fired = threading.Event()

    def stop() -> None:
        fired.set()
        con.interrupt()

    def alarm(signum: int, frame: Any) -> None:
        raise TimeoutError

    timer = threading.Timer(timeout, stop)
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(timeout) + 5)
    timer.start()
    try:
        outcome, detail = check(con, path, data, fmt)
    except TimeoutError:
        outcome, detail = "hang", f"> {timeout:.0f} s"
    finally:
        timer.cancel()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if fired.is_set():
        return "hang", f"> {timeout:.0f} s ({outcome}: {detail[:80]})"
    return outcome, detail


def _worker(args: tuple[list[Seed], int, str, int, int, float | None]) -> list[tuple[str, ...]]:
    seeds, per_format, tmp, seed, detect_every, timeout = args
    return list(run(seeds, per_format, Path(tmp), seed, detect_every, timeout))


def run_parallel(
    seeds: list[Seed],
    per_format: int,
    tmp: Path,
    seed: int = 0,
    detect_every: int = 1,
    timeout: float | None = None,
    workers: int = 2,
) -> list[tuple[str, ...]]:
    """:func:`run` over the formats split between ``workers`` processes (by format, so each
    format's mutants are the same whatever the number of workers)."""
    import multiprocessing

    formats = sorted({s.format for s in seeds})
    jobs = []
    for i, fmt in enumerate(formats):
        folder = tmp / f"w{i}"
        folder.mkdir()
        group = [s for s in seeds if s.format == fmt]
        jobs.append((group, per_format, str(folder), seed + i, detect_every, timeout))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        return [r for rows in pool.map(_worker, jobs, chunksize=1) for r in rows]
