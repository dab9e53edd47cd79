"""Parquet in the canonical schema: the ``events`` table's columns, written by
:func:`export_parquet` or by any tool that follows the schema.

Required columns: ``trace_id``, ``event_id``, ``type``. Every other canonical column is optional
(missing: NULL). Columns outside the schema are kept in ``attrs`` when the file has no ``attrs``
column of its own; when it has one, they are dropped.
``origin`` is kept when the file has it (a round trip keeps where each record first came from);
otherwise it is ``path#row``. Rows missing a required value are rejected with the reason.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from toolkit.db import quote_identifier
from toolkit.ingest.base import STAGE_COLUMNS, Format

_REQUIRED = ("trace_id", "event_id", "type")
_CANONICAL = [c for c in STAGE_COLUMNS["events"] if c != "ord"]


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage the events of a canonical-schema Parquet file for ``toolkit.ingest``."""
    con.execute(
        "CREATE OR REPLACE TEMP VIEW raw_parquet AS "
        "SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS _row "
        f"FROM read_parquet('{str(path).replace(chr(39), chr(39) * 2)}', file_row_number = true)"
    )
    present = [r[0] for r in con.execute("DESCRIBE raw_parquet").fetchall()]
    missing = [c for c in _REQUIRED if c not in present]
    origin = "$p || '#' || _row"
    if missing:
        con.execute(
            f"INSERT INTO stage_rejects SELECT {origin}, $reason, NULL FROM raw_parquet",
            {
                "p": str(path),
                "reason": f"Parquet file lacks required column(s) {', '.join(missing)}",
            },
        )
        return
    extra = [c for c in present if c not in _CANONICAL and c not in ("_row", "record_key")]
    select = []
    for c in _CANONICAL:
        if c == "origin":
            select.append(
                f"coalesce({'origin' if 'origin' in present else 'NULL'}, {origin}) AS origin"
            )
        elif c == "attrs" and "attrs" not in present and extra:
            fields = ", ".join(f"'{e}', {quote_identifier(e)}" for e in extra)
            select.append(f"json_object({fields}) AS attrs")
        elif c in present:
            select.append(f"{quote_identifier(c)}::{STAGE_COLUMNS['events'][c]} AS {c}")
    nulls = " OR ".join(f"{c} IS NULL" for c in _REQUIRED)
    reason = " ".join(f"WHEN {c} IS NULL THEN 'missing required value: {c}'" for c in _REQUIRED)
    con.execute(
        f"INSERT INTO stage_rejects SELECT {origin}, CASE {reason} END, "
        f"to_json(r)::VARCHAR FROM raw_parquet r WHERE {nulls}",
        {"p": str(path)},
    )
    con.execute(
        f"INSERT INTO stage_events BY NAME SELECT {', '.join(select)}, _row AS ord "
        f"FROM raw_parquet WHERE NOT ({nulls})",
        {"p": str(path)},
    )
    con.execute("DROP VIEW raw_parquet")


def export_parquet(
    con: duckdb.DuckDBPyConnection, path: str | Path, *, trace_id: str | None = None
) -> int:
    """Write the ``events`` table (or one trace of it) to Parquet in the canonical schema.

    Args:
        con: the connection.
        path: the Parquet file to write.
        trace_id: only this trace, when given.

    Returns:
        The number of events written.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    columns = ", ".join(_CANONICAL)
    con.execute(
        f"COPY (SELECT {columns} FROM events WHERE $t IS NULL OR trace_id = $t "
        "ORDER BY trace_id, seq, origin) TO '"
        + str(path).replace("'", "''")
        + "' (FORMAT parquet, COMPRESSION zstd)",
        {"t": trace_id},
    )
    return int(
        con.execute(
            "SELECT count(*) FROM events WHERE $t IS NULL OR trace_id = $t", {"t": trace_id}
        ).fetchall()[0][0]
    )


def sniff(head: bytes) -> bool:
    """Parquet files start with the magic bytes ``PAR1``."""
    return head[:4] == b"PAR1"


FORMAT = Format(name="parquet", sniff=sniff, read=read)
