"""Every notebook runs from top to bottom on the bundled data (outputs are checked elsewhere:
tests/test_packaging.py fails when a committed notebook has outputs)."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# The walkthroughs that open with one parameters cell naming the data (DATA, SIM_TRACES...).
PARAMETERISED = ["01_quickstart.ipynb", "02_event_graphs.ipynb", "03_latency.ipynb",
                 "04_unhandled_and_duplicates.ipynb"]  # fmt: skip


def test_the_notebooks_are_there():
    assert set(PARAMETERISED) <= {nb.name for nb in NOTEBOOKS}


@pytest.mark.parametrize("name", PARAMETERISED)
def test_notebook_starts_with_one_parameters_cell(name):
    path = ROOT / "notebooks" / name
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].cell_type == "code" and "DATA =" in cells[0].source
    assert sum("parameters" in c.metadata.get("tags", []) for c in cells) == 1


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path):
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(
        book, timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )  # fmt: skip
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in book.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
