"""MAST failure classification: the taxonomy as data, offline rules, a judge protocol, agreement
with human labels, failure attribution and breakdowns for charts."""

from toolkit.classify.agreement import agreement, reference_labels
from toolkit.classify.attribution import attribute_failure, attribution_accuracy
from toolkit.classify.breakdown import failure_breakdown
from toolkit.classify.classify import RULE_MODES, classify
from toolkit.classify.judge import build_prompt, parse_answer
from toolkit.classify.taxonomy import CATEGORIES, TAXONOMY, taxonomy_frame

__all__ = ["CATEGORIES", "RULE_MODES", "TAXONOMY", "agreement", "attribute_failure",
           "attribution_accuracy", "build_prompt", "classify", "failure_breakdown",
           "parse_answer", "reference_labels", "taxonomy_frame"]  # fmt: skip
