"""Shared fixtures: an empty database (`con`) and one loaded with the bundled samples (`loaded_con`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import toolkit

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Real trace files written by others, beside the checkout (see ../shared/data/README.md).
SHARED = Path(os.environ.get("TOOLKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared(*parts: str) -> Path:
    """A path under the shared data folder; skips the test when that folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"shared data missing in CI: {path}")
        pytest.skip(f"shared data not available: {path}")
    return path


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
