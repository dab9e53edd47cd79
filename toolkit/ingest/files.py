"""Reading a file's records for a reader: lines of a JSONL file, items of a JSON document, a
stream of concatenated JSON documents.

Both SQL paths fill the temp table ``raw_records(ord, raw)`` that a SQL reader (CloudEvents,
OTLP...) parses; Python readers load the whole document with :func:`load_json`.

Hostile input (see :mod:`toolkit.ingest`): files are read by Python and handed to DuckDB as an
Arrow table, never by path, so DuckDB's readers never expand ``[``, ``*`` or ``?`` in a file
name; a UTF-8 BOM and leading blank lines are ignored; lines are split on ``\\n`` only (a
U+2028 inside a JSON string stays in its record); duplicate keys resolve to the first value, as
in DuckDB's JSON functions; a record nested deeper than :data:`MAX_DEPTH` levels is rejected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from toolkit.ingest.base import IngestError, RecordError, Rejects, reject, stage_rows

BOM = b"\xef\xbb\xbf"
# Nesting a Python reader accepts in one record: deeper JSON is a reject, never a RecursionError
# (Python's parser and serialiser recurse once per level and stop near 1,000).
MAX_DEPTH = 256
_WHITE = b" \t\r\n"


def read_bytes(path: Path) -> bytes:
    """The file's bytes without a leading BOM; an I/O failure is an :class:`IngestError`."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise IngestError(path, f"cannot read the file: {e.strerror or e}") from None
    return data[3:] if data.startswith(BOM) else data


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose repeated keys keep their first value (DuckDB's rule)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        obj = {}
        for k, v in pairs:
            obj.setdefault(k, v)
    return obj


def parse_json(text: str | bytes) -> Any:
    """``json.loads`` with the ingest rules: first value of a repeated key, bare ``NaN`` and
    ``Infinity`` accepted; raises ``ValueError`` (never ``RecursionError``) on bad input."""
    try:
        return json.loads(text, object_pairs_hook=_first_wins)
    except RecursionError:
        raise ValueError("nested too deeply to parse") from None


def load_json(con: duckdb.DuckDBPyConnection, path: Path) -> Any | None:
    """Parse the whole file as JSON; on failure (or a ``null`` document) reject ``path#0`` and
    return ``None``; an empty (or blank) file is ``None`` with no reject.

    Bare ``NaN``/``Infinity`` are accepted (the MAD human file has two ``NaN`` votes).
    """
    text = read_bytes(path).decode("utf-8", errors="replace")
    if not text.strip(" \t\r\n"):  # an empty file holds no records: nothing to reject
        return None
    try:
        doc = parse_json(text)
    except ValueError as e:
        reject(con, f"{path}#0", f"file is not valid JSON: {e}", text[:10000])
        return None
    if doc is None:  # a document that is `null` holds no record of any format: a reject
        reject(con, f"{path}#0", "the document is null", text[:10000])
    return doc


def json_lines(path: Path, text: str, rejects: Rejects) -> list[tuple[str, Any]]:
    """``(origin, record)`` for each non-blank line of ``text`` (``path:N``, N 1-based); a line
    that is not JSON goes to ``rejects``. Lines are split on ``\n`` only: U+2028 may sit inside
    a JSON string."""
    records: list[tuple[str, Any]] = []
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip(" \t\r"):  # JSON white space only
            continue
        try:
            records.append((f"{path}:{n}", parse_json(line)))
        except ValueError as e:
            rejects.add(f"{path}:{n}", f"not valid JSON: {e}", line)
    return records


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed JSON value nests more than ``limit`` levels (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        children = v.values() if isinstance(v, dict) else v
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def check_record(value: Any) -> None:
    """The checks every Python reader makes on a record before converting it."""
    if isinstance(value, dict | list) and too_deep(value):
        raise RecordError(f"nested deeper than {MAX_DEPTH} levels")


def as_list(value: Any, name: str) -> list[Any]:
    """``value`` when it is a JSON array, ``[]`` when absent or null; otherwise a
    :class:`RecordError` (a string is never iterated as if it were a list)."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise RecordError(f"{name} must be a list, not {json_kind(value)}")


def as_object(value: Any, name: str) -> dict[str, Any]:
    """``value`` when it is a JSON object, ``{}`` when absent or null; else a :class:`RecordError`."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise RecordError(f"{name} must be an object, not {json_kind(value)}")


def as_key(value: Any, name: str) -> str | None:
    """An id or key: a string as it is, an integer as its digits, absent/null/empty as ``None``;
    anything else (list, object, boolean, float) is a :class:`RecordError`."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise RecordError(f"{name} must be a string, not {json_kind(value)}")


def json_kind(value: Any) -> str:
    """The JSON type name of a parsed value (for reject reasons)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def file_head(path: Path, size: int = 65536) -> bytes:
    """The first ``size`` bytes of a file, without a BOM or leading white space.

    Reads only those bytes: readers call it to choose between JSONL and one document, and a
    multi-GB file must not be read whole for that.
    """
    try:
        with path.open("rb") as fh:
            return fh.read(size).lstrip(BOM).lstrip(_WHITE)
    except OSError as e:
        raise IngestError(path, f"cannot read the file: {e.strerror or e}") from None


def looks_like_jsonl(head: bytes) -> bool:
    """Whether a file's first bytes look like one JSON object per line (not one document)."""
    first, sep, rest = head.lstrip(BOM).lstrip(_WHITE).partition(b"\n")
    if not sep or not rest.strip():
        return False
    try:
        return isinstance(json.loads(first), dict)
    except (ValueError, RecursionError):
        return False


# JSON Lines are read in blocks of about this many bytes, each split and handed to DuckDB
# before the next is read: the memory a large file needs is a few blocks, not the file
# (a 2 GB file under a 1 GB DuckDB limit: peak RSS 1.36 GB with 32 MB, 1.49 GB with 64 MB,
# at the same CPU time).
BLOCK_BYTES = 32 << 20
_BATCH_ROWS = 16384
# DuckDB's row group size. Stage tables are filled a block at a time; a block that ends
# part-way through a row group makes the next append rework that row group (measured: 31
# appends of 32k rows cost 4.1 CPU s, 8 of 122,880 rows 0.43 s), so blocks hold whole row
# groups (the last one excepted).
ROW_GROUP_ROWS = 122880
# Told how many bytes each block read holds (``toolkit.ingest``'s progress bar).
bytes_read: ContextVar[Callable[[int], None] | None] = ContextVar("bytes_read", default=None)


def line_blocks(
    con: duckdb.DuckDBPyConnection, path: Path, block_bytes: int | None = None
) -> Iterator[pa.Table]:
    """The lines of a line-delimited file as Arrow tables ``(raw, ord)``, a block at a time.

    ``ord`` is the 1-based line number. Lines are split on ``\n`` only; blank lines stay
    (readers skip them); a trailing CR stays (JSON treats it as white space); a BOM at the start
    of the file is dropped. A line that is not valid UTF-8 is staged in ``stage_rejects`` with
    its line number and passed on as an empty line; the rest load. Splitting and UTF-8
    validation run in Arrow's C++ kernels.
    """
    size = block_bytes or BLOCK_BYTES
    first = 1  # line number of the first line of the next block split
    buf = bytearray(size)  # one buffer for every read: a block's bytes are never copied
    kept = 0  # bytes at the start of ``buf``: the line the previous read cut
    held: pa.Table | None = None  # lines beyond the last whole row group, for the next block
    report = bytes_read.get()
    try:
        with path.open("rb") as fh:
            head = fh.read(len(BOM))
            if report:
                report(len(head))
            if head != BOM:
                buf[: len(head)] = head
                kept = len(head)
            while True:
                if kept == len(buf):  # a line longer than the buffer: grow it
                    buf.extend(bytes(len(buf)))
                with memoryview(buf) as view:
                    n = fh.readinto(view[kept:])
                    if not n:
                        break
                    if report:
                        report(n)
                    end = kept + n
                    cut = buf.rfind(b"\n", 0, end)
                    if cut < 0:
                        kept = end
                        continue
                    table = _split_lines(con, path, view[:cut], first)
                    rest = bytes(view[cut + 1 : end])  # the start of a line the read cut
                buf[: len(rest)] = rest
                kept = len(rest)
                first += len(table)
                if held is not None:
                    table = pa.concat_tables([held, table])
                whole = len(table) // ROW_GROUP_ROWS * ROW_GROUP_ROWS
                held = table.slice(whole)
                if whole:
                    yield table.slice(0, whole)
    except OSError as e:
        raise IngestError(path, f"cannot read the file: {e.strerror or e}") from None
    if kept or first == 1:
        with memoryview(buf) as view:
            last = _split_lines(con, path, view[:kept], first)
        held = last if held is None else pa.concat_tables([held, last])
    if held is not None and len(held):
        yield held


def _split_lines(
    con: duckdb.DuckDBPyConnection, path: Path, block: memoryview, first: int
) -> pa.Table:
    """The lines of ``block`` (without its last newline) from line number ``first``; the
    Arrow array is built over the block's bytes, the split makes the one copy."""
    offsets = pa.py_buffer(np.array([0, len(block)], dtype=np.int64))
    data = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(block)])
    try:
        raws = pc.split_pattern(data.cast(pa.large_string()), "\n").flatten()  # validates UTF-8
    except pa.ArrowInvalid:
        raws = _decode_lines(con, path, bytes(block).split(b"\n"), first)
    ords = pa.array(np.arange(first, first + len(raws), dtype=np.int64))
    table = pa.table({"raw": raws, "ord": ords})
    # DuckDB scans an Arrow table one batch per thread: slices (zero-copy) let every core work
    return pa.Table.from_batches(table.to_batches(max_chunksize=_BATCH_ROWS))


def _decode_lines(
    con: duckdb.DuckDBPyConnection, path: Path, lines: list[bytes], first: int
) -> pa.Array:
    """The lines as text; the ones that are not UTF-8 are rejected (and passed on empty)."""
    texts: list[str] = []
    bad = []
    for n, line in enumerate(lines, start=first):
        try:
            texts.append(line.decode("utf-8"))
        except UnicodeDecodeError as e:
            reason = f"not valid UTF-8 ({e.reason} at byte {e.start})"
            record = line.decode("utf-8", errors="replace")
            bad.append({"origin": f"{path}:{n}", "reason": reason, "record": record})
            texts.append("")
    stage_rows(con, "rejects", bad)
    return pa.array(texts, pa.large_string())


def stage_file_lines(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Read a line-delimited file into ``raw_records(ord, raw)``, ``ord`` the 1-based line
    number (see :func:`line_blocks`: the lines as they are, bad UTF-8 rejected)."""
    con.execute("CREATE OR REPLACE TEMP TABLE raw_records (raw VARCHAR, ord BIGINT)")
    for table in line_blocks(con, path):
        con.register("_raw_lines", table)
        try:
            con.execute("INSERT INTO raw_records SELECT raw, ord FROM _raw_lines")
        finally:
            con.unregister("_raw_lines")


def _register_text(con: duckdb.DuckDBPyConnection, name: str, data: bytes) -> bool:
    """Register ``data`` as the one-row table ``name(content)``; ``False`` when not UTF-8."""
    try:
        content = pa.array([data], pa.large_binary()).cast(pa.large_string())  # validates in C
    except pa.ArrowInvalid:
        return False
    con.register(name, pa.table({"content": content}))
    return True


def stage_document(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """The whole file as one record ``raw_records(ord=1, raw)`` (without BOM or leading blanks;
    bytes that are not UTF-8 become U+FFFD)."""
    data = read_bytes(path).lstrip(_WHITE)
    if not _register_text(con, "_raw_text", data):
        text = data.decode("utf-8", errors="replace").encode("utf-8")
        _register_text(con, "_raw_text", text)
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE raw_records AS "
            "SELECT 1::BIGINT AS ord, content AS raw FROM _raw_text"
        )
    finally:
        con.unregister("_raw_text")


def stage_json_items(con: duckdb.DuckDBPyConnection, path: Path, json_path: str = "$[*]") -> bool:
    """Read the items of one JSON document into ``raw_records(ord, raw)``.

    ``ord`` is the 1-based position of the item (origins read ``path#ord``); ``json_path``
    ``"$"`` makes the whole document the one item. When the file is not
    valid JSON, or holds something other than the expected container (``null``, a number, an
    object without the list ``json_path`` names...), the whole file is rejected (``path#0``)
    and ``False`` is returned; an empty container is no records and no reject.
    """
    stage_document(con, path)
    if document_is_json(con) is None:  # an empty file: no records, nothing to reject
        con.execute("DELETE FROM raw_records")
        return True
    try:
        items = "[doc]" if json_path == "$" else "json_extract(doc, $json_path)"
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE raw_items AS
            SELECT json_type(doc) AS kind, {items} AS items FROM (
                SELECT raw::JSON AS doc FROM raw_records)
            """,
            {"json_path": json_path} if json_path != "$" else {},
        )
    except (duckdb.InvalidInputException, duckdb.ConversionException, UnicodeDecodeError) as e:
        # DuckDB quotes the input in its message and may cut a multi-byte character in two:
        # the message itself then fails to decode (UnicodeDecodeError).
        detail = "" if isinstance(e, UnicodeDecodeError) else f": {str(e).splitlines()[0][:200]}"
        con.execute(
            "INSERT INTO stage_rejects SELECT $o, $why, left(raw, 10000) FROM raw_records",
            {"o": f"{path}#0", "why": f"file is not valid JSON{detail}"},
        )
        return False
    container = json_path.removesuffix("[*]")
    kind, n, empty = con.execute(
        """SELECT kind, len(items), coalesce(list_bool_and(list_transform(
               CASE WHEN $c = '$.*' THEN json_extract((SELECT raw FROM raw_records)::JSON, '$.*')
                    ELSE [json_extract((SELECT raw FROM raw_records)::JSON, $c)] END,
               lambda v: json_type(v) = 'ARRAY')), true)
           FROM raw_items""",
        {"c": container},
    ).fetchall()[0]
    if not n and not empty:
        expected = "a JSON array" if json_path == "$[*]" else f"JSON items at {json_path}"
        con.execute(
            "INSERT INTO stage_rejects SELECT $o, $why, left(raw, 10000) FROM raw_records",
            {"o": f"{path}#0", "why": f"expected {expected}, found {kind.lower()}"},
        )
        con.execute("DROP TABLE raw_items")
        return False
    con.execute("""
        CREATE OR REPLACE TEMP TABLE raw_records AS
        SELECT n AS ord, raw::VARCHAR AS raw FROM (
            SELECT unnest(items) AS raw, generate_subscripts(items, 1) AS n FROM raw_items)
    """)
    con.execute("DROP TABLE raw_items")
    return True


_DOC_START = re.compile(r"^[{\[]", re.M)
_SPACE = re.compile(r"\s*")


def split_documents(text: str) -> Iterator[tuple[int, str, str | None]]:
    """The JSON documents of a stream of concatenated documents (pretty-printed or not), as
    ``(line of the document's first character, text, reason)``; ``reason`` is ``None`` for a
    valid document, else why the text up to the next document start (a ``{`` or ``[`` at the
    start of a line) is not one."""
    decoder = json.JSONDecoder()
    pos, line, end = 0, 1, len(text)
    while True:
        skip = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        line += text.count("\n", pos, skip)
        pos = skip
        if pos >= end:
            return
        try:
            _, stop = decoder.raw_decode(text, pos)
            reason = None
        except (ValueError, RecursionError) as e:
            reason = f"not valid JSON: {e.msg}" if isinstance(e, json.JSONDecodeError) else str(e)
            newline = text.find("\n", pos)
            nxt = _DOC_START.search(text, newline + 1) if newline >= 0 else None
            stop = nxt.start() if nxt else end
        yield line, text[pos:stop], reason
        line += text.count("\n", pos, stop)
        pos = stop


def stage_json_stream(con: duckdb.DuckDBPyConnection, path: Path) -> bool:
    """Read a stream of concatenated JSON documents (pretty-printed spans from the OTel SDK's
    ``ConsoleSpanExporter``, ``MessageToJson`` requests appended to one file, or JSONL) into
    ``raw_records(ord, raw)``, ``ord`` the line of each document's first character.

    Text that is not a document is rejected (``path:line``) up to the next line that starts a
    document. A file that is one broken document is rejected whole (``path#0``) and ``False``
    is returned.
    """
    text = read_bytes(path).decode("utf-8", errors="replace")
    good: list[tuple[int, str]] = []
    bad: list[dict[str, Any]] = []
    for line, raw, reason in split_documents(text):
        if reason is None:
            good.append((line, raw))
        else:
            bad.append({"origin": f"{path}:{line}", "reason": reason, "record": raw[:10000]})
    if not good and len(bad) == 1:
        bad[0] |= {"origin": f"{path}#0", "reason": f"file: {bad[0]['reason']}"}
        stage_rows(con, "rejects", bad)
        return False
    stage_rows(con, "rejects", bad)
    stage_raw_records(con, good)
    return True


def stage_raw_records(con: duckdb.DuckDBPyConnection, records: list[tuple[int, str]]) -> None:
    """Make ``raw_records(ord, raw)`` hold ``records``, ``(ord, text)`` pairs (handed to DuckDB
    as Arrow: the text never becomes SQL)."""
    table = pa.table(
        {
            "ord": pa.array([n for n, _ in records], pa.int64()),
            "raw": pa.array([text for _, text in records], pa.large_string()),
        }
    )
    con.register("_raw_records", table)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE raw_records AS SELECT * FROM _raw_records")
    finally:
        con.unregister("_raw_records")


_WS = "' \t\r\n'"  # JSON's white space as a SQL string literal (the characters themselves)


def not_blank(column: str) -> str:
    """SQL: the text ``column`` holds more than JSON white space.

    Only its first 64 characters are trimmed unless they are all white space: trimming a whole
    line copies it, and OTLP requests run to megabytes (0.6 s per 10k requests of 13 KB)."""
    return f"(trim(left({column}, 64), {_WS}) <> '' OR trim({column}, {_WS}) <> '')"


def starts_with_object(column: str) -> str:
    """SQL: the text ``column`` starts with ``{`` after JSON white space (without copying it)."""
    head = f"ltrim(left({column}, 64), {_WS})"
    return f"({head} LIKE '{{%' OR ({head} = '' AND ltrim({column}, {_WS}) LIKE '{{%'))"


# The non-blank records of ``raw_records`` with their parse (``j`` NULL: not JSON), for the
# SQL readers that parse a record once and read it with ``->``.
PARSED_RECORDS = (
    f"(SELECT ord, raw, try_cast(raw AS JSON) AS j FROM raw_records WHERE {not_blank('raw')})"
)


def document_is_json(con: duckdb.DuckDBPyConnection) -> bool | None:
    """For a file staged by :func:`stage_document`: whether it is one valid JSON document
    (``None`` when the file holds nothing but white space)."""
    return con.execute(
        f"SELECT CASE WHEN NOT {not_blank('raw')} THEN NULL ELSE json_valid(raw) END "
        "FROM raw_records"
    ).fetchall()[0][0]


# What converting one record may raise on data of an unexpected shape. A Python reader checks
# types at its boundary (RecordError, with a precise reason); this net turns whatever a check
# missed into a reject of that one record, never a failed file.
RECORD_FAILURES = (
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    IndexError,
    OverflowError,
    RecursionError,
)


def reason_of(e: BaseException) -> str:
    """The reject reason for an exception raised while converting one record."""
    if isinstance(e, RecordError):
        return str(e)
    if isinstance(e, RecursionError):
        return f"nested deeper than {MAX_DEPTH} levels"
    return f"cannot convert the record ({type(e).__name__}: {e})"
