"""Shared fixtures: an empty database (`con`) and one loaded with the bundled samples (`loaded_con`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import toolkit

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Real trace files written by others: byte copies in the repository (data/real, with their
# licences), else the shared folder beside the checkout (see ../shared/data/README.md).
BUNDLED = DATA / "real"
SHARED = Path(os.environ.get("TOOLKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared(*parts: str) -> Path:
    """A real data file or folder: the copy in data/real, else the one in the shared folder.

    Skips the test when neither has it; in CI (``CI`` set) fails instead, because a test that
    needs a file the repository lacks does not run on a clone: copy the file into data/real,
    with its licence and provenance.
    """
    for base in (BUNDLED, SHARED):
        path = base.joinpath(*parts)
        if path.exists():
            if os.environ.get("CI") and base != BUNDLED:
                pytest.fail(f"{Path(*parts)} is not in data/real: copy it there (with its licence)")
            return path
    if os.environ.get("CI"):
        pytest.fail(f"real data missing in CI: {Path(*parts)} is in neither {BUNDLED} nor {SHARED}")
    pytest.skip(f"real data not available: {Path(*parts)} is in neither {BUNDLED} nor {SHARED}")


@pytest.fixture
def con():
    """An empty in-memory database with the schema applied."""
    c = toolkit.connect()
    yield c
    c.close()


@pytest.fixture
def loaded_con(con):
    """A database holding the bundled sample traces under data/."""
    toolkit.ingest(con, DATA / "samples")
    return con


_HOLD = """
import sys, time, toolkit
con = toolkit.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
toolkit.findings(con)  # like a notebook exploring the file: temporary tables, no writes
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """Start a process holding a database file (``"ro"`` read-only, ``"rw"`` for writing) that
    keeps it open until the test ends; returns the process."""
    procs = []

    def start(path, mode):
        proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(path), mode],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
