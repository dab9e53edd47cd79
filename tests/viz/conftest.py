"""Fixtures for the chart and report tests: the system Chromium, or a skip (a failure in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def chromium() -> Path:
    """The headless browser the browser tests drive; skips locally when it is missing."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing in CI: run `make browser`")
        pytest.skip(f"{CHROMIUM} not installed (make browser)")
    return CHROMIUM
