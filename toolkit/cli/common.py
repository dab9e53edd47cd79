"""What every command shares: the error a user can act on, the options (``--db``,
``--verbose``, ``--progress``, ``--system``/``--trace-id``), opening the database and printing a
table."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
import duckdb
import pandas as pd

from toolkit.cli.progress import Progress
from toolkit.db import connect

DEFAULT_DB = "data/traces.duckdb"
F = TypeVar("F", bound=Callable[..., Any])


class CliError(Exception):
    """An error the user can act on: a one-line message and a hint."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


def db_option(read_only: bool) -> Callable[[F], F]:
    """``--db PATH`` (or ``$TOOLKIT_DB``); its help says whether the command opens it read-only."""
    how = "read-only, so it runs beside other readers" if read_only else "for writing"
    return click.option(
        "--db",
        default=DEFAULT_DB,
        envvar="TOOLKIT_DB",
        show_envvar=True,
        type=click.Path(dir_okay=False),
        help=f"The DuckDB database file (opened {how}).",
    )


def verbose_option(f: F) -> F:
    """``-v/--verbose``: print the traceback of an error."""
    # Parsed again by `main` before Click runs, so even an error in parsing gets its traceback.
    return click.option(
        "-v", "--verbose", is_flag=True, expose_value=False, help="Print the traceback of an error."
    )(f)


def progress_option(f: F) -> F:
    """``--progress/--no-progress``: the phase, bytes read and time on stderr."""
    return click.option(
        "--progress/--no-progress",
        default=None,
        help="Show the phase, bytes read and time on stderr.  [default: when stderr is a terminal]",
        show_default=False,
    )(f)


def filter_options(f: F) -> F:
    """``--system`` and ``--trace-id``: only the traces of one system, or one trace."""
    f = click.option("--trace-id", default=None, help="Only this trace.")(f)
    return click.option("--system", default=None, help="Only the traces of this system.")(f)


def progress_display(flag: bool | None) -> Progress:
    """The progress display that ``--progress/--no-progress`` asks for (unset: when stderr is a
    terminal)."""
    return Progress(sys.stderr.isatty() if flag is None else flag)


@contextmanager
def open_db(db: str, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """The database at ``db``, closed afterwards; reading one that does not exist is a
    :class:`CliError` that says how to create it."""
    if read_only and not Path(db).exists():
        raise CliError(
            f"no database at {db}",
            f"load traces first: `toolkit ingest FILES --db {db}` (or `toolkit demo DIR`)",
        )
    con = connect(db, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def require_events(con: duckdb.DuckDBPyConnection, db: str, what: str) -> None:
    """Raise a :class:`CliError` (no ``what``) when the database holds no events."""
    if con.execute("SELECT count(*) FROM events").fetchall()[0][0] == 0:
        raise CliError(
            f"{db} holds no events: no {what}",
            f"load traces first: `toolkit ingest FILES --db {db}`",
        )


def print_table(title: str, df: pd.DataFrame, limit: int = 12) -> None:
    """Print ``df`` under ``title``, indented, at most ``limit`` rows (0: all)."""
    click.echo(f"\n{title}")
    if df.empty:
        click.echo("  (none)")
        return
    text = df.head(limit if limit > 0 else len(df)).to_string(index=False)
    click.echo("\n".join("  " + line for line in text.splitlines()))
    if 0 < limit < len(df):
        click.echo(f"  ... {len(df) - limit} more")
