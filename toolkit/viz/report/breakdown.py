"""The report's MAST section: how often each failure mode was flagged, per annotator."""

from __future__ import annotations

import html

import duckdb

from toolkit.analyze.contents import annotators, contents
from toolkit.classify.breakdown import failure_breakdown
from toolkit.viz.failures import plot_failure_breakdown
from toolkit.viz.report.page import Page


def add_failure_breakdown(page: Page, con: duckdb.DuckDBPyConnection, system: str | None) -> None:
    """Adds the MAST section: for two annotators (the offline rules first, then by annotations),
    the modes as bars and as a sunburst (per system when there are several); a note when nothing is classified,
    or when the breakdown fails (the report is still written)."""
    page.add('<h2 id="mast">Failure breakdown (MAST)</h2>')
    found = annotators(con, system=system)
    if found.empty:
        page.add(
            '<p class="note">No classification yet: no MAST annotations. Run '
            "<code>toolkit.classify(con)</code> or <code>toolkit report --classify</code> and "
            "build the report again.</p>"
        )
        return
    n_systems = int(contents(con)["systems"].iloc[0])
    for annotator in found["annotator"].head(2):
        try:
            table = failure_breakdown(
                con, group_by="system" if n_systems > 1 else "all", annotator=annotator
            )
            if system is not None and "group" in table.columns and n_systems > 1:
                table = table[table["group"] == system]
        except Exception as exc:  # the report must still be written; say what went wrong
            page.add(f'<p class="note">The failure breakdown failed: {html.escape(repr(exc))}</p>')
            return
        page.add(f"<p>Annotator <code>{html.escape(annotator)}</code>. Modes this annotator does "
                 "not assess are marked <i>not assessed</i>, not counted as zero.</p>")  # fmt: skip
        page.figure(plot_failure_breakdown(table, "bar"))
        page.figure(plot_failure_breakdown(table, "sunburst", basis="flags"))
