"""Commands that ask the database questions and print the answers: ``findings`` (where the
event flow snaps) and ``classify`` (MAST failure modes, stored as annotations)."""

from __future__ import annotations

import click
import duckdb

from toolkit.analyze import FINDING_KINDS
from toolkit.cli.common import (
    db_option,
    filter_options,
    open_db,
    print_table,
    progress_display,
    progress_option,
    require_events,
    verbose_option,
)


def print_modes(con: duckdb.DuckDBPyConnection) -> None:
    """Print the MAST failure modes the rules found: traces per mode and share of flags."""
    from toolkit.classify import failure_breakdown

    breakdown = failure_breakdown(con, group_by="all")
    found = breakdown[breakdown["traces"].fillna(0) > 0]
    print_table(
        "MAST failure modes found by the rules (traces; share of flags)",
        found[["category", "mode", "mode_name", "traces", "flag_share"]]
        .astype({"traces": int})
        .round(3),
    )


@click.command("findings")
@db_option(read_only=True)
@filter_options
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
@progress_option
@verbose_option
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

    with open_db(db, read_only=True) as con:
        require_events(con, db, "findings")
        with progress_display(progress).phase("findings"):
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
        print_table(f"{len(df)} {what}{traces} ({db})", df, limit=limit)


@click.command("classify")
@db_option(read_only=False)
@filter_options
@progress_option
@verbose_option
def classify_command(
    db: str, system: str | None, trace_id: str | None, progress: bool | None
) -> None:
    """Classify runs by MAST failure mode with the offline rules; store them as annotations.

    A re-run replaces the rules' earlier annotations of the same traces. An LLM judge is
    available from Python: toolkit.classify(con, judge=...).
    """
    from toolkit.classify import classify

    with open_db(db, read_only=False) as con:
        require_events(con, db, "runs to classify")
        with progress_display(progress).phase("classify"):
            found = classify(con, system=system, trace_id=trace_id)
        click.echo(f"stored {len(found)} annotations (annotator 'rules') in {db}")
        print_modes(con)
