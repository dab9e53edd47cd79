"""MAST failure classification: the taxonomy as data, offline rules, a judge protocol, agreement."""

from toolkit.classify.classify import RULE_MODES, classify
from toolkit.classify.taxonomy import CATEGORIES, TAXONOMY, taxonomy_frame

__all__ = ["CATEGORIES", "RULE_MODES", "TAXONOMY", "classify", "taxonomy_frame"]
