"""The ``toolkit`` command: a thin shell over the library, built on Click.

Every command that only reads (``findings``, ``export``, ``report`` without ``--classify``)
opens the database read-only, so it runs beside a notebook or another reader of the same file.
Errors are one line with a hint and exit code 1 (2 for a command line that does not parse);
``--verbose`` adds the traceback. Progress goes to stderr, results to stdout.

This module holds the ``cli`` group and ``main`` (exit codes, errors explained); the commands
live by family: ``load`` (ingest, serve), ``analyze`` (findings, classify), ``output`` (export,
report), ``simulate`` and ``demo``; what they share is in ``common``.
"""

from __future__ import annotations

import sys
import traceback

import click
import duckdb

from toolkit.cli.analyze import classify_command, findings_command
from toolkit.cli.common import CliError, verbose_option
from toolkit.cli.demo import demo_command
from toolkit.cli.load import ingest_command, serve_command
from toolkit.cli.output import export_command, report_command
from toolkit.cli.simulate import simulate_command
from toolkit.db import DatabaseLockedError


@click.group(
    context_settings={
        "help_option_names": ["-h", "--help"],
        "show_default": True,
        "max_content_width": 100,
    }
)
@click.version_option(package_name="toolkit")
@verbose_option
def cli() -> None:
    """Load traces of multi-agent systems into DuckDB, find where the event flow snaps,
    classify failures by MAST, and write reports.

    \b
    Start with:  toolkit demo out/demo     (simulated runs + bundled samples, a report)
    Your data:   toolkit ingest traces/ --db my.duckdb
                 toolkit findings --db my.duckdb
                 toolkit report --db my.duckdb --out report.html --classify
    """


cli.add_command(ingest_command)
cli.add_command(serve_command)
cli.add_command(findings_command)
cli.add_command(classify_command)
cli.add_command(export_command)
cli.add_command(report_command)
cli.add_command(demo_command)
cli.add_command(simulate_command)


# ---------------------------------------------------------------- errors


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _explain(exc: BaseException) -> tuple[str, str]:
    """The message and hint for an error: what happened, and what to do about it."""
    if isinstance(exc, CliError):
        return str(exc), exc.hint
    if isinstance(exc, DatabaseLockedError):
        where = f"{exc.path} is in use by {exc.program} (PID {exc.pid})"
        if exc.read_only_would_work:
            return where + ", which reads it", (
                "a writer must wait for readers: close that connection (con.close(), or stop "
                "the kernel); commands that only read (findings, export, report) can run now"
            )
        return where + ", which opened it for writing", (
            "close it there (con.close(), or stop the kernel); if that process only reads, "
            "open it with toolkit.connect(path, read_only=True) so that readers share the file"
        )
    if isinstance(exc, FileNotFoundError):
        return _one_line(
            str(exc)
        ), "check the path; quote globs so the shell leaves them to toolkit"
    if isinstance(exc, ValueError) and "format" in str(exc):
        return _one_line(str(exc)), "name it with --format (see `toolkit ingest --help`)"
    if isinstance(exc, duckdb.Error):
        return _one_line(str(exc)), "rerun with --verbose for the traceback"
    return f"{type(exc).__name__}: {_one_line(str(exc))}", "rerun with --verbose for the traceback"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 error, 2 bad command line)."""
    args = sys.argv[1:] if argv is None else list(argv)
    verbose = "-v" in args or "--verbose" in args
    try:
        rv = cli.main(args=args, prog_name="toolkit", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "toolkit"
        click.echo(
            f"Error: {_one_line(exc.format_message()).rstrip('.')}. Hint: see `{where} --help`",
            err=True,
        )
        return 2
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        message, hint = _explain(exc)
        click.echo(f"Error: {message.rstrip('.')}. Hint: {hint}", err=True)
        return 1
    return int(rv) if isinstance(rv, int) else 0
