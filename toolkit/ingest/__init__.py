"""Load trace files into the canonical DuckDB schema: one module per format, one entry point.

``ingest(con, paths)`` expands files, folders and globs, detects each file's format from its
first bytes (unless ``format=`` is given), and loads each file in one transaction: a file is
loaded whole or not at all. A file already ingested (same bytes, by SHA-256) is skipped; records
already present (same identity, see :mod:`toolkit.ingest.base`) are not added again.
"""

from __future__ import annotations

import glob
import hashlib
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pandas as pd
from tqdm import tqdm

from toolkit.ingest import (
    agentrx,
    atif,
    cloudevents,
    jaeger,
    langfuse,
    mast,
    openinference,
    otel_sdk,
    otlp,
    parquet,
    tau_bench,
    who_and_when,
    zipkin,
)
from toolkit.ingest.base import Format, create_stage, drop_stage, merge_stage
from toolkit.ingest.parquet import export_parquet

# Detection order: the first format whose sniff accepts the head of the file wins, so more
# specific formats come before more general ones.
FORMATS: list[Format] = [
    parquet.FORMAT,
    mast.FORMAT,
    who_and_when.FORMAT,
    agentrx.FORMAT,
    tau_bench.FORMAT,
    atif.FORMAT,
    langfuse.FORMAT,
    otlp.FORMAT,
    openinference.FORMAT,
    otel_sdk.FORMAT,
    jaeger.FORMAT,
    zipkin.FORMAT,
    cloudevents.FORMAT,
]

_HEAD_BYTES = 65536
RESULT_COLUMNS = ["path", "format", "status", "rows", "rejected", "seconds"]

__all__ = ["FORMATS", "detect_format", "export_parquet", "ingest"]


def _formats_by_name() -> dict[str, Format]:
    return {f.name: f for f in FORMATS}


def detect_format(path: str | Path) -> str | None:
    """Name the format of ``path`` from its first 64 KiB, or ``None`` when no format matches."""
    with Path(path).open("rb") as fh:
        head = fh.read(_HEAD_BYTES)
    for fmt in FORMATS:
        if fmt.sniff(head):
            return fmt.name
    return None


def _expand(paths: str | Path | Iterable[str | Path]) -> list[tuple[Path, bool]]:
    """Files to load, each with whether the user named it explicitly."""
    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[tuple[Path, bool]] = []
    for p in paths:
        p = Path(p)
        if p.is_file():
            files.append((p, True))
        elif p.is_dir():
            files += [(f, False) for f in sorted(p.rglob("*")) if f.is_file() and not _hidden(f, p)]
        else:
            matches = sorted(Path(m) for m in glob.glob(str(p), recursive=True))
            if not matches:
                raise FileNotFoundError(f"no such file, folder or glob match: {p}")
            files += [(m, False) for m in matches if m.is_file()]
    return files


def _hidden(f: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in f.relative_to(root).parts)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ingest_file(
    con: duckdb.DuckDBPyConnection, path: str | Path, format: str | None = None
) -> dict:
    """Load one file atomically; return its row of :func:`ingest`'s result.

    Raises:
        ValueError: the format is not given and cannot be detected, or is not a known name.
    """
    path = Path(path)
    known = _formats_by_name()
    name = format or detect_format(path)
    if name is None:
        raise ValueError(f"cannot detect the format of {path}; known formats: {', '.join(known)}")
    if name not in known:
        raise ValueError(f"unknown format {name!r}; known formats: {', '.join(known)}")
    started = time.perf_counter()
    file_hash = _sha256(path)
    row = {"path": str(path), "format": name, "status": "skipped", "rows": 0, "rejected": 0}
    if con.execute("SELECT 1 FROM ingests WHERE file_hash = $h", {"h": file_hash}).fetchall():
        return row | {"seconds": time.perf_counter() - started}
    # The reader only fills temporary stage tables; the canonical tables change in one
    # transaction below, so a failure anywhere leaves no half-loaded file behind.
    create_stage(con)
    try:
        known[name].read(con, path)
    except BaseException:
        drop_stage(con)
        raise
    con.execute("BEGIN TRANSACTION")
    try:
        added, rejected = merge_stage(con, file_hash)
        seconds = time.perf_counter() - started
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
    return row | {"status": "loaded", "rows": added, "rejected": rejected, "seconds": seconds}


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
        format: the format name for every file; ``None`` detects each file's format. A file named
            explicitly whose format cannot be detected raises ``ValueError``; such a file found
            inside a folder or glob is listed with status ``unknown`` and left alone.
        progress: show a progress bar; ``None`` shows one for several files on a terminal.

    Returns:
        One row per file with columns ``path``, ``format``, ``status`` (``loaded``, ``skipped``
        when the same bytes were ingested before, ``unknown``), ``rows`` (events added),
        ``rejected`` (records sent to ``rejects``) and ``seconds``.
    """
    files = _expand(paths)
    if progress is None:
        progress = len(files) > 1 and sys.stderr.isatty()
    rows = []
    for path, explicit in tqdm(files, desc="ingest", unit="file", disable=not progress):
        if format is None and not explicit and detect_format(path) is None:
            rows.append(
                {
                    "path": str(path),
                    "format": None,
                    "status": "unknown",
                    "rows": 0,
                    "rejected": 0,
                    "seconds": 0.0,
                }
            )
            continue
        rows.append(ingest_file(con, path, format))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)
