"""CloudEvents 1.0, JSON structured mode: one event per line (JSONL) or a JSON array (batch).

The native format of the toolkit. The conversion runs inside DuckDB: the file is read once,
split into lines (or array items), parsed once per record, validated and mapped in SQL.

Mapping (CloudEvents attribute -> ``events`` column):

===================  ==================================================================
``id``               ``event_id`` (required, non-empty string)
``source``           ``source`` (required, non-empty string)
``type``             ``type`` (required, non-empty string)
``specversion``      checked (must be ``"1.0"``), not stored
``time``             ``ts`` (RFC 3339; optional)
``data``             ``content``: the string itself, or the JSON text of structured data
``traceid``          ``trace_id``; absent: ``correlationid``, else ``source``
``causationid``      ``parent_id`` (the event this one reacts to)
``correlationid``    ``correlation_id``
``idempotencykey``   ``idempotency_key``
``target``           ``target`` (the addressee)
``status``           ``status``
``endtime``          ``end_ts`` (RFC 3339; for events with a duration)
``system``           ``traces.system`` (first value seen in the trace)
``task``             ``traces.task``
``parenttraceid``    ``attrs.parent_trace_id``: the trace of the ``causationid`` event, when
                     that event belongs to another trace (a link across traces)
everything else      ``attrs`` (``subject``, ``datacontenttype``, ``data_base64``, other
                     extensions such as ``timeoutms``, ``deliverycount``, ``sequence``)
===================  ==================================================================

Dropped: ``specversion`` (always 1.0) and attributes whose value is ``null`` (CloudEvents
treats a null optional attribute as absent).

A record is rejected, with the reason, when it is not JSON, not an object, lacks a required
attribute or has it empty or of the wrong type, has another ``specversion``, a ``time`` or
``endtime`` that is not RFC 3339, an empty ``subject``/``dataschema``, a ``datacontenttype``
that is not a media type, both ``data`` and ``data_base64``, an extension name that is not
lowercase alphanumeric, or an extension value that is not a string, integer or boolean.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from toolkit.ingest.base import Format
from toolkit.ingest.files import file_head, line_blocks, stage_json_items

# Attributes with a column of their own (removed from attrs).
_MAPPED = [
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "data",
    "traceid",
    "causationid",
    "correlationid",
    "idempotencykey",
    "target",
    "status",
    "endtime",
    "system",
    "task",
    "parenttraceid",
]
# Attributes read from each record: the mapped ones and the optional core ones we validate,
# all in one pass over the record (one JSON path list); the JSON kind is read for those whose
# kind matters (``"id": 5`` is a reject, not the id "5").
_FIELDS = [*_MAPPED, "datacontenttype", "dataschema", "subject", "data_base64"]
_KINDS = ["specversion", "id", "source", "type", "time", "endtime", "data", "data_base64"]
_PATHS = "[" + ", ".join(f"'$.\"{k}\"'" for k in _FIELDS) + "]"
_KIND_PATHS = "[" + ", ".join(f"'$.\"{k}\"'" for k in _KINDS) + "]"
_REMOVE_MAPPED = "{" + ",".join(f'"{k}":null' for k in _MAPPED) + "}"
# How many mapped attributes a record carries (``null`` counts as absent). A record with more
# keys than that has extension attributes (or a repeated key) and takes the JSON patch that
# collects its attrs; the others skip that second, costlier pass over the record.
_MAPPED_PRESENT = " + ".join(f"(v[{i + 1}] IS NOT NULL)::INT" for i in range(len(_MAPPED)))
_RFC3339 = r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)"
# attrs as DuckDB serialises it: a flat object of lowercase alphanumeric names (or data_base64)
# whose values are strings, integers or booleans. Anything else takes the slow path below.
_NAME = r'"([a-z0-9]+|data_base64)"'
_VALUE = r'("([^"\\]|\\.)*"|-?\d+|true|false)'
_FLAT_ATTRS = rf"\{{({_NAME}:{_VALUE}(,{_NAME}:{_VALUE})*)?\}}"


def _kind(i: int) -> str:
    """The JSON kind of the ``i``-th attribute of ``_KINDS`` (absent, string, integer, ...)."""
    return f"""CASE t[{i + 1}] WHEN 'VARCHAR' THEN 'string' WHEN 'BIGINT' THEN 'integer'
        WHEN 'UBIGINT' THEN 'integer' WHEN 'DOUBLE' THEN 'number' WHEN 'BOOLEAN' THEN 'boolean'
        WHEN 'OBJECT' THEN 'object' WHEN 'ARRAY' THEN 'array' WHEN 'NULL' THEN 'absent'
        WHEN NULL THEN 'absent' ELSE coalesce(lower(t[{i + 1}]), 'absent') END"""


def _required(name: str) -> str:
    return f"""
        WHEN k_{name} = 'absent' THEN 'missing required attribute: {name}'
        WHEN k_{name} <> 'string' THEN '{name} must be a string, not ' || k_{name}
        WHEN {name} = '' THEN '{name} must not be empty'"""


def _timestamp(name: str) -> str:
    # The pattern admits impossible dates (2026-02-30, month 13, second 60): the cast decides,
    # and year 0 (before the first year Python and pandas can hold) is out of range.
    return f"""
        WHEN k_{name} NOT IN ('string', 'absent') THEN '{name} must be an RFC 3339 string, not ' || k_{name}
        WHEN {name} IS NOT NULL AND NOT regexp_full_match({name}, '{_RFC3339}')
            THEN '{name} is not an RFC 3339 timestamp: ' || {name}
        WHEN {name} IS NOT NULL AND (ts_{name} IS NULL OR ts_{name} < TIMESTAMPTZ '0001-01-01 00:00:00+00')
            THEN '{name} is not a valid date and time: ' || {name}"""


_REASON = f"""CASE
        WHEN NOT valid THEN 'not valid JSON'
        WHEN NOT is_object THEN 'not a JSON object but ' || lower(json_type(raw::JSON))
        {_required("specversion")}
        WHEN specversion <> '1.0' THEN 'unsupported specversion ' || specversion || ' (expected 1.0)'
        {_required("id")}
        {_required("source")}
        {_required("type")}
        {_timestamp("time")}
        {_timestamp("endtime")}
        WHEN datacontenttype IS NOT NULL
             AND NOT regexp_full_match(datacontenttype, '[^/\\s;]+/[^/\\s;]+(\\s*;.*)?')
            THEN 'datacontenttype is not a media type: "' || datacontenttype || '"'
        WHEN dataschema = '' THEN 'dataschema must not be empty'
        WHEN subject = '' THEN 'subject must not be empty'
        WHEN k_data <> 'absent' AND k_data_base64 <> 'absent' THEN 'both data and data_base64 present'
        -- the first offending extension (a list lambda, not a subquery: no join per block)
        WHEN attrs IS NOT NULL AND NOT regexp_full_match(attrs::VARCHAR, '{_FLAT_ATTRS}') THEN
            list_transform(list_filter(json_keys(attrs), lambda k:
                NOT regexp_full_match(k, '[a-z0-9]+|data_base64')
                OR json_type(attrs, '/' || replace(replace(k, '~', '~0'), '/', '~1'))
                   NOT IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'BOOLEAN')),
            lambda k: CASE WHEN NOT regexp_full_match(k, '[a-z0-9]+|data_base64')
                THEN 'extension attribute name is not lowercase alphanumeric: ' || k
                ELSE 'extension attribute ' || k || ' must be a string, integer or boolean' END)[1]
    END"""


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage the CloudEvents in ``path`` (JSONL or a JSON array) for ``toolkit.ingest``."""
    head = file_head(path)
    if head.startswith(b"["):
        if not stage_json_items(con, path):
            return
        stage_cloudevents(con, f"{path}#")
    else:  # a block of lines at a time: memory stays bounded whatever the file's size
        con.execute("DROP TABLE IF EXISTS raw_records")
        for block in line_blocks(con, path):
            con.register("raw_records", block)  # read where Arrow holds it, not copied
            try:
                stage_cloudevents(con, f"{path}:")
            finally:
                con.unregister("raw_records")


def stage_cloudevents(con: duckdb.DuckDBPyConnection, origin_prefix: str) -> None:
    """Validate and map the records in the table (or view) ``raw_records(ord, raw)``.

    Each record is parsed once; its origin is ``origin_prefix`` followed by its ``ord``.
    """
    values = ", ".join(f"v[{i + 1}] AS {k}" for i, k in enumerate(_FIELDS))
    kinds = ", ".join(f"{_kind(i)} AS k_{k}" for i, k in enumerate(_KINDS))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ce_checked AS
        SELECT ord, attrs, k_data, ts_time, ts_endtime, {", ".join(_MAPPED)},
               {_REASON} AS reason FROM (
            SELECT *, try_cast(upper(time) AS TIMESTAMPTZ) AS ts_time,
                   try_cast(upper(endtime) AS TIMESTAMPTZ) AS ts_endtime FROM (
            SELECT ord, raw, valid, is_object, {values}, {kinds},
                   CASE WHEN is_object AND len(json_keys(raw)) > {_MAPPED_PRESENT} THEN
                        nullif(json_merge_patch('{{}}', raw, '{_REMOVE_MAPPED}'), '{{}}') END AS attrs
            FROM (
                SELECT *, CASE WHEN is_object THEN json_extract_string(raw, {_PATHS}) END AS v,
                       CASE WHEN is_object THEN json_type(raw, {_KIND_PATHS}) END AS t
                FROM (SELECT ord, raw, valid, valid AND ltrim(raw) LIKE '{{%' AS is_object
                      FROM (SELECT ord, raw, json_valid(raw) AS valid FROM raw_records
                            WHERE raw <> '' AND (length(raw) > 8 OR trim(raw, ' \t\r') <> '')))
            )))
    """)
    con.execute(
        "INSERT INTO stage_rejects SELECT $p || ord, reason, raw "
        "FROM ce_checked JOIN raw_records USING (ord) WHERE reason IS NOT NULL",
        {"p": origin_prefix},
    )
    con.execute(
        """
        INSERT INTO stage_events BY NAME
        SELECT coalesce(traceid, correlationid, source) AS trace_id, id AS event_id,
               causationid AS parent_id, type, source, target,
               ts_time AS ts, ts_endtime AS end_ts, status,
               idempotencykey AS idempotency_key, correlationid AS correlation_id,
               CASE WHEN k_data <> 'absent' THEN data END AS content,
               CASE WHEN parenttraceid IS NULL THEN attrs
                    ELSE json_merge_patch(coalesce(attrs, '{}'), json_object('parent_trace_id', parenttraceid))
               END AS attrs, ord, ord AS seq, $p || ord AS origin
        FROM ce_checked WHERE reason IS NULL
        """,
        {"p": origin_prefix},
    )
    con.execute("""
        INSERT INTO stage_traces BY NAME
        SELECT coalesce(traceid, correlationid, source) AS trace_id,
               any_value(system) AS system, any_value(task) AS task
        FROM ce_checked WHERE reason IS NULL AND (system IS NOT NULL OR task IS NOT NULL)
        GROUP BY ALL
    """)
    con.execute("DROP TABLE ce_checked")


_SNIFF = re.compile(rb'"specversion"\s*:')


def sniff(head: bytes) -> bool:
    """CloudEvents: JSON records carrying a ``specversion`` attribute."""
    return bool(_SNIFF.search(head)) and head[:1] in (b"{", b"[")


FORMAT = Format(name="cloudevents", sniff=sniff, read=read)
