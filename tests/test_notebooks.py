"""Every notebook runs from top to bottom on the repository alone (outputs are checked elsewhere:
tests/test_packaging.py fails when a committed notebook has outputs)."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# Every notebook opens with one parameters cell naming the data (DATA, SIM_TRACES...).
PARAMETERISED = ["01_quickstart.ipynb", "02_event_graphs.ipynb", "03_latency.ipynb",
                 "04_unhandled_and_duplicates.ipynb", "05_failure_breakdown.ipynb",
                 "06_real_framework_run.ipynb", "07_live.ipynb"]  # fmt: skip


def run(book: nbformat.NotebookNode, folder) -> None:
    client = NotebookClient(
        book, timeout=180, kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )  # fmt: skip
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in book.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []


def test_the_notebooks_are_there():
    assert set(PARAMETERISED) == {nb.name for nb in NOTEBOOKS}


@pytest.mark.parametrize("name", PARAMETERISED)
def test_notebook_starts_with_one_parameters_cell(name):
    path = ROOT / "notebooks" / name
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].cell_type == "code" and "DATA =" in cells[0].source
    assert sum("parameters" in c.metadata.get("tags", []) for c in cells) == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_reads_only_the_repository(path):
    """A clone has no ../shared: no notebook may reach outside the repository for data."""
    text = path.read_text()
    assert "../../" not in text and "shared/data" not in text and "TOOLKIT_SHARED_DATA" not in text


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path):
    run(nbformat.read(path, as_version=4), path.parent)


@pytest.mark.slow
def test_failure_breakdown_falls_back_to_simulated_runs(tmp_path):
    """Pointed at a folder without the real files, notebook 05 runs on simulated runs (no
    attribution labels: `attribution_accuracy` answers with an empty table)."""
    path = ROOT / "notebooks" / "05_failure_breakdown.ipynb"
    book = nbformat.read(path, as_version=4)
    book.cells[0].source = book.cells[0].source.replace(
        'Path("../data/real")', f"Path({str(tmp_path / 'missing')!r})"
    )
    assert "missing" in book.cells[0].source
    run(book, path.parent)
    shown = [o for c in book.cells for o in c.get("outputs", [])]
    assert any("sim" in str(o.get("data", {}).get("text/plain", "")) for o in shown)
    assert os.listdir(tmp_path) == []  # the notebook wrote nothing beside the data it was given
