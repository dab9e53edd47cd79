"""Load trace files into the canonical DuckDB schema: one module per format, one entry point.

``ingest(con, paths)`` expands files, folders and globs, detects each file's format from its
first bytes (unless ``format=`` is given), and loads each file in one transaction: a file is
loaded whole or not at all. A file already ingested (same bytes, by SHA-256) is skipped; records
already present (same identity, see :mod:`toolkit.ingest.base`) are not added again.

**The rule every reader follows** (trace files come from other systems and carry LLM output:
they are treated as hostile):

* a record that cannot be converted is a *reject*: a row of ``rejects`` with its origin (file
  and line, or file and item: ``path:12``, ``path#3``; ``path#0`` is the file as a whole), the
  reason and the raw text; the rest of the file loads;
* a file that cannot be read at all (missing, a dangling link, not a regular file, unreadable,
  a Parquet file that is not one) is an :class:`IngestError`, a ``ValueError`` naming the file
  and the problem; inside a folder or glob it is the file's row with status ``error`` and the
  message, and the other files still load;
* nothing else escapes ``toolkit.ingest`` (an unexpected failure inside a reader is reported as
  an ``IngestError`` that says so);
* conservation: every record read is an event or a reject, never dropped in silence;
* file contents never reach SQL as text: values are bound, identifiers from data are renamed
  or quoted, files are handed to DuckDB as Arrow tables (no glob expansion of file names);
  JSON is split into lines on ``\\n`` only, a BOM and leading blank lines are ignored,
  repeated keys keep their first value, nesting beyond
  :data:`toolkit.ingest.files.MAX_DEPTH` levels is a reject.
"""

from __future__ import annotations

import glob
import hashlib
import os
import stat
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pandas as pd
from tqdm import tqdm

from toolkit.analyze import derived
from toolkit.db import write_gate
from toolkit.ingest import (
    adamast,
    agentrx,
    atif,
    cloudevents,
    jaeger,
    langfuse,
    mast,
    openai_agents,
    openinference,
    otel_sdk,
    otlp,
    parquet,
    tau_bench,
    who_and_when,
    zipkin,
)
from toolkit.ingest.base import (
    Format,
    IngestError,
    NoSuchPathError,
    create_stage,
    drop_stage,
    merge_stage,
)
from toolkit.ingest.files import BLOCK_BYTES, bytes_read, file_head
from toolkit.ingest.parquet import export_parquet

# Detection order: the first format whose sniff accepts the head of the file wins, so more
# specific formats come before more general ones.
FORMATS: list[Format] = [
    parquet.FORMAT,
    adamast.FORMAT,  # before mast: an AdaMAST list of MAST records names mas_name too
    mast.FORMAT,
    who_and_when.FORMAT,
    agentrx.FORMAT,
    tau_bench.FORMAT,
    atif.FORMAT,
    langfuse.FORMAT,
    openai_agents.FORMAT,
    otlp.FORMAT,
    openinference.FORMAT,
    otel_sdk.FORMAT,
    jaeger.FORMAT,
    zipkin.FORMAT,
    cloudevents.FORMAT,
]

_HEAD_BYTES = 65536
RESULT_COLUMNS = ["path", "format", "status", "rows", "rejected", "seconds", "error"]

__all__ = ["FORMATS", "IngestError", "detect_format", "export_parquet", "ingest"]


def _formats_by_name() -> dict[str, Format]:
    return {f.name: f for f in FORMATS}


def detect_format(path: str | Path) -> str | None:
    """Name the format of ``path`` from its first 64 KiB, or ``None`` when no format matches.

    Raises:
        IngestError: the file cannot be read (missing, not a regular file, no permission).
    """
    path = Path(path)
    _check_file(path)
    # without a BOM or leading white space: a sniffer looks at its first byte
    head = file_head(path, _HEAD_BYTES)
    for fmt in FORMATS:
        if fmt.sniff(head):
            return fmt.name
    return None


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


def _check_file(path: Path) -> None:
    """Raise :class:`IngestError` unless ``path`` is a readable regular file (never opens a FIFO
    or device, which could block or never end)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise IngestError(path, "dangling symbolic link (its target does not exist)") from None
        raise NoSuchPathError(path, "no such file") from None
    except OSError as e:
        raise IngestError(path, f"cannot read the file: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise IngestError(path, f"not a regular file but {kind}")
    if not os.access(path, os.R_OK):
        raise IngestError(path, "cannot read the file: permission denied")


def _expand(paths: str | Path | Iterable[str | Path]) -> list[tuple[Path, bool]]:
    """Files to load, each with whether the user named it explicitly.

    Entries found inside folders that cannot be loaded (sub-folders that cannot be listed,
    FIFOs, dangling links, unreadable files) are listed too, so that their row says why.

    Raises:
        NoSuchPathError: a path names nothing (no file, folder or glob match).
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[tuple[Path, bool]] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += [(f, False) for f in _walk(p)]
        elif p.exists() or p.is_symlink():
            files.append((p, True))  # a name with [, * or ? that exists is that file
        else:
            matches = sorted(Path(m) for m in glob.glob(str(p), recursive=True))
            if not matches:
                raise NoSuchPathError(p, "no such file, folder or glob match")
            for m in matches:
                files += [(f, False) for f in _walk(m)] if m.is_dir() else [(m, False)]
    return files


def _walk(root: Path) -> list[Path]:
    """Every non-hidden entry under ``root`` that is not a folder, in sorted order, plus the
    sub-folders that could not be listed."""
    found: list[Path] = []

    def unreadable(e: OSError) -> None:
        found.append(Path(e.filename))

    for folder, dirs, names in os.walk(root, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / n for n in names if not n.startswith(".")]
    return sorted(found)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    format: str | None = None,
    *,
    derive: bool = True,
) -> dict:
    """Load one file atomically; return its row of :func:`ingest`'s result.

    ``derive=False`` leaves the analyses' derived tables to the caller (:func:`ingest` brings
    them up to date once for several files).

    Raises:
        IngestError: the file cannot be read, the format is not given and cannot be detected,
            or is not a known name.
    """
    path = Path(path)
    known = _formats_by_name()
    if format is not None and format not in known:
        raise ValueError(f"unknown format {format!r}; known formats: {', '.join(known)}")
    name = format or detect_format(path)
    if name is None:
        raise IngestError(path, f"cannot detect the format; known formats: {', '.join(known)}")
    started = time.perf_counter()
    _check_file(path)
    file_hash = _sha256(path)
    row = {"path": str(path), "format": name, "status": "skipped", "rows": 0, "rejected": 0}
    if con.execute("SELECT 1 FROM ingests WHERE file_hash = $h", {"h": file_hash}).fetchall():
        return row | {"seconds": time.perf_counter() - started}
    # The reader only fills temporary stage tables; the canonical tables change in one
    # transaction below, so a failure anywhere leaves no half-loaded file behind.
    create_stage(con)
    try:
        known[name].read(con, path)
        staged = con.execute(
            "SELECT (SELECT count(*) FROM stage_events) + (SELECT count(*) FROM stage_traces)"
            " + (SELECT count(*) FROM stage_annotations)"
        ).fetchall()[0][0]
    except IngestError:
        drop_stage(con)
        raise
    except (KeyboardInterrupt, MemoryError, SystemExit):
        drop_stage(con)
        raise
    except Exception as e:
        drop_stage(con)
        raise IngestError(
            path, f"the {name} reader failed unexpectedly ({type(e).__name__}: {e}); this is a bug"
        ) from e
    except BaseException:
        drop_stage(con)
        raise
    # a live receiver on con holds its next batch until this file is in (see WriteGate)
    try:
        with write_gate(con).exclusive():
            con.execute("BEGIN TRANSACTION")
            try:
                added, rejected = merge_stage(con, file_hash, derive=derive)
                seconds = time.perf_counter() - started
                if staged or rejected:
                    con.execute(
                        "INSERT INTO ingests VALUES ($h, $path, $fmt, $rows, $rej, now(), $s)",
                        {
                            "h": file_hash,
                            "path": str(path),
                            "fmt": name,
                            "rows": added,
                            "rej": rejected,
                            "s": seconds,
                        },
                    )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
    finally:
        drop_stage(con)
    # Never "loaded" when nothing was: a file of rejects only, or of no records at all, says so.
    status = "loaded" if staged else ("rejected" if rejected else "empty")
    return row | {"status": status, "rows": added, "rejected": rejected, "seconds": seconds}


def _end_of_events(con: duckdb.DuckDBPyConnection) -> int:
    """The ``rowid`` the next event appended to ``events`` gets (or a later one)."""
    return int(con.execute("SELECT coalesce(max(rowid) + 1, 0) FROM events").fetchall()[0][0])


def _refresh_derived(con: duckdb.DuckDBPyConnection, first_rowid: int, added: int) -> None:
    """Bring the derived tables up to date, in one transaction, for the ``added`` events
    appended from ``first_rowid`` on (and whatever else :func:`derived.refresh` finds changed).

    A checkpoint between two files can compact rows deleted earlier (a live receiver replaces
    rows) and move the later ones down: then the range no longer holds exactly the new events,
    and the traces whose record counts changed are found by count instead (slower, as right).
    """
    with write_gate(con).exclusive():
        con.execute("BEGIN TRANSACTION")
        try:
            in_range = con.execute(
                "SELECT count(*) FROM events WHERE rowid >= $first", {"first": first_rowid}
            ).fetchall()[0][0]
            if in_range == added:
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE _toolkit_ingested AS "
                    "SELECT DISTINCT trace_id FROM events WHERE rowid >= $first",
                    {"first": first_rowid},
                )
                derived.refresh(
                    con, "SELECT trace_id FROM _toolkit_ingested", first_rowid=first_rowid
                )
                con.execute("DROP TABLE _toolkit_ingested")
            else:
                derived.refresh(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def ingest(
    con: duckdb.DuckDBPyConnection,
    paths: str | Path | Iterable[str | Path],
    format: str | None = None,
    *,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Load trace files, folders or globs into the database, idempotently.

    Args:
        con: a connection from :func:`toolkit.connect`.
        paths: a file, folder (searched recursively, hidden entries skipped) or glob, or a list.
            A path that exists is taken literally, even when its name holds ``[``, ``*``, ``?``.
        format: the format name for every file; ``None`` detects each file's format. A file found
            inside a folder or glob whose format cannot be detected is listed with status
            ``unknown`` and left alone.
        progress: show a progress bar in bytes (a large JSON Lines file advances it block by
            block); ``None`` shows one on a terminal for several files or one over 32 MB.

    Returns:
        One row per file with columns ``path``, ``format``, ``status``, ``rows`` (events added),
        ``rejected`` (records sent to ``rejects``), ``seconds`` and ``error`` (why a file could
        not be read, else ``None``). ``status`` is ``loaded`` (records were converted),
        ``rejected`` (every record was rejected), ``empty`` (the file holds no records),
        ``skipped`` (the same bytes were ingested before), ``unknown`` (found in a folder or
        glob, not a trace format) or ``error`` (found in a folder or glob, could not be read).

    Raises:
        IngestError: a file named explicitly cannot be read or its format detected (raised
            after every other file was processed; its ``results`` attribute holds the table);
            ``format`` is not a known name.
        NoSuchPathError: a path names nothing (also a ``FileNotFoundError``).
    """
    known = _formats_by_name()
    if format is not None and format not in known:
        raise ValueError(f"unknown format {format!r}; known formats: {', '.join(known)}")
    files = _expand(paths)
    if progress is None:
        large = len(files) > 1 or any(_size(p) > BLOCK_BYTES for p, _ in files)
        progress = large and sys.stderr.isatty()
    rows = []
    failed: IngestError | None = None
    # Several files: the derived tables are brought up to date once, for all of them (for a
    # folder of small runs that upkeep was half the time), from the first row they appended.
    defer = len(files) > 1
    first_rowid = _end_of_events(con) if defer else 0
    bar = tqdm(total=sum(_size(p) for p, _ in files), desc="ingest", unit="B", unit_scale=True,
               disable=not progress)  # fmt: skip
    with bar:
        for path, explicit in files:
            row = {"path": str(path), "format": format, "rows": 0, "rejected": 0, "seconds": 0.0}
            done = bar.n
            token = bytes_read.set(bar.update)  # a large JSONL file reports each block it reads
            try:
                if format is None and not explicit and detect_format(path) is None:
                    rows.append(row | {"status": "unknown"})
                    continue
                rows.append(ingest_file(con, path, format, derive=not defer) | {"error": None})
            except IngestError as e:
                rows.append(row | {"status": "error", "error": e.problem})
                if explicit and failed is None:
                    failed = e
            finally:
                bytes_read.reset(token)
                bar.update(done + _size(path) - bar.n)
    if defer and any(row["status"] == "loaded" for row in rows):
        _refresh_derived(con, first_rowid, sum(int(row["rows"] or 0) for row in rows))
    result = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    if failed is not None:
        failed.results = result  # type: ignore[attr-defined]
        raise failed
    return result
