"""A clone is enough: the data the tests and notebooks read is committed, the copies are true,
and the installed package runs the demo without the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import BUNDLED, ROOT, SHARED


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def tracked():
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    return set(git("ls-files", "-z").split("\0")) - {""}


@pytest.mark.parametrize("folder", ["data/real", "toolkit/samples", "notebooks"])
def test_what_tests_and_notebooks_read_is_committed(tracked, folder):
    on_disk = {str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*")
               if p.is_file() and ".ipynb_checkpoints" not in p.parts}  # fmt: skip
    assert on_disk and on_disk <= tracked, sorted(on_disk - tracked)[:5]


def test_every_copy_keeps_its_licence():
    for folder, licence in [(".", "LICENSE-who_and_when.md"), ("agentrx", "LICENSE.txt"),
                            ("tau_bench", "LICENSE"), ("mast", "PROVENANCE.md"),
                            ("traces", "PROVENANCE.md")]:  # fmt: skip
        assert (BUNDLED / folder / licence).is_file(), folder
    assert "CC-BY-4.0" in (BUNDLED / "README.md").read_text()


def test_copies_match_the_originals():
    """Byte copies of ../shared/data (when it is here): never edited to make a reader pass."""
    if not SHARED.is_dir():
        pytest.skip(f"no shared data to compare with at {SHARED}")
    ours = [p for p in BUNDLED.rglob("*") if p.is_file()]
    added = {BUNDLED / "README.md", BUNDLED / "LICENSE-who_and_when.md"}
    compared = 0
    for path in ours:
        if path in added:
            continue
        original = SHARED / path.relative_to(BUNDLED)
        assert original.is_file() and original.read_bytes() == path.read_bytes(), path
        compared += 1
    assert compared > 300


@pytest.mark.slow
def test_installed_package_runs_the_demo(tmp_path):
    """`toolkit demo` from a wheel, away from the checkout: samples come as package data."""
    wheel = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert wheel.returncode == 0, wheel.stderr
    (built,) = (tmp_path / "dist").glob("toolkit-*.whl")
    site = tmp_path / "site"
    shutil.unpack_archive(built, site, format="zip")
    assert (site / "toolkit" / "samples" / "support_desk.jsonl").is_file()
    work = tmp_path / "work"
    work.mkdir()
    env = os.environ | {"PYTHONPATH": str(site)}
    run = subprocess.run(
        [sys.executable, "-c",
         "import sys, toolkit; assert toolkit.__file__.startswith(sys.argv[1]), toolkit.__file__; "
         "from toolkit.cli import main; sys.exit(main(['demo', 'demo', '--traces', '10']))",
         str(site)],
        capture_output=True, text=True, cwd=work, env=env, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "support_desk" in run.stdout and (work / "demo" / "report.html").is_file()
