"""The ``simulate`` command: seeded multi-agent runs with injected faults and their ground
truth, written as files for ``ingest``."""

from __future__ import annotations

import click

from toolkit.cli.common import CliError, verbose_option
from toolkit.simulate import FAULT_KINDS


def _parse_faults(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict:
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


@click.command("simulate")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--traces", default=100, type=click.IntRange(1), help="Runs to simulate.")
@click.option("--seed", default=0, help="The seed (the same seed writes the same bytes).")
@click.option(
    "--fault", "faults", multiple=True, callback=_parse_faults, metavar="KIND=RATE",
    help=f"A fault rate per trace (repeatable); KIND: {', '.join(FAULT_KINDS)}.  "
    "[default: the documented default rates]",
)  # fmt: skip
@click.option("--clean", is_flag=True, help="No faults at all.")
@verbose_option
def simulate_command(out_dir: str, traces: int, seed: int, faults: dict, clean: bool) -> None:
    """Write simulated multi-agent runs (OUT_DIR/events.jsonl) and their ground truth (truth.csv)."""
    from toolkit.simulate import simulate

    if faults and clean:
        raise CliError("--fault and --clean contradict each other", "pass one of them")
    out = simulate(out_dir, traces=traces, seed=seed, faults={} if clean else faults or None)
    click.echo(f"wrote {out['events_written']} events of {out['traces']} traces to {out['events']}")
    click.echo(f"wrote {out['findings']} ground-truth findings to {out['truth']}")
