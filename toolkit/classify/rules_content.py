"""Rules that read MAST modes off message content: repeats, stop signals, resets, drift.

Hits have the shape of :mod:`toolkit.classify.rules_flow`'s. Measurable definitions:

* **near-identical** (FM-1.3): two messages of the same type from the same source (neither
  the span the other runs in: a parent span echoing its child is containment), the second
  within the source's next ``REPEAT_WINDOW`` messages, whose normalised text (lower case,
  punctuation and white space collapsed) is equal, or which have at least ``MIN_TOKENS`` word
  tokens, the same set of numbers and a word-token Jaccard similarity of at least
  ``REPEAT_JACCARD``. (Numbers must agree: "subtask 1" and "subtask 2" are different steps.)
* **stop signal** (FM-1.5): a message that ends with ``TERMINATE`` or says the task is
  complete, followed by further messages from agents; or a message saying a turn / round / step
  limit was reached.
* **reset** (FM-2.1): an event type naming a reset/restart, a message saying the conversation
  restarts ("let's start over", "conversation was reset"), or the first message of the trace
  sent again, word for word, by its sender (messages and log events only: a model call span
  carries the whole conversation so far, its first message included).
* **derailment** (FM-2.3): among *substantive* agent messages (at least ``DERAIL_MIN_TOKENS``
  content words), task coverage (the share of the task's content words a message uses) is below
  ``DERAIL_COVERAGE`` in every message of the last third, while the first third's mean coverage
  was at least twice that. Needs a task text and at least 6 substantive messages; short
  templated messages carry too little text for lexical similarity to mean anything.
"""

from __future__ import annotations

import re

import duckdb

from toolkit.analyze.scope import MESSAGES_SQL, Query, run, scoped
from toolkit.classify.rules_flow import Hit, _run

REPEAT_WINDOW = 5
REPEAT_JACCARD = 0.9
MIN_TOKENS = 4
STOP_TEXT = (
    r"(\bTERMINATE\W*$|(?i)\b(the |this |our )?task (is |has been )?(now )?(complete|completed|done)"
    r"\b)"
)
LIMIT_TEXT = (
    r"(?i)(max(imum)?[ _-]*(number of )?(turns?|rounds?|iterations?|steps?|auto[- ]?repl\w*)"
    r"( \(\d+\))? (reached|exceeded|hit)|reached (the )?max(imum)?[ _-]*(number of )?"
    r"(turns?|rounds?|iterations?|steps?|auto[- ]?repl\w*)|ran out of (turns|rounds|steps))"
)
RESET_TYPE = r"(?i)\b(reset|restart)"
RESET_TEXT = (
    r"(?i)\b((let'?s|let us|we('ll| will)?|i('ll| will)?) (start|begin) (over|again|afresh|from scratch)"
    r"|(conversation|chat|session|dialog(ue)?) (was |has been |is )?(reset|restarted)"
    r"|restart(ing)? the (conversation|chat|discussion|dialog(ue)?))"
)
DERAIL_MIN_TOKENS = 15
DERAIL_COVERAGE = 0.1
_STOP_WORDS = (
    "the a an and or of to in on for with by at from as is are was were be been this that "
    "these those it its into about than then there their they them we you your our can could "
    "should would will may might must have has had not no yes do does did what which who whom "
    "how when where why all any each some such only also just more most very please use using "
    "given"
)
_STOP = frozenset(_STOP_WORDS.split(" "))
# Messages: records with text. A span event (an exception, a log line on a span) is its
# span's record, not a message of its own.
_MESSAGES = (
    MESSAGES_SQL
    + """,
m AS (SELECT * FROM msg WHERE type <> 'log' AND content IS NOT NULL AND kind <> 'span_event')"""
)


def repetition_content(con: duckdb.DuckDBPyConnection) -> list[Hit]:
    """FM-1.3: near-identical messages repeated by one source (see the module docstring)."""
    ctes = [
        _MESSAGES,
        """tok AS (
            SELECT *, trim(regexp_replace(lower(content), '[^a-z0-9]+', ' ', 'g')) AS norm,
                   list_distinct(regexp_extract_all(lower(content), '[a-z0-9]+')) AS words,
                   list_sort(list_distinct(regexp_extract_all(content, '[0-9]+(?:[.,][0-9]+)*'))) AS nums,
                   row_number() OVER (PARTITION BY trace_id, source, type ORDER BY ts, seq) AS k
            FROM m WHERE source IS NOT NULL)""",
        """pair AS (
            SELECT a.trace_id, a.event_id AS first_id, b.event_id AS repeat_id, b.ts, b.seq,
                   a.source, CASE WHEN a.norm = b.norm THEN 1.0 ELSE
                       array_length(array_intersect(a.words, b.words))
                       / array_length(list_distinct(list_concat(a.words, b.words))) END AS sim
            FROM tok a JOIN tok b ON a.trace_id = b.trace_id AND a.source = b.source
                AND a.type = b.type AND b.k > a.k AND b.k <= a.k + $window
            -- a span that echoes the span inside it (its output is its child's) repeats nothing
            WHERE a.norm <> '' AND b.parent_span_id IS DISTINCT FROM a.event_id
              AND a.parent_span_id IS DISTINCT FROM b.event_id
              AND (a.norm = b.norm OR (
                array_length(a.words) >= $min_tokens AND array_length(b.words) >= $min_tokens
                AND a.nums = b.nums AND array_length(array_intersect(a.words, b.words))
                    >= $jaccard * array_length(list_distinct(list_concat(a.words, b.words))))))""",
    ]  # fmt: skip
    select = """
        SELECT trace_id, 'FM-1.3' AS mode,
               CASE WHEN min(sim) >= 1 THEN 0.7 ELSE 0.6 END AS confidence,
               list_distinct(flatten(list([first_id, repeat_id] ORDER BY ts, seq))) AS event_ids,
               count(DISTINCT repeat_id) || ' near-identical repeat(s) by '
                   || array_to_string(list_sort(list_distinct(list(source))), ', ') || ' (first: '
                   || arg_min(repeat_id, (ts, seq)) || ' repeats '
                   || arg_min(first_id, (ts, seq, first_id)) || ')' AS reason
        FROM pair GROUP BY trace_id ORDER BY trace_id
    """
    return _run(
        con, ctes, select, window=REPEAT_WINDOW, min_tokens=MIN_TOKENS, jaccard=REPEAT_JACCARD
    )


def termination_content(con: duckdb.DuckDBPyConnection) -> list[Hit]:
    """FM-1.5: agents carry on after a stop signal, or the run hits a turn/step limit."""
    ctes = [
        _MESSAGES,
        """stop AS (
            SELECT trace_id, arg_min(event_id, (ts, seq)) AS stop_id, min(ts) AS stop_ts,
                   min(seq) AS stop_seq
            FROM m WHERE regexp_matches(content, $stop) GROUP BY trace_id)""",
        """after AS (
            SELECT s.trace_id, s.stop_id, list(x.event_id ORDER BY x.ts, x.seq) AS ids
            FROM stop s JOIN m x ON x.trace_id = s.trace_id
                AND (x.ts > s.stop_ts OR (x.ts IS NOT DISTINCT FROM s.stop_ts AND x.seq > s.stop_seq))
            WHERE x.source IS NOT NULL AND lower(x.source) NOT IN ('user', 'human')
            GROUP BY ALL)""",
        """lim AS (
            SELECT trace_id, list(event_id ORDER BY ts, seq) AS ids FROM ev
            WHERE regexp_matches(coalesce(content, ''), $limit) GROUP BY trace_id)""",
    ]
    select = """
        SELECT trace_id, 'FM-1.5' AS mode, 0.6 AS confidence, event_ids, reason FROM (
            SELECT trace_id, list_concat([stop_id], ids) AS event_ids,
                   array_length(ids) || ' message(s) after the stop signal in ' || stop_id AS reason
            FROM after
            UNION ALL
            SELECT trace_id, ids, 'the run hit a turn/step limit (' || ids[1] || ')' FROM lim
        ) QUALIFY row_number() OVER (PARTITION BY trace_id ORDER BY reason) = 1
        ORDER BY trace_id
    """
    return _run(con, ctes, select, stop=STOP_TEXT, limit=LIMIT_TEXT)


def reset(con: duckdb.DuckDBPyConnection) -> list[Hit]:
    """FM-2.1: the conversation restarts (see the module docstring)."""
    ctes = [
        _MESSAGES,
        """first AS (
            SELECT trace_id, arg_min(event_id, (ts, seq)) AS first_id,
                   arg_min(source, (ts, seq)) AS first_source,
                   arg_min(content, (ts, seq)) AS first_content FROM m GROUP BY trace_id)""",
        """cue AS (
            SELECT m.trace_id, m.event_id, m.ts, m.seq, CASE
                WHEN regexp_matches(m.type, $rt) THEN 'a ' || m.type || ' event'
                WHEN regexp_matches(m.content, $rx) THEN 'a restart announced in ' || m.event_id
                ELSE 'the first message re-sent in ' || m.event_id END AS why
            FROM m JOIN first f USING (trace_id)
            WHERE m.event_id <> f.first_id AND (regexp_matches(m.type, $rt)
                OR regexp_matches(m.content, $rx)
                -- a model call re-sends the conversation so far by design: only messages count
                OR (m.kind IN ('event', 'message') AND m.source IS NOT DISTINCT FROM f.first_source
                    AND trim(lower(m.content)) = trim(lower(f.first_content))
                    AND length(trim(m.content)) > 0)))""",
    ]
    select = """
        SELECT trace_id, 'FM-2.1' AS mode, 0.6 AS confidence,
               list(event_id ORDER BY ts, seq) AS event_ids,
               'conversation reset: ' || arg_min(why, (ts, seq)) AS reason
        FROM cue GROUP BY trace_id ORDER BY trace_id
    """
    return _run(con, ctes, select, rt=RESET_TYPE, rx=RESET_TEXT)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2 and w not in _STOP}


def derailment(con: duckdb.DuckDBPyConnection) -> list[Hit]:
    """FM-2.3: substantive messages drift away from the task's words (see the docstring)."""
    base, params = scoped()
    select = """
        SELECT m.trace_id, m.event_id, m.content, t.task FROM m JOIN traces t USING (trace_id)
        WHERE t.task IS NOT NULL AND length(m.content) >= $min_chars
          AND lower(coalesce(m.source, '')) NOT IN ('user', 'human')
        ORDER BY m.trace_id, m.ts, m.seq"""
    params["min_chars"] = DERAIL_MIN_TOKENS * 3
    columns = ["trace_id", "event_id", "content", "task"]
    rows = run(con, Query([base, _MESSAGES], select, params, columns))
    hits = []
    for trace_id, g in rows.groupby("trace_id", sort=True):
        task = _words(str(g["task"].iloc[0]))
        if not task:
            continue
        cover = [
            (event_id, len(words & task) / len(task))
            for event_id, text in zip(g["event_id"], g["content"], strict=True)
            if len(words := _words(str(text))) >= DERAIL_MIN_TOKENS
        ]
        if len(cover) < 6:
            continue
        third = len(cover) // 3
        head = sum(c for _, c in cover[:third]) / third
        tail = cover[-third:]
        if all(c < DERAIL_COVERAGE for _, c in tail) and head >= 2 * DERAIL_COVERAGE:
            hits.append(
                {
                    "trace_id": trace_id,
                    "mode": "FM-2.3",
                    "confidence": 0.5,
                    "event_ids": [str(e) for e, _ in tail],
                    "reason": f"the last {len(tail)} substantive messages use < "
                    f"{DERAIL_COVERAGE:.0%} of the task's words (first third: {head:.0%})",
                }
            )
    return hits
