"""The ``demo`` command: the whole pipeline in one folder (simulate, ingest with the bundled
samples, findings, classify, report); it composes the other commands' steps."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from toolkit.cli.analyze import print_modes
from toolkit.cli.common import (
    open_db,
    print_table,
    progress_display,
    progress_option,
    verbose_option,
)
from toolkit.cli.load import files_to_load, ingest_files, print_summary


def samples_dir() -> Path:
    """The sample traces bundled with the package (``toolkit/samples``, with provenance)."""
    return Path(str(resources.files("toolkit").joinpath("samples")))


@click.command("demo")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--traces", default=200, type=click.IntRange(1), help="Simulated runs.")
@click.option(
    "--seed", default=7, help="The simulator's seed (the same seed writes the same runs)."
)
@click.option(
    "--report", "report_path", default=None, type=click.Path(dir_okay=False),
    help="Where to write the report [default: OUT_DIR/report.html].",
)  # fmt: skip
@progress_option
@verbose_option
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

    shown = progress_display(progress)
    root = Path(out_dir)
    db = root / "traces.duckdb"
    with shown.phase("simulate"):
        sim = simulate(root / "sim", traces=traces, seed=seed)
    click.echo(
        f"simulated {sim['traces']} runs ({sim['events_written']} events) into {root / 'sim'}"
    )
    with open_db(str(db), read_only=False) as con:
        files = files_to_load((str(sim["events"]), str(samples_dir())))
        result = ingest_files(con, files, None, shown)
        click.echo(f"\nIngested into {db}:")
        click.echo(result[["path", "format", "status", "rows", "rejected"]].to_string(index=False))
        print_summary(con)
        with shown.phase("findings"):
            found = summary(con)
        print_table("Where the event flow snaps (findings per system)", found, limit=20)
        with shown.phase("classify"):
            classify(con)
        print_modes(con)
        with shown.phase("report"):
            path = report(con, report_path or root / "report.html")
    click.echo(f"\nReport: {path.resolve()}")
    click.echo(f"Next: toolkit findings --db {db}   |   toolkit report --db {db} --out report.html")
