"""What the store holds beside events: the annotators of MAST annotations, rejected records,
systems. The counts a report prints beside its charts."""

from __future__ import annotations

import duckdb
import pandas as pd

from toolkit.analyze.scope import Query, run

CONTENTS_COLUMNS = ["systems", "rejected"]
ANNOTATOR_COLUMNS = ["annotator", "annotations"]


def contents(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row of counts over the whole store (no filters: they describe the database).

    Returns:
        Columns ``systems`` (distinct ``traces.system``), ``rejected`` (rows of ``rejects``).
    """
    return run(con, contents_query())


def contents_query() -> Query:
    """The query behind :func:`contents`."""
    select = """
        SELECT (SELECT count(DISTINCT system) FROM traces) AS systems,
               (SELECT count(*) FROM rejects) AS rejected"""
    return Query([], select, {}, CONTENTS_COLUMNS)


def annotators(con: duckdb.DuckDBPyConnection, *, system: str | None = None) -> pd.DataFrame:
    """Who annotated MAST failure modes (``FM-…``), the offline rules first, then by count.

    Args:
        con: the connection.
        system: only annotations of this system's traces.

    Returns:
        Columns ``annotator``, ``annotations``.
    """
    return run(con, annotators_query(system=system))


def annotators_query(*, system: str | None = None) -> Query:
    """The query behind :func:`annotators`."""
    select = """
        SELECT annotator, count(*) AS annotations
        FROM annotations a LEFT JOIN traces t USING (trace_id)
        WHERE mode LIKE 'FM-%' AND ($system IS NULL OR t.system = $system)
        GROUP BY annotator ORDER BY (annotator = 'rules') DESC, annotations DESC, annotator"""
    return Query([], select, {"system": system}, ANNOTATOR_COLUMNS)
