"""MAST / MAD (Cemri et al., "Why Do Multi-Agent LLM Systems Fail?"): labelled multi-agent traces.

Two published schemas, both a JSON list of records, told apart per record:

* **human-labelled** (``MAD_human_labelled_dataset.json``): ``round``, ``mas_name``,
  ``benchmark_name``, ``trace_id``, ``trace`` (the raw log as one string) and ``annotations[]``,
  each ``{"failure mode": "<code> <title>\\n\\n<definition>", annotator_1..3: true/false/NaN}``.
* **full** (HF ``mcemri/MAD`` ``MAD_full_dataset.json``): ``mas_name``, ``llm_name``,
  ``benchmark_name``, ``trace_id``, ``trace: {trajectory, key, index}``, ``mast_annotation:
  {"1.1": 0|1|null, ...}`` (the LLM annotator's labels, final codes).

Kept, and where:

=========================  ======================================================================
record                     ``traces`` row, ``trace_id`` = ``mad:<mas>:<trace_id>:<round>`` (human;
                           round slugged, e.g. ``round-1``) or ``mad:<mas>:<trace_id>:<sha>``
                           (full; first 10 hex of sha256 over benchmark, llm and trajectory); a
                           repeat within one file gets ``#<n>``
``mas_name``               ``traces.system`` (``Magentic`` -> ``Magentic-One``); as written in
                           ``attrs.mas_name``. Two human records carry the benchmark in
                           ``mas_name`` and the framework in ``benchmark_name`` (``GAIA`` /
                           ``Magentic``, ``GAIA`` / ``OpenManus``): detected by the known
                           framework names, swapped back, and flagged ``attrs.swapped_fields``
``benchmark_name``,        ``traces.attrs.benchmark``, ``llm``, ``round``, ``dataset``
``llm_name``, ``round``    (``MAD-human`` / ``MAD-full``), ``source_trace_id``
trace text                 events, one per message (:mod:`toolkit.ingest.mast_logs` says how each
                           framework's log is split); ``seq`` = ``event_id`` = message index
                           (0-based), ``parent_id`` = the previous message: a chat log's causation
                           is the conversation order. ``attrs.trajectory_sha256`` on the trace;
                           ``attrs.same_trajectory_as`` lists other records of the file with the
                           identical trajectory (two ChatDev records of the human file are byte
                           identical, rounds 1 and 2: both are kept, they are separate records)
task statement             ``traces.task`` when the log shows it, else NULL
AG2/HyperAgent JSON        ``instance_id``, ``other_data``, ``note`` (the annotators' free-text
                           notes and check-list) in ``traces.attrs``; MetaGPT's ``run_id``,
                           ``timestamp``, ``cost``, ``log_file`` likewise
each vote                  one ``annotations`` row: ``mode`` ``FM-x.y``, ``annotator``
                           ``human:<n>`` or ``mast-llm``, ``confidence`` 1.0 (yes) / 0.0 (no),
                           ``evidence`` ``{vote, round, source_code, source_name}``
=========================  ======================================================================

Old codes: rounds 1-3 of the human file number the modes differently; :mod:`toolkit.ingest.mast_codes` maps them
to the final 14 by definition text. Modes the final taxonomy dropped keep their votes under
``mode`` = ``mad-dropped:<name>`` (nothing is lost; FM-only analyses skip them). In the final
("Generlazability") round the titles follow the paper and are used as is (its 3.2/3.3 descriptions
are swapped; the titles are right).

Dropped: a vote that is null or NaN (no vote: no row, unlike a 0 vote). Rejected: a record that is
not an object with ``mas_name`` and ``trace`` (``path#N``, N 1-based), and a vote with a value
that is not a boolean or 0/1, or a code the mapping does not know (``path#N``); the rest loads.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import duckdb

from toolkit.ingest.base import Format, Rejects, reject, stage_rows
from toolkit.ingest.chatlog import chain, is_missing, raw
from toolkit.ingest.files import RECORD_FAILURES, check_record, load_json, reason_of
from toolkit.ingest.mast_codes import final_code
from toolkit.ingest.mast_logs import split_trajectory

SYSTEMS = {
    "ChatDev": "ChatDev",
    "MetaGPT": "MetaGPT",
    "AG2": "AG2",
    "AppWorld": "AppWorld",
    "HyperAgent": "HyperAgent",
    "Magentic": "Magentic-One",
    "Magentic-One": "Magentic-One",
    "OpenManus": "OpenManus",
}
_MODE = re.compile(r"^\s*(\d+\.\d+)\s+([^\n]*)")


def _vote(value: Any) -> int | None:
    if is_missing(value):
        return None
    if isinstance(value, bool) or value in (0, 1):
        return int(value)
    raise ValueError(f"vote is not a boolean or 0/1: {value!r}")


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage every record of a MAD file (human-labelled or full schema)."""
    doc = load_json(con, path)
    if doc is None:
        return
    if not isinstance(doc, list):
        reject(con, f"{path}#0", "not a list of MAD records", raw(doc)[:10000])
        return
    texts: dict[int, str | None] = {}
    problems: dict[int, str] = {}
    for n, r in enumerate(doc, start=1):
        if not isinstance(r, dict):
            continue
        try:
            check_record(r)
            texts[n] = _trajectory(r)
        except RECORD_FAILURES as e:
            problems[n] = reason_of(e)
    shas = {
        n: hashlib.sha256(t.encode("utf-8", "surrogatepass")).hexdigest()
        for n, t in texts.items()
        if t is not None
    }
    ids: dict[int, str] = {}
    seen: Counter[str] = Counter()
    traces, events, notes = [], [], []
    rejects = Rejects(con)
    for n, rec in enumerate(doc, start=1):
        origin = f"{path}#{n}"
        if n in problems:
            rejects.add(origin, problems[n], None)
            continue
        if n not in shas or not isinstance(rec.get("mas_name"), str) or not rec["mas_name"]:
            rejects.add(origin, "not a MAD record (an object with mas_name and trace)", rec)
            continue
        mas, bench, swapped = _fix_swap(rec.get("mas_name"), rec.get("benchmark_name"))
        system = SYSTEMS.get(mas, mas)
        suffix = _slug(rec["round"]) if "round" in rec else _content_key(rec, shas[n])
        trace_id = f"mad:{mas}:{rec.get('trace_id')}:{suffix}"
        text = texts[n]
        assert text is not None  # n is in shas, which holds only the records with a text
        try:
            messages, task, run_attrs = split_trajectory(system, text)
            message_rows = chain(trace_id, messages, f"{origin}/")
        except RECORD_FAILURES as e:
            rejects.add(origin, f"trajectory: {reason_of(e)}", rec)
            continue
        seen[trace_id] += 1
        if seen[trace_id] > 1:
            trace_id += f"#{seen[trace_id]}"
            message_rows = [r | {"trace_id": trace_id} for r in message_rows]
        ids[n] = trace_id
        events += message_rows
        attrs = {
            "dataset": "MAD-human" if "annotations" in rec else "MAD-full",
            "benchmark": bench,
            "llm": rec.get("llm_name"),
            "round": rec.get("round"),
            "mas_name": rec.get("mas_name"),
            "source_trace_id": rec.get("trace_id"),
            "trajectory_sha256": shas[n],
            **run_attrs,
        }
        if swapped:
            attrs["swapped_fields"] = {
                "mas_name": rec.get("mas_name"),
                "benchmark_name": rec.get("benchmark_name"),
            }
        if isinstance(rec.get("trace"), dict):
            attrs |= {k: v for k, v in rec["trace"].items() if k != "trajectory"}
        traces.append({"trace_id": trace_id, "system": system, "task": task, "attrs": attrs})
        try:
            notes += _annotations(con, rec, trace_id, origin)
        except RECORD_FAILURES as e:
            rejects.add(origin, f"annotations: {reason_of(e)}", rec.get("annotations"))
    rejects.flush()
    by_sha: dict[str, list[str]] = defaultdict(list)
    for n, trace_id in ids.items():
        by_sha[shas[n]].append(trace_id)
    for row in traces:
        twins = [t for t in by_sha[row["attrs"]["trajectory_sha256"]] if t != row["trace_id"]]
        if twins:
            row["attrs"]["same_trajectory_as"] = twins
    stage_rows(con, "traces", traces)
    stage_rows(con, "events", events)
    stage_rows(con, "annotations", notes)


def _trajectory(rec: dict) -> str | None:
    trace = rec.get("trace")
    if isinstance(trace, dict):
        trace = trace.get("trajectory")
    if isinstance(trace, list | dict):
        return raw(trace)
    return trace if isinstance(trace, str) else None


def _fix_swap(mas: Any, bench: Any) -> tuple[Any, Any, bool]:
    if mas not in SYSTEMS and isinstance(bench, str) and bench in SYSTEMS:
        return bench, mas, True
    return mas, bench, False


def _slug(value: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(value).lower()).strip("-")


def _content_key(rec: dict, sha: str) -> str:
    key = "\x1f".join([str(rec.get("benchmark_name")), str(rec.get("llm_name")), sha])
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:10]


def llm_labels(
    con: duckdb.DuckDBPyConnection, labels: Any, trace_id: str, origin: str
) -> list[dict]:
    """The ``annotations`` rows of a ``mast_annotation`` object (``{"1.1": 0|1|null, ...}``,
    final codes, annotator ``mast-llm``), as the full MAD file and AdaMAST records carry it."""
    if not isinstance(labels, dict):
        raise ValueError(f"not an object of failure-mode codes but {type(labels).__name__}")
    return _annotations(con, {"mast_annotation": labels}, trace_id, origin)


def _annotations(
    con: duckdb.DuckDBPyConnection, rec: dict, trace_id: str, origin: str
) -> list[dict]:
    """One row per vote given: the human file's three annotators, or the full file's LLM labels."""
    rows: list[dict[str, Any]] = []
    round_name = rec.get("round")
    items: list[tuple[str, str | None, dict[str, Any]]]
    if isinstance(rec.get("mast_annotation"), dict):
        items = [(code, None, {"mast-llm": v}) for code, v in rec["mast_annotation"].items()]
    else:
        items = []
        entries = rec.get("annotations")
        for entry in entries if isinstance(entries, list) else []:
            m = _MODE.match(str(entry.get("failure mode", ""))) if isinstance(entry, dict) else None
            if m is None:
                reject(
                    con, origin, "annotation without a '<code> <title>' failure mode", raw(entry)
                )
                continue
            votes = {
                f"human:{k.rsplit('_', 1)[1]}": v
                for k, v in entry.items()
                if k.startswith("annotator_")
            }
            items.append((m[1], m[2].strip(), votes))
    for code, name, votes in items:
        try:
            final = final_code(round_name, str(code))
        except KeyError:
            reject(
                con,
                origin,
                f"unknown failure-mode code {code!r} in round {round_name!r}",
                raw({"code": code, "votes": votes}),
            )
            continue
        mode = f"FM-{final}" if final else f"mad-dropped:{_slug(name).replace('-', '_')}"
        for annotator, value in votes.items():
            try:
                vote = _vote(value)
            except ValueError as e:
                reject(con, origin, f"{annotator} on {code}: {e}", raw(value))
                continue
            if vote is None:
                continue
            evidence = {"vote": vote, "round": round_name, "source_code": code}
            if name is not None:
                evidence["source_name"] = name
            rows.append(
                {
                    "trace_id": trace_id,
                    "mode": mode,
                    "annotator": annotator,
                    "confidence": float(vote),
                    "evidence": evidence,
                    "origin": origin,
                }
            )
    return rows


_MAS = re.compile(rb'"mas_name"\s*:')
_OTHER = re.compile(rb'"(benchmark_name|trace_id|mast_annotation|annotations)"\s*:')


def sniff(head: bytes) -> bool:
    """MAD: a JSON list of records with ``mas_name`` and ``benchmark_name``/``trace_id``."""
    return head[:1] == b"[" and bool(_MAS.search(head)) and bool(_OTHER.search(head))


FORMAT = Format(name="mast", sniff=sniff, read=read)
