"""The ``toolkit`` command: a thin shell over the library, built on Click.

Every command that only reads (``findings``, ``export``, ``report`` without ``--classify``)
opens the database read-only, so it runs beside a notebook or another reader of the same file.
Errors are one line with a hint and exit code 1 (2 for a command line that does not parse);
``--verbose`` adds the traceback. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click
import duckdb
import pandas as pd

from toolkit.analyze import FINDING_KINDS
from toolkit.cli.progress import Progress, human_bytes
from toolkit.db import DatabaseLockedError, connect, query
from toolkit.ingest import FORMATS
from toolkit.simulate import FAULT_KINDS

DEFAULT_DB = "data/traces.duckdb"
TABLES = ["events", "traces", "annotations", "rejects", "ingests", "findings"]
F = TypeVar("F", bound=Callable[..., Any])


class CliError(Exception):
    """An error the user can act on: a one-line message and a hint."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


def samples_dir() -> Path:
    """The sample traces bundled with the package (``toolkit/samples``, with provenance)."""
    return Path(str(resources.files("toolkit").joinpath("samples")))


# ---------------------------------------------------------------- options shared by commands


def _db_option(read_only: bool) -> Callable[[F], F]:
    how = "read-only, so it runs beside other readers" if read_only else "for writing"
    return click.option(
        "--db",
        default=DEFAULT_DB,
        envvar="TOOLKIT_DB",
        show_envvar=True,
        type=click.Path(dir_okay=False),
        help=f"The DuckDB database file (opened {how}).",
    )


def _verbose_option(f: F) -> F:
    # Parsed again by `main` before Click runs, so even an error in parsing gets its traceback.
    return click.option(
        "-v", "--verbose", is_flag=True, expose_value=False, help="Print the traceback of an error."
    )(f)


def _progress_option(f: F) -> F:
    return click.option(
        "--progress/--no-progress",
        default=None,
        help="Show the phase, bytes read and time on stderr.  [default: when stderr is a terminal]",
        show_default=False,
    )(f)


def _filter_options(f: F) -> F:
    f = click.option("--trace-id", default=None, help="Only this trace.")(f)
    return click.option("--system", default=None, help="Only the traces of this system.")(f)


@contextmanager
def _open(db: str, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
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


def _require_events(con: duckdb.DuckDBPyConnection, db: str, what: str) -> None:
    if con.execute("SELECT count(*) FROM events").fetchall()[0][0] == 0:
        raise CliError(
            f"{db} holds no events: no {what}",
            f"load traces first: `toolkit ingest FILES --db {db}`",
        )


def _print_table(title: str, df: pd.DataFrame, limit: int = 12) -> None:
    click.echo(f"\n{title}")
    if df.empty:
        click.echo("  (none)")
        return
    text = df.head(limit if limit > 0 else len(df)).to_string(index=False)
    click.echo("\n".join("  " + line for line in text.splitlines()))
    if 0 < limit < len(df):
        click.echo(f"  ... {len(df) - limit} more")


def print_summary(con: duckdb.DuckDBPyConnection) -> None:
    """Print a short overview of what the database holds."""
    _print_table("Traces by system", query(con, """
        SELECT coalesce(t.system, '(unknown)') AS system, count(DISTINCT t.trace_id) AS traces,
               count(e.event_id) AS events
        FROM traces t LEFT JOIN events e USING (trace_id) GROUP BY ALL ORDER BY events DESC"""))  # fmt: skip
    _print_table("Events by type", query(con, """
        SELECT type, count(*) AS events, count(DISTINCT trace_id) AS traces
        FROM events GROUP BY ALL ORDER BY events DESC, type"""))  # fmt: skip
    _print_table("Events by source", query(con, """
        SELECT coalesce(source, '(none)') AS source, count(*) AS events
        FROM events GROUP BY ALL ORDER BY events DESC, source"""))  # fmt: skip
    _print_table("Rejected records", query(con, """
        SELECT reason, count(*) AS records, min(origin) AS first_at
        FROM rejects GROUP BY ALL ORDER BY records DESC, reason"""))  # fmt: skip


def _print_modes(con: duckdb.DuckDBPyConnection) -> None:
    from toolkit.classify import failure_breakdown

    breakdown = failure_breakdown(con, group_by="all")
    found = breakdown[breakdown["traces"].fillna(0) > 0]
    _print_table(
        "MAST failure modes found by the rules (traces; share of flags)",
        found[["category", "mode", "mode_name", "traces", "flag_share"]]
        .astype({"traces": int})
        .round(3),
    )


# ---------------------------------------------------------------- the commands


@click.group(
    context_settings={
        "help_option_names": ["-h", "--help"],
        "show_default": True,
        "max_content_width": 100,
    }
)
@click.version_option(package_name="toolkit")
@_verbose_option
def cli() -> None:
    """Load traces of multi-agent systems into DuckDB, find where the event flow snaps,
    classify failures by MAST, and write reports.

    \b
    Start with:  toolkit demo out/demo     (simulated runs + bundled samples, a report)
    Your data:   toolkit ingest traces/ --db my.duckdb
                 toolkit findings --db my.duckdb
                 toolkit report --db my.duckdb --out report.html --classify
    """


def _files(paths: tuple[str, ...]) -> list[tuple[Path, bool]]:
    """The files to load, each with whether it was named explicitly; checked before the
    database is opened, so a wrong path creates nothing."""
    from toolkit.ingest import _expand

    return _expand(list(paths))  # FileNotFoundError names a path that matches nothing


def _ingest_files(
    con: duckdb.DuckDBPyConnection,
    files: list[tuple[Path, bool]],
    fmt: str | None,
    progress: Progress,
) -> pd.DataFrame:
    from toolkit.ingest import IngestError, detect_format, ingest

    def size_of(path: Path) -> int:
        try:
            return path.stat().st_size
        except OSError:  # a dangling link: `ingest` says what is wrong with it
            return 0

    sizes = [size_of(path) for path, _ in files]
    total, done, results = sum(sizes), 0, []
    for i, ((path, explicit), size) in enumerate(zip(files, sizes, strict=True), 1):
        with progress.phase(
            f"ingest {i}/{len(files)} {path.name}", size=size, reads=2, done=done, total=total
        ):
            try:
                if fmt is None and not explicit and detect_format(path) is None:
                    # found in a folder and not a trace format: listed, left alone (as `ingest`)
                    results.append(pd.DataFrame([{"path": str(path), "status": "unknown"}]))
                else:
                    results.append(ingest(con, path, fmt, progress=False))
            except (IngestError, OSError) as e:
                if explicit:
                    raise
                # a file found in a folder that cannot be read: its row says why, the rest loads
                results.append(
                    pd.DataFrame([{"path": str(path), "status": "error", "error": str(e)}])
                )
        done += size
    out = pd.concat(results, ignore_index=True) if results else pd.DataFrame()
    return out.reindex(columns=["path", "format", "status", "rows", "rejected", "seconds", "error"])


@cli.command("ingest")
@click.argument("paths", nargs=-1, required=True)
@_db_option(read_only=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", *(f.name for f in FORMATS)]),
    default="auto",
    help="Read every file as this format; auto detects each file's format from its first 64 KiB.",
)
@_progress_option
@_verbose_option
def ingest_command(paths: tuple[str, ...], db: str, fmt: str, progress: bool | None) -> None:
    """Load trace files, folders (recursively) or quoted globs into the database.

    Idempotent: a file whose bytes were loaded before is skipped. Records that cannot be
    converted go to the `rejects` table with their file, line and reason.
    """
    files = _files(paths)
    with _open(db, read_only=False) as con:
        result = _ingest_files(con, files, None if fmt == "auto" else fmt, _progress(progress))
        click.echo(result.to_string(index=False))
        print_summary(con)


@cli.command("serve")
@_db_option(read_only=False)
@click.option("--port", default=4318, show_default=True, type=click.IntRange(0, 65535),
              help="The TCP port (OTLP/HTTP's is 4318; 0 picks a free one).")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on (0.0.0.0 accepts any client: no authentication).")  # fmt: skip
@click.option("--grpc-port", type=click.IntRange(0, 65535), default=None,
              help="Also serve OTLP/gRPC on this port (OTLP/gRPC's is 4317; needs the [grpc] extra).")  # fmt: skip
@click.option("--every", default=5.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds between progress lines on stderr.")  # fmt: skip
@_verbose_option
def serve_command(db: str, port: int, host: str, grpc_port: int | None, every: float) -> None:
    """Receive OpenTelemetry traces over OTLP/HTTP into the database until Ctrl-C.

    Point an exporter at it: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318. The database is
    open for writing, so other processes cannot open it meanwhile: explore it from Python in
    the same process instead (`toolkit.receive`), or after stopping.
    """
    import signal
    import time

    from toolkit.receive import receive

    # Ctrl-C must stop it even when started from a shell's background job, which ignores SIGINT
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with _open(db, read_only=False) as con:
        try:
            receiver = receive(con, port=port, host=host, grpc_port=grpc_port)
        except OSError as e:
            raise CliError(f"cannot listen on {host}:{port}: {e.strerror or e}",
                           "choose another --port, or stop what holds it") from None  # fmt: skip
        except ImportError as e:
            raise CliError(str(e), "pip install 'toolkit[grpc]' for --grpc-port") from None
        grpc = f" and OTLP/gRPC on {host}:{receiver.grpc_port}" if grpc_port is not None else ""
        click.echo(
            f"receiving OTLP/HTTP traces on {receiver.url}{grpc} into {db} (Ctrl-C stops)",
            err=True,
        )
        try:
            while True:
                time.sleep(every)
                c = receiver.counters
                click.echo(f"{c.requests} requests, {c.spans} spans stored, {c.rejects} rejects, "
                           f"{c.refused} refused" + (f"; last error {c.last_error}" if c.last_error else ""),
                           err=True)  # fmt: skip
        except KeyboardInterrupt:
            pass
        finally:
            c = receiver.stop()
            click.echo(f"stopped: {c.spans} spans stored from {c.committed} requests", err=True)


@cli.command("findings")
@_db_option(read_only=True)
@_filter_options
@click.option(
    "--kind", "kinds", multiple=True, type=click.Choice(FINDING_KINDS), help="Only these kinds (repeatable)."
)  # fmt: skip
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "jsonl"]),
    default="table",
    help="table for reading; csv or jsonl (one JSON object a line) for other programs.",
)
@click.option(
    "--limit", default=50, help="The most rows of the table; 0 for all (csv and jsonl: all)."
)
@click.option("--summary", is_flag=True, help="Counts of each kind per system instead of the rows.")
@_progress_option
@_verbose_option
def findings_command(
    db: str, system: str | None, trace_id: str | None, kinds: tuple[str, ...], fmt: str,
    limit: int, summary: bool, progress: bool | None,
) -> None:  # fmt: skip
    """Where the event flow snaps: unhandled, duplicate, late, out-of-order events, hangs...

    One row per finding (trace_id, event_id, kind, severity, detail). Exit code 1 when the
    database holds no events.
    """
    from toolkit.analyze import findings
    from toolkit.analyze import summary as summarise

    with _open(db, read_only=True) as con:
        _require_events(con, db, "findings")
        with _progress(progress).phase("findings"):
            if summary:
                df = summarise(con, system=system, trace_id=trace_id)
            else:
                df = findings(con, system=system, trace_id=trace_id)
                if kinds:
                    df = df[df["kind"].isin(kinds)]
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    elif fmt == "jsonl":
        if len(df):
            click.echo(df.to_json(orient="records", lines=True, date_format="iso").rstrip("\n"))
    else:
        what = "systems" if summary else "findings"
        traces = "" if summary else f" in {df['trace_id'].nunique()} traces"
        _print_table(f"{len(df)} {what}{traces} ({db})", df, limit=limit)


@cli.command("classify")
@_db_option(read_only=False)
@_filter_options
@_progress_option
@_verbose_option
def classify_command(
    db: str, system: str | None, trace_id: str | None, progress: bool | None
) -> None:
    """Classify runs by MAST failure mode with the offline rules; store them as annotations.

    A re-run replaces the rules' earlier annotations of the same traces. An LLM judge is
    available from Python: toolkit.classify(con, judge=...).
    """
    from toolkit.classify import classify

    with _open(db, read_only=False) as con:
        _require_events(con, db, "runs to classify")
        with _progress(progress).phase("classify"):
            found = classify(con, system=system, trace_id=trace_id)
        click.echo(f"stored {len(found)} annotations (annotator 'rules') in {db}")
        _print_modes(con)


@cli.command("export")
@click.argument("out", type=click.Path(dir_okay=False))
@_db_option(read_only=True)
@click.option(
    "--table",
    type=click.Choice(TABLES),
    default="events",
    help="What to write as Parquet or CSV; events as Parquet is the canonical form that `toolkit ingest` reads back.",
)  # fmt: skip
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "parquet", "csv", "xes", "ocel-json", "ocel-sqlite"]),
    default="auto",
    help="The file format; auto takes it from OUT's suffix (.parquet, .csv, .xes, .json, .sqlite). "
    "xes (IEEE 1849) and ocel-json / ocel-sqlite (OCEL 2.0) write the event log for process mining.",
)  # fmt: skip
@click.option("--case", type=click.Choice(["trace", "session", "agent"]), default="trace",
              help="xes: the case notion (one trace, one session, one agent within a trace).")  # fmt: skip
@click.option("--activity", type=click.Choice(["type", "name", "source_type"]), default="type",
              help="xes, ocel-*: the activity (event type, span name, or agent:type).")  # fmt: skip
@_filter_options
@_verbose_option
def export_command(
    out: str, db: str, table: str, fmt: str, case: str, activity: str, system: str | None,
    trace_id: str | None,
) -> None:  # fmt: skip
    """Write a table (or the findings) of the database to OUT, as Parquet or CSV; or the event
    log for process mining, as XES or OCEL 2.0 (JSON or SQLite).

    The event log has one event per distinct event (a redelivery once) that has a time.
    """
    from toolkit.analyze import findings
    from toolkit.ingest import export_parquet

    if fmt == "auto":
        fmt = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".xes": "xes",
               ".json": "ocel-json", ".jsonocel": "ocel-json", ".sqlite": "ocel-sqlite",
               ".sqlite3": "ocel-sqlite", ".db": "ocel-sqlite"}.get(Path(out).suffix.lower(), "")  # fmt: skip
        if not fmt:
            raise CliError(
                f"cannot tell the format of {out} from its suffix",
                "name the file .parquet or .csv (a table), .xes, .json or .sqlite (the event log "
                "as XES or OCEL 2.0), or pass --format",
            )
    log_format = fmt in ("xes", "ocel-json", "ocel-sqlite")
    if log_format and table != "events":
        raise CliError(f"--format {fmt} writes the event log, not the {table} table",
                       "leave out --table, or choose --format parquet or csv")  # fmt: skip
    if not log_format and (system or trace_id):
        raise CliError("--system and --trace-id filter the event log (xes, ocel-json, ocel-sqlite)",
                       "export the whole table, or choose --format xes, ocel-json or ocel-sqlite")  # fmt: skip
    with _open(db, read_only=True) as con:
        _require_events(con, db, "rows to export")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        if log_format:
            from toolkit.export import export_ocel, export_xes
            from toolkit.export.log import count_events

            filters = {"system": system, "trace_id": trace_id}
            if fmt == "xes":
                rows = export_xes(con, out, case=case, activity=activity, **filters)  # type: ignore[arg-type]
            else:
                rows = export_ocel(con, out, activity=activity, format=fmt.removeprefix("ocel-"),  # type: ignore[arg-type]
                                   **filters)  # fmt: skip
            distinct, _ = count_events(con, **filters)
            left = f"; {distinct - rows} left out: no time" if distinct > rows else ""
            click.echo(f"wrote {rows} events to {out} ({fmt}{left})")
            return
        if table == "events" and fmt == "parquet":
            rows = export_parquet(con, out)
        elif table == "findings":
            df = findings(con)
            df.to_parquet(out, index=False) if fmt == "parquet" else df.to_csv(out, index=False)
            rows = len(df)
        else:
            rel = con.table(table)
            rel.write_parquet(out) if fmt == "parquet" else rel.write_csv(out, header=True)
            rows = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    click.echo(f"wrote {rows} rows of {table} to {out} ({fmt})")


@cli.command("report")
@_db_option(read_only=True)
@click.option(
    "--out", default="out/report.html", type=click.Path(dir_okay=False), help="The HTML file to write."
)  # fmt: skip
@click.option("--title", default="Event-flow report", help="The page title.")
@click.option("--system", default=None, help="Only this system's traces [default: all, with a picker].")  # fmt: skip
@click.option("--trace-id", default=None, help="The trace whose panel opens first [default: the one with the most severe findings].")  # fmt: skip
@click.option(
    "--classify",
    "run_classify",
    is_flag=True,
    help="Run the MAST rules first and store their annotations (opens the database for writing).",
)
@_progress_option
@_verbose_option
def report_command(
    db: str, out: str, title: str, system: str | None, trace_id: str | None,
    run_classify: bool, progress: bool | None,
) -> None:  # fmt: skip
    """Write one self-contained HTML report to explore: findings and traces in tables that sort,
    filter and search; a trace id opens the trace's span tree, graph and transcript; flow and
    latency per system; MAST.

    The file opens without a network (plotly.js and the table library are inlined). Exit
    code 1 when the database holds no events.
    """
    from toolkit.analyze.scope import prepare_base
    from toolkit.viz.report import report

    shown = _progress(progress)
    with _open(db, read_only=not run_classify) as con:
        _require_events(con, db, "report to write")
        with shown.phase("derive the analyses' tables"):
            prepare_base(con)
        if (
            not run_classify
            and not query(con, "SELECT 1 FROM annotations WHERE mode LIKE 'FM-%' LIMIT 1").size
        ):
            click.echo("note: no MAST annotations; add --classify to run the rules", err=True)
        with shown.phase("classify, findings, charts, HTML"):
            path = report(con, out, title=title, system=system, trace_id=trace_id,
                          classify=run_classify)  # fmt: skip
    size = human_bytes(path.stat().st_size)
    click.echo(f"wrote {path} ({size}; open it in a browser, no network needed)")


@cli.command("demo")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--traces", default=200, type=click.IntRange(1), help="Simulated runs.")
@click.option(
    "--seed", default=7, help="The simulator's seed (the same seed writes the same runs)."
)
@click.option(
    "--report", "report_path", default=None, type=click.Path(dir_okay=False),
    help="Where to write the report [default: OUT_DIR/report.html].",
)  # fmt: skip
@_progress_option
@_verbose_option
def demo_command(
    out_dir: str, traces: int, seed: int, report_path: str | None, progress: bool | None
) -> None:
    """Simulate runs, load them and the bundled samples, classify, report: all in OUT_DIR.

    Writes OUT_DIR/sim/ (events.jsonl, truth.csv), OUT_DIR/traces.duckdb and the report.
    Running it again adds nothing to the database (ingest is idempotent).
    """
    from toolkit.analyze import summary
    from toolkit.classify import classify
    from toolkit.simulate import simulate
    from toolkit.viz.report import report

    shown = _progress(progress)
    root = Path(out_dir)
    db = root / "traces.duckdb"
    with shown.phase("simulate"):
        sim = simulate(root / "sim", traces=traces, seed=seed)
    click.echo(
        f"simulated {sim['traces']} runs ({sim['events_written']} events) into {root / 'sim'}"
    )
    with _open(str(db), read_only=False) as con:
        result = _ingest_files(con, _files((str(sim["events"]), str(samples_dir()))), None, shown)
        click.echo(f"\nIngested into {db}:")
        click.echo(result[["path", "format", "status", "rows", "rejected"]].to_string(index=False))
        print_summary(con)
        with shown.phase("findings"):
            found = summary(con)
        _print_table("Where the event flow snaps (findings per system)", found, limit=20)
        with shown.phase("classify"):
            classify(con)
        _print_modes(con)
        with shown.phase("report"):
            path = report(con, report_path or root / "report.html")
    click.echo(f"\nReport: {path.resolve()}")
    click.echo(f"Next: toolkit findings --db {db}   |   toolkit report --db {db} --out report.html")


def _fault(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict:
    faults = {}
    for text in values:
        kind, _, rate = text.partition("=")
        try:
            value = float(rate)
        except ValueError:
            value = -1.0
        if kind not in FAULT_KINDS or not 0 <= value <= 1:
            raise click.BadParameter(
                f"{text!r}: expected KIND=RATE, RATE in 0..1, KIND one of {', '.join(FAULT_KINDS)}"
            )
        faults[kind] = value
    return faults


@cli.command("simulate")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--traces", default=100, type=click.IntRange(1), help="Runs to simulate.")
@click.option("--seed", default=0, help="The seed (the same seed writes the same bytes).")
@click.option(
    "--fault", "faults", multiple=True, callback=_fault, metavar="KIND=RATE",
    help=f"A fault rate per trace (repeatable); KIND: {', '.join(FAULT_KINDS)}.  "
    "[default: the documented default rates]",
)  # fmt: skip
@click.option("--clean", is_flag=True, help="No faults at all.")
@_verbose_option
def simulate_command(out_dir: str, traces: int, seed: int, faults: dict, clean: bool) -> None:
    """Write simulated multi-agent runs (OUT_DIR/events.jsonl) and their ground truth (truth.csv)."""
    from toolkit.simulate import simulate

    if faults and clean:
        raise CliError("--fault and --clean contradict each other", "pass one of them")
    out = simulate(out_dir, traces=traces, seed=seed, faults={} if clean else faults or None)
    click.echo(f"wrote {out['events_written']} events of {out['traces']} traces to {out['events']}")
    click.echo(f"wrote {out['findings']} ground-truth findings to {out['truth']}")


def _progress(flag: bool | None) -> Progress:
    return Progress(sys.stderr.isatty() if flag is None else flag)


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
            f"Error: {_one_line(exc.format_message())}. Hint: see `{where} --help`", err=True
        )
        return 2
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        message, hint = _explain(exc)
        click.echo(f"Error: {message.rstrip('.')}. Hint: {hint}", err=True)
        return 1
    return int(rv) if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
