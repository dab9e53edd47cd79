"""Commands that write the database out to a file: ``report`` (one HTML page to explore, for
people) and ``export`` (tables as Parquet or CSV, the event log as XES or OCEL 2.0, for other
programs)."""

from __future__ import annotations

from pathlib import Path

import click

from toolkit.cli.common import (
    CliError,
    db_option,
    filter_options,
    open_db,
    progress_display,
    progress_option,
    require_events,
    verbose_option,
)
from toolkit.cli.progress import human_bytes
from toolkit.db import query

TABLES = ["events", "traces", "annotations", "rejects", "ingests", "findings"]


@click.command("export")
@click.argument("out", type=click.Path(dir_okay=False))
@db_option(read_only=True)
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
@filter_options
@verbose_option
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
    with open_db(db, read_only=True) as con:
        require_events(con, db, "rows to export")
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


@click.command("report")
@db_option(read_only=True)
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
@progress_option
@verbose_option
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

    shown = progress_display(progress)
    with open_db(db, read_only=not run_classify) as con:
        require_events(con, db, "report to write")
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
