"""Reading a file's records for a reader: lines of a JSONL file, items of a JSON document.

Both fill the temp table ``raw_records(ord, raw)`` that a SQL reader (CloudEvents, OTLP...)
parses; Python readers load the whole document with :func:`load_json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from toolkit.ingest.base import reject


def load_json(con: duckdb.DuckDBPyConnection, path: Path) -> Any | None:
    """Parse the whole file as JSON; on failure reject ``path#0`` and return ``None``.

    Bare ``NaN``/``Infinity`` are accepted (the MAD human file has two ``NaN`` votes).
    """
    text = path.read_bytes().decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        reject(con, f"{path}#0", f"file is not valid JSON: {e}", text[:10000])
        return None


def file_head(path: Path, size: int = 65536) -> bytes:
    """The first ``size`` bytes of a file, without a BOM or leading white space.

    Reads only those bytes: readers call it to choose between JSONL and one document, and a
    multi-GB file must not be read whole for that.
    """
    with path.open("rb") as fh:
        return fh.read(size).lstrip(b"\xef\xbb\xbf \t\r\n")


def looks_like_jsonl(head: bytes) -> bool:
    """Whether a file's first bytes look like one JSON object per line (not one document)."""
    first, sep, rest = head.lstrip(b"\xef\xbb\xbf \t\r\n").partition(b"\n")
    if not sep or not rest.strip():
        return False
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


# Files up to this size are split into lines inside DuckDB (fastest: one string, split in
# parallel); larger ones in blocks from Python, so memory stays bounded.
READ_TEXT_LIMIT = 512 << 20
_BLOCK = 64 << 20


def stage_file_lines(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Read a line-delimited file into ``raw_records(ord, raw)``, ``ord`` the 1-based line number.

    Blank lines stay (readers skip them); a trailing CR stays (JSON treats it as white space).
    Lines that are not valid UTF-8 are rejected with their line number; the rest load.
    """
    if path.stat().st_size <= READ_TEXT_LIMIT:
        try:
            con.execute(
                """
                CREATE OR REPLACE TEMP TABLE raw_records AS
                SELECT unnest(s) AS raw, generate_subscripts(s, 1) AS ord
                FROM (SELECT string_split(content, chr(10)) AS s FROM read_text($path))
                """,
                {"path": str(path)},
            )
            return
        except (duckdb.InvalidInputException, duckdb.ConversionException):
            pass  # not valid UTF-8 somewhere: split in blocks, rejecting the bad lines
    _stage_lines_in_blocks(con, path)


def _stage_lines_in_blocks(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE raw_records (raw VARCHAR, ord BIGINT)")
    first = 1  # line number of the first line of the current block
    rest = b""
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            block = rest + block
            cut = block.rfind(b"\n")
            if cut < 0:
                rest = block
                continue
            rest = block[cut + 1 :]
            lines = block[:cut].split(b"\n")
            _stage_line_block(con, path, lines, first)
            first += len(lines)
    if rest:
        _stage_line_block(con, path, [rest], first)


def _stage_line_block(
    con: duckdb.DuckDBPyConnection, path: Path, lines: list[bytes], first: int
) -> None:
    ords = pa.array(range(first, first + len(lines)), pa.int64())
    try:
        raws = pa.array(lines, pa.binary()).cast(pa.string())  # validates UTF-8 in C
    except pa.ArrowInvalid:
        texts: list[str | None] = []
        for n, line in enumerate(lines, start=first):
            try:
                texts.append(line.decode("utf-8"))
            except UnicodeDecodeError as e:
                reason = f"not valid UTF-8 ({e.reason} at byte {e.start})"
                reject(con, f"{path}:{n}", reason, line.decode("utf-8", errors="replace"))
                texts.append("")
        raws = pa.array(texts, pa.string())
    con.register("_raw_lines", pa.table({"raw": raws, "ord": ords}))
    try:
        con.execute("INSERT INTO raw_records SELECT raw, ord FROM _raw_lines")
    finally:
        con.unregister("_raw_lines")


def stage_json_items(con: duckdb.DuckDBPyConnection, path: Path, json_path: str = "$[*]") -> bool:
    """Read the items of one JSON document into ``raw_records(ord, raw)``.

    ``ord`` is the 1-based position of the item (origins read ``path#ord``). When the file is not
    valid JSON the whole file is rejected and ``False`` is returned.
    """
    text = path.read_bytes().decode("utf-8", errors="replace")
    try:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE raw_records AS
            SELECT n AS ord, raw::VARCHAR AS raw FROM (
                SELECT unnest(items) AS raw, generate_subscripts(items, 1) AS n
                FROM (SELECT json_extract($text::JSON, $json_path) AS items)
            )
            """,
            {"text": text, "json_path": json_path},
        )
    except (duckdb.InvalidInputException, duckdb.ConversionException) as e:
        reject(
            con,
            f"{path}#0",
            f"file is not valid JSON: {str(e).splitlines()[0][:200]}",
            text[:10000],
        )
        return False
    return True
