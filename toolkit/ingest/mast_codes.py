"""The MAD human file's old failure-mode codes, mapped to the final 14 MAST codes (as data).

Early annotation rounds of ``MAD_human_labelled_dataset.json`` used another numbering (and four
modes the final taxonomy dropped). The table below is the compiled map
``../shared/data/mast/mad_human_round_code_map.json``, built by matching the definition text of
each "failure mode" string across rounds (see MAST GitHub issue #18). FM-3.2 (no or incomplete
verification) carries the old "Lack of result verification" text, FM-3.3 (incorrect
verification) "Lack of critical verification".
"""

from __future__ import annotations

# Old code -> final code, per round (the map's "map" entries, read by round).
CODE_MAP: dict[str, dict[str, str]] = {
    "Round 1": {
        "1.1": "1.1",
        "2.6": "1.2",
        "2.2": "1.3",
        "2.3": "1.4",
        "1.5": "1.5",
        "2.4": "2.1",
        "1.4": "2.2",
        "2.5": "2.3",
        "3.2": "2.4",
        "3.3": "2.5",
        "1.2": "2.6",
        "4.1": "3.1",
        "4.2": "3.2",
        "4.3": "3.3",
    },
    "Round 2/3": {
        "1.1": "1.1",
        "1.7": "1.2",
        "1.5": "1.3",
        "1.6": "1.4",
        "1.3": "1.5",
        "2.1": "2.1",
        "2.2": "2.2",
        "2.3": "2.3",
        "2.6": "2.4",
        "2.7": "2.5",
        "1.2": "2.6",
        "3.1": "3.1",
        "3.3": "3.2",
        "3.2": "3.3",
    },
}
# Codes of modes the final taxonomy dropped (same source, "dropped_in_final_taxonomy").
DROPPED: dict[str, set[str]] = {
    "Round 1": {"1.3", "2.1", "3.1", "3.4"},
    "Round 2/3": {"2.4", "1.4", "2.5"},
}
FINAL_CODES = (
    "1.1",
    "1.2",
    "1.3",
    "1.4",
    "1.5",
    "2.1",
    "2.2",
    "2.3",
    "2.4",
    "2.5",
    "2.6",
    "3.1",
    "3.2",
    "3.3",
)
_ROUND_TABLE = {"Round 1": "Round 1", "Round 2": "Round 2/3", "Round 3": "Round 2/3"}


def final_code(round_name: str | None, code: str) -> str | None:
    """The final MAST code (``"2.6"``) for ``code`` as written in ``round_name``; None if dropped.

    Raises:
        KeyError: the code is unknown for that round.
    """
    table = _ROUND_TABLE.get(round_name or "")
    if table is None:  # the final round and the full dataset use the final codes
        if code not in FINAL_CODES:
            raise KeyError(code)
        return code
    if code in DROPPED[table]:
        return None
    return CODE_MAP[table][code]
