"""The command line: a thin shell over the library, with one-line errors and exit codes."""

from __future__ import annotations

import subprocess
import sys

import click
import pandas as pd
import pytest

import toolkit
from tests.conftest import DATA
from toolkit.cli import cli, main

SAMPLES = str(DATA / "samples")


def toolkit_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """Run `toolkit ARGS` in another process (as `python -m toolkit.cli`)."""
    return subprocess.run([sys.executable, "-m", "toolkit.cli", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)  # fmt: skip


@pytest.fixture
def db(tmp_path):
    """A database file holding the bundled samples."""
    path = tmp_path / "t.duckdb"
    con = toolkit.connect(path)
    toolkit.ingest(con, SAMPLES)
    con.close()
    return str(path)


@pytest.fixture
def empty_db(tmp_path):
    path = tmp_path / "empty.duckdb"
    toolkit.connect(path).close()
    return str(path)


def test_simulate_then_ingest(tmp_path, capsys):
    sim = str(tmp_path / "sim")
    assert main(["simulate", sim, "--traces", "20", "--seed", "1", "--fault", "late=0.5"]) == 0
    truth = pd.read_csv(tmp_path / "sim" / "truth.csv")
    assert set(truth["kind"]) == {"late"}
    assert main(["ingest", f"{sim}/events.jsonl", "--db", str(tmp_path / "t.duckdb")]) == 0
    out = capsys.readouterr().out
    assert "Events by type" in out and "tool.responded" in out


def test_a_file_in_a_folder_that_cannot_be_read_gets_a_row_and_the_rest_loads(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jsonl").write_bytes((DATA / "samples" / "support_desk.jsonl").read_bytes())
    (folder / "dangling.jsonl").symlink_to(tmp_path / "missing")
    assert main(["ingest", str(folder), "--db", str(tmp_path / "t.duckdb")]) == 0
    out = capsys.readouterr().out
    assert "dangling symbolic link" in out and "loaded" in out


def test_simulate_clean(tmp_path):
    assert main(["simulate", str(tmp_path), "--traces", "5", "--clean"]) == 0
    assert pd.read_csv(tmp_path / "truth.csv").empty


# argv (DB: the database with the samples, EMPTY: one without events, TMP: a fresh folder),
# exit code, what the one line on stderr says
ERRORS = [
    (["ingest", "TMP/nope.json", "--db", "TMP/new.duckdb"], 1,
     ["no such file, folder or glob match: ", "nope.json", "Hint: check the path"]),
    (["ingest", SAMPLES, "--db", "TMP/new.duckdb", "--format", "xml"], 2,
     ["'xml' is not one of", "'cloudevents'", "'zipkin'", "Hint: see `toolkit ingest --help`"]),
    (["report", "--db", "TMP/missing.duckdb", "--out", "TMP/r.html"], 1,
     ["no database at ", "missing.duckdb", "Hint: load traces first: `toolkit ingest FILES --db"]),
    (["report", "--db", "EMPTY", "--out", "TMP/r.html"], 1,
     ["empty.duckdb holds no events: no report to write", "Hint: load traces first"]),
    (["findings", "--db", "EMPTY"], 1, ["holds no events: no findings", "Hint: load traces"]),
    (["findings", "--db", "DB", "--kind", "oops"], 2, ["'oops' is not one of", "'late'"]),
    (["export", "TMP/out.xlsx", "--db", "DB"], 1,
     ["cannot tell the format of", "Hint: name the file .parquet or .csv"]),
    (["export", "TMP/out.csv", "--db", "DB", "--format", "xml"], 2,
     ["'xml' is not one of 'auto', 'parquet', 'csv'"]),
    (["export", "TMP/out.csv", "--db", "DB", "--table", "secrets"], 2, ["'secrets' is not one of"]),
    (["simulate", "TMP/s", "--fault", "bogus=1"], 2, ["expected KIND=RATE", "idempotency_violation"]),
    (["simulate", "TMP/s", "--fault", "late=0.1", "--clean"], 1, ["contradict"]),
    (["simulate", "TMP/s", "--traces", "0"], 2, ["--traces", "0"]),
    (["nonsense"], 2, ["No such command 'nonsense'", "Hint: see `toolkit --help`"]),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "code", "says"), ERRORS, ids=lambda v: None)
def test_errors_are_one_line_with_a_hint(tmp_path, capsys, db, empty_db, argv, code, says):
    names = {"DB": db, "EMPTY": empty_db}
    argv = [names.get(a, a.replace("TMP", str(tmp_path))) for a in argv]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("Error: ") and "Traceback" not in err and ".. Hint" not in err
    for text in says:
        assert text in err
    assert not (tmp_path / "new.duckdb").exists()  # nothing created on the way to the error


def test_python_dash_m_toolkit_is_the_toolkit_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "toolkit", "--help"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert out.startswith("Usage: toolkit ") and "ingest" in out


def test_verbose_prints_the_traceback(tmp_path, capsys):
    assert (
        main(["-v", "ingest", str(tmp_path / "nope.json"), "--db", str(tmp_path / "t.duckdb")]) == 1
    )
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "FileNotFoundError" in err
    assert err.strip().splitlines()[-1].startswith("Error: no such file")


def test_verbose_also_after_the_command(tmp_path, capsys):
    assert main(["report", "--db", str(tmp_path / "x.duckdb"), "--verbose"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_every_option_has_help_and_shows_its_default():
    for name, command in cli.commands.items():
        assert command.help, name
        ctx = click.Context(command, info_name=name, show_default=True)
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                record = param.get_help_record(ctx)
                assert record is not None and param.help, f"toolkit {name} {param.opts[0]}"
                if not (param.is_flag or param.multiple) and param.default is not None:
                    assert "default: " in record[1], record
                if isinstance(param.type, click.Choice):
                    assert "|".join(map(str, param.type.choices)) in record[0], record


@pytest.mark.parametrize(
    ("command", "choices"),
    [("ingest", "[auto|parquet|adamast|mast|"), ("export", "[auto|parquet|csv|"),
     ("findings", "[table|csv|jsonl]")],
)  # fmt: skip
def test_format_lists_its_choices_and_default(command, choices, capsys):
    assert main([command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert choices in out and "[default: " in out and "TOOLKIT_DB" in out


def test_findings_table_csv_and_jsonl(db, capsys):
    assert main(["findings", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "findings in" in out and "idempotency_violation" in out
    assert main(["findings", "--db", db, "--format", "csv", "--kind", "late"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "trace_id,event_id,kind,severity,detail" and len(rows) > 1
    assert all(",late," in r for r in rows[1:])
    assert main(["findings", "--db", db, "--format", "jsonl", "--summary"]) == 0
    assert '"system"' in capsys.readouterr().out


@pytest.mark.parametrize("table", ["events", "traces", "findings"])
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export(tmp_path, db, table, fmt, capsys):
    out = tmp_path / f"x.{fmt}"
    assert main(["export", str(out), "--db", db, "--table", table]) == 0
    df = pd.read_parquet(out) if fmt == "parquet" else pd.read_csv(out)
    con = toolkit.connect(db, read_only=True)
    expected = len(toolkit.findings(con)) if table == "findings" else len(toolkit.query(con, f"SELECT * FROM {table}"))  # fmt: skip
    con.close()
    assert len(df) == expected > 0
    assert f"wrote {expected} rows of {table}" in capsys.readouterr().out


def test_exported_events_ingest_back(tmp_path, db):
    assert main(["export", str(tmp_path / "e.parquet"), "--db", db]) == 0
    again = tmp_path / "again.duckdb"
    assert main(["ingest", str(tmp_path / "e.parquet"), "--db", str(again)]) == 0
    counts = [toolkit.query(toolkit.connect(p, read_only=True), "SELECT count(*) AS n FROM events")["n"][0]
              for p in (db, again)]  # fmt: skip
    assert counts[0] == counts[1] > 0


def test_classify_stores_annotations(db, capsys):
    assert main(["classify", "--db", db]) == 0
    assert "annotations (annotator 'rules')" in capsys.readouterr().out


def test_report_without_and_with_classify(tmp_path, db, capsys):
    assert main(["report", "--db", db, "--out", str(tmp_path / "r.html")]) == 0
    out, err = capsys.readouterr()
    assert "wrote " in out and "add --classify" in err
    assert (tmp_path / "r.html").stat().st_size > 100_000
    assert main(["report", "--db", db, "--out", str(tmp_path / "r2.html"), "--classify"]) == 0
    assert "add --classify" not in capsys.readouterr().err
    con = toolkit.connect(db, read_only=True)
    assert (
        toolkit.query(con, "SELECT count(*) AS n FROM annotations WHERE annotator = 'rules'")["n"][
            0
        ]
        > 0
    )
    con.close()


def test_progress_by_file_bytes_and_phase(tmp_path, capsys):
    db = str(tmp_path / "t.duckdb")
    assert main(["ingest", SAMPLES, "--db", db, "--progress"]) == 0
    err = capsys.readouterr().err
    assert "ingest 1/6 " in err and "ingest 6/6 " in err and " KB): " in err
    assert main(["report", "--db", db, "--out", str(tmp_path / "r.html"), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "derive the analyses' tables: " in err and "findings, charts, HTML: " in err
    assert main(["ingest", SAMPLES, "--db", db, "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_progress_line_counts_bytes_while_a_file_loads():
    """The live line (on a terminal) shows the bytes read of the file and of all files."""
    import io
    import time

    from toolkit.cli.progress import Progress

    shown = Progress(True, stream=io.StringIO())
    with shown.phase("ingest 2/3 big.jsonl", size=4000, reads=2, done=1000, total=9000):
        (DATA / "samples" / "jaeger_genaiTestTrace.json").read_bytes()  # 60 KB: past 8000 B
        time.sleep(0.01)
        line = shown._line()
    assert line.startswith("ingest 2/3 big.jsonl: 0 s") and "100% of 4.0 KB" in line
    assert "5.0 KB of 9.0 KB in all" in line


def test_a_reader_and_report_share_the_file_a_writer_is_told_who_holds_it(db, holder, tmp_path):
    reader = holder(db, "ro")  # a notebook exploring the database, read-only
    done = toolkit_cli("report", "--db", db, "--out", str(tmp_path / "r.html"))
    assert done.returncode == 0, done.stderr
    assert "wrote " in done.stdout and (tmp_path / "r.html").exists()
    assert toolkit_cli("findings", "--db", db).returncode == 0
    blocked = toolkit_cli("ingest", SAMPLES, "--db", db)
    assert blocked.returncode == 1 and len(blocked.stderr.strip().splitlines()) == 1
    assert f"is in use by {sys.executable}".split("/")[0] in blocked.stderr
    assert f"(PID {reader.pid}), which reads it" in blocked.stderr
    assert "Hint: a writer must wait for readers" in blocked.stderr


def test_a_reader_is_told_who_writes(db, holder, capsys):
    writer = holder(db, "rw")  # a notebook that opened the file for writing
    assert main(["findings", "--db", db]) == 1
    err = capsys.readouterr().err
    assert f"(PID {writer.pid}), which opened it for writing" in err
    assert "toolkit.connect(path, read_only=True)" in err


@pytest.mark.slow
def test_demo_writes_everything_into_the_named_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing is written outside OUT_DIR
    assert main(["demo", "out", "--traces", "10", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "zipkin" in out and "Report: " in out
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"sim", "traces.duckdb", "report.html"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_make_lab_is_headless_and_runs_as_root():
    dry = subprocess.run(["make", "-n", "lab"], capture_output=True, text=True, cwd=DATA.parent)
    command = " ".join(dry.stdout.split())
    assert "jupyter lab --no-browser" in command and "--allow-root" in command
    assert "URL printed below" in command
