"""The command line: a thin shell over the library."""

from __future__ import annotations

import pandas as pd

from toolkit.cli import main


def test_simulate_then_ingest(tmp_path, capsys):
    assert (
        main(
            [
                "simulate",
                str(tmp_path / "sim"),
                "--traces",
                "20",
                "--seed",
                "1",
                "--fault",
                "late=0.5",
            ]
        )
        == 0
    )
    truth = pd.read_csv(tmp_path / "sim" / "truth.csv")
    assert set(truth["kind"]) == {"late"}
    assert (
        main(["ingest", str(tmp_path / "sim" / "events.jsonl"), "--db", str(tmp_path / "t.duckdb")])
        == 0
    )
    out = capsys.readouterr().out
    assert "Events by type" in out and "tool.responded" in out


def test_simulate_clean(tmp_path):
    assert main(["simulate", str(tmp_path), "--traces", "5", "--clean"]) == 0
    assert pd.read_csv(tmp_path / "truth.csv").empty
