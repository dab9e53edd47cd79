"""The DuckDB connection and the one way SQL is run."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

Tracer = Callable[[str, dict[str, Any]], None]


def schema_sql() -> str:
    """Return the DDL of the canonical schema (``toolkit/schema.sql``)."""
    return resources.files("toolkit").joinpath("schema.sql").read_text(encoding="utf-8")


def connect(
    path: str | Path | None = None, *, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database with the canonical schema applied.

    Args:
        path: a database file, created on first use; ``None`` for an in-memory database.
        memory_limit: DuckDB's memory limit (e.g. ``"4GB"``); beyond it DuckDB spills to disk.

    Returns:
        A connection whose session time zone is UTC, so timestamps come back in UTC.
    """
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:" if path is None else str(path))
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(schema_sql())
    return con


def query(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    *,
    tracer: Tracer | None = None,
    **params: Any,
) -> pd.DataFrame:
    """Run one SQL statement with named parameters (``$name``) and return a DataFrame.

    Args:
        con: the connection.
        sql: the statement; values go in as ``$name`` placeholders, never formatted in.
        tracer: called with ``(sql, params)`` before the statement runs (e.g. ``print``-like).
        **params: the values for the placeholders.
    """
    if tracer is not None:
        tracer(sql, params)
    return con.execute(sql, params).df() if params else con.execute(sql).df()


def quote_identifier(name: str) -> str:
    """Quote a table or column name for SQL; the one place identifiers enter SQL text."""
    return '"' + name.replace('"', '""') + '"'
