"""Commands that load traces into the database: ``ingest`` (files) and ``serve`` (live OTLP)."""

from __future__ import annotations

from pathlib import Path

import click
import duckdb
import pandas as pd

from toolkit.cli.common import (
    CliError,
    db_option,
    open_db,
    print_table,
    progress_display,
    progress_option,
    verbose_option,
)
from toolkit.cli.progress import Progress
from toolkit.db import query
from toolkit.ingest import FORMATS


def files_to_load(paths: tuple[str, ...]) -> list[tuple[Path, bool]]:
    """The files to load, each with whether it was named explicitly; checked before the
    database is opened, so a wrong path creates nothing."""
    from toolkit.ingest import _expand

    return _expand(list(paths))  # FileNotFoundError names a path that matches nothing


def ingest_files(
    con: duckdb.DuckDBPyConnection,
    files: list[tuple[Path, bool]],
    fmt: str | None,
    progress: Progress,
) -> pd.DataFrame:
    """Ingest ``files`` one by one with progress; one row per file (path, format, status,
    rows, rejected, seconds, error). A file found in a folder that is not a trace format, or
    that cannot be read, is a row; one named explicitly raises."""
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


def print_summary(con: duckdb.DuckDBPyConnection) -> None:
    """Print a short overview of what the database holds."""
    print_table("Traces by system", query(con, """
        SELECT coalesce(t.system, '(unknown)') AS system, count(DISTINCT t.trace_id) AS traces,
               count(e.event_id) AS events
        FROM traces t LEFT JOIN events e USING (trace_id) GROUP BY ALL ORDER BY events DESC"""))  # fmt: skip
    print_table("Events by type", query(con, """
        SELECT type, count(*) AS events, count(DISTINCT trace_id) AS traces
        FROM events GROUP BY ALL ORDER BY events DESC, type"""))  # fmt: skip
    print_table("Events by source", query(con, """
        SELECT coalesce(source, '(none)') AS source, count(*) AS events
        FROM events GROUP BY ALL ORDER BY events DESC, source"""))  # fmt: skip
    print_table("Rejected records", query(con, """
        SELECT reason, count(*) AS records, min(origin) AS first_at
        FROM rejects GROUP BY ALL ORDER BY records DESC, reason"""))  # fmt: skip


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True)
@db_option(read_only=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", *(f.name for f in FORMATS)]),
    default="auto",
    help="Read every file as this format; auto detects each file's format from its first 64 KiB.",
)
@progress_option
@verbose_option
def ingest_command(paths: tuple[str, ...], db: str, fmt: str, progress: bool | None) -> None:
    """Load trace files, folders (recursively) or quoted globs into the database.

    Idempotent: a file whose bytes were loaded before is skipped. Records that cannot be
    converted go to the `rejects` table with their file, line and reason.
    """
    files = files_to_load(paths)
    with open_db(db, read_only=False) as con:
        result = ingest_files(
            con, files, None if fmt == "auto" else fmt, progress_display(progress)
        )
        click.echo(result.to_string(index=False))
        print_summary(con)


@click.command("serve")
@db_option(read_only=False)
@click.option("--port", default=4318, show_default=True, type=click.IntRange(0, 65535),
              help="The TCP port (OTLP/HTTP's is 4318; 0 picks a free one).")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on (0.0.0.0 accepts any client: no authentication).")  # fmt: skip
@click.option("--grpc-port", type=click.IntRange(0, 65535), default=None,
              help="Also serve OTLP/gRPC on this port (OTLP/gRPC's is 4317; needs the [grpc] extra).")  # fmt: skip
@click.option("--every", default=5.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds between progress lines on stderr.")  # fmt: skip
@verbose_option
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
    with open_db(db, read_only=False) as con:
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
