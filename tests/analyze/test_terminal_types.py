"""Terminal types learnt once: the detectors that read a frame of them find what they find when
each learns the types in its own statement."""

from __future__ import annotations

import pandas as pd
import pytest

import toolkit
from tests.conftest import DATA, FIXTURES
from toolkit.analyze.delivery import late_events_query
from toolkit.analyze.flow import hangs_query, unhandled_events_query
from toolkit.analyze.scope import known_terminal_types, run

QUERIES = {"unhandled_events": unhandled_events_query, "late_events": late_events_query,
           "hangs": hangs_query}  # fmt: skip
SOURCES = {"samples": DATA / "samples", "chat log": FIXTURES / "mast" / "mad_full_sample.json"}


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_a_frame_of_the_learnt_types_gives_the_same_rows(con, name, source):
    toolkit.ingest(con, SOURCES[source])
    learnt = known_terminal_types(con, None)
    assert list(learnt.columns) == ["sys", "type"]
    assert learnt.empty == (source == "chat log")  # a chat log's last speaker varies
    pd.testing.assert_frame_equal(run(con, QUERIES[name](terminal_types=learnt)),
                                  run(con, QUERIES[name]()))  # fmt: skip


def test_declared_types_are_passed_through(con):
    assert known_terminal_types(con, ["task.completed"]) == ["task.completed"]
