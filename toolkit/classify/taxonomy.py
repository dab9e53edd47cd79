"""The MAST failure taxonomy as data: 14 modes in 3 categories, with our own definitions.

Source: Cemri et al., "Why Do Multi-Agent LLM Systems Fail?", arXiv:2503.13657. The definitions in
``mast_taxonomy.json`` are paraphrased in our words; the prevalence figures are the paper's (v3)
shares of *all failure flags* over its 1,642 traces, kept as reference data.

FM-3.2 / FM-3.3: we use the paper v3 meaning. FM-3.2 is *no or incomplete verification* (a check
is missing or partial), FM-3.3 is *incorrect verification* (a check ran and wrongly passed). MAST's
``definitions.txt`` and its judge prompt swap the two names (MAST issue #12).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import pandas as pd


@dataclass(frozen=True)
class Category:
    """A MAST category (FC1-FC3)."""

    id: str
    name: str
    definition: str
    prevalence_pct: float


@dataclass(frozen=True)
class Mode:
    """A MAST failure mode (FM-1.1 ... FM-3.3)."""

    id: str
    category: str
    name: str
    definition: str
    prevalence_pct: float


def _load() -> dict:
    return json.loads(
        resources.files("toolkit.classify").joinpath("mast_taxonomy.json").read_text()
    )


_DOC = _load()
SOURCE: str = _DOC["source"]
VERIFICATION_NAMING: str = _DOC["verification_naming"]
CATEGORIES: dict[str, Category] = {c["id"]: Category(**c) for c in _DOC["categories"]}
TAXONOMY: dict[str, Mode] = {m["id"]: Mode(**m) for m in _DOC["modes"]}
MODES: tuple[str, ...] = tuple(TAXONOMY)


def taxonomy_frame() -> pd.DataFrame:
    """The taxonomy as a table, one row per mode in code order.

    Returns:
        Columns ``mode``, ``mode_name``, ``category``, ``category_name``, ``definition``,
        ``prevalence_pct`` (the paper's share of all flags, in percent).
    """
    return pd.DataFrame(
        [
            {
                "mode": m.id,
                "mode_name": m.name,
                "category": m.category,
                "category_name": CATEGORIES[m.category].name,
                "definition": m.definition,
                "prevalence_pct": m.prevalence_pct,
            }
            for m in TAXONOMY.values()
        ]
    )
