"""The bundled samples: each is registered with provenance and loads as its registered format."""

from __future__ import annotations

import json

import toolkit
from tests.conftest import DATA


def test_every_sample_is_registered_and_loads_as_its_format():
    registry = json.loads((DATA / "samples.json").read_text())
    files = {p.name for p in (DATA / "samples").iterdir()}
    assert files == {entry["path"].split("/")[-1] for entry in registry.values()}
    readme = (DATA / "README.md").read_text()
    for name, entry in registry.items():
        assert (
            entry["provenance"] and entry["licence"] and entry["path"].split("/")[-1] in readme
        ), name
        con = toolkit.connect()
        result = toolkit.ingest(con, DATA / entry["path"])
        assert result.loc[0, "format"] == entry["format"], name
        assert result.loc[0, "rows"] > 0, name
