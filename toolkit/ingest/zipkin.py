"""Zipkin v2 JSON: a list of spans (the API's trace), or a single span object.

Mapping (span -> ``events``):

======================  ================================================================
``traceId``             ``trace_id``
``id``                  ``event_id``; the server half of a shared RPC span is ``<id>:server``
``parentId``            ``parent_span_id`` (containment; see shared spans below); for a
                        ``CONSUMER`` span also ``parent_id`` (it reacts to the producer's message)
``name``                ``type`` and ``name`` (absent: the lowercased ``kind``, else ``span``);
                        ``kind`` is ``message`` for a ``PRODUCER`` span, else ``span``
``localEndpoint``       ``source`` (its ``serviceName``); the endpoint -> ``attrs.local_endpoint``
``remoteEndpoint``      ``target`` (its ``serviceName``); the endpoint -> ``attrs.remote_endpoint``
``timestamp``           ``ts`` (microseconds since the epoch, UTC), as recorded: clock skew is
                        kept (the out-of-order analysis reports it), never corrected
``timestamp+duration``  ``end_ts`` (NULL without ``duration``)
``tags``                ``attrs.tags``; ``status`` is ``error`` when tag ``error`` is present
                        (Zipkin's convention, even when empty), else NULL
``kind``, ``shared``,   ``attrs.kind``, ``attrs.shared``, ``attrs.debug``
``debug``
``annotations[n]``      a ``span_event``: ``event_id`` ``<event_id>:ann:<n>`` (n from 1),
                        ``parent_span_id`` the span's event, ``type`` the annotation ``value``, ``ts`` its
                        ``timestamp``, same ``source``/``target``
======================  ================================================================

Shared spans: Zipkin reuses one span id for the client and the server half of one RPC (the
server half has ``shared: true``). They are one RPC, not a duplicate: the server half gets the
event id ``<id>:server`` and, when the file holds the client half (a non-shared span with that
id), ``parent_span_id`` = the client half's id (the server's work is part of the call); without it the server half keeps the recorded ``parentId``. Several server
halves for one id (a message fanned out to several consumers, as in the smartthings sample)
are ``<id>:server``, ``<id>:server:2``... ordered by start time and endpoint, not file position.
A span whose ``parentId`` is a shared id and whose service is a server half's service is that
server's child: the half on the same host (else the same service) started last before it. Kafka PRODUCER/CONSUMER spans are linked by the data: the consumer's
``parentId`` names the producer span, kept as is.

``traces``: system, session and outcome as :mod:`toolkit.ingest.span_tree` derives them.

Dropped: nothing else (the span carries no other fields in v2).

A span is rejected (origin ``path#N`` for the N-th span) when it is not an object, lacks
``traceId`` or ``id``, or has a ``timestamp``/``duration`` that is not a number. A file that is not
JSON is rejected whole (``path#0``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from toolkit.ingest import span_tree
from toolkit.ingest.base import Format, RecordError, Rejects, stage_rows
from toolkit.ingest.files import (
    RECORD_FAILURES,
    as_key,
    as_list,
    as_object,
    check_record,
    json_kind,
    load_json,
    reason_of,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TRACE_ID = re.compile(rb'"traceId"\s*:')
_ZIPKIN_FIELD = re.compile(
    rb'"(localEndpoint|remoteEndpoint)"\s*:|"kind"\s*:\s*"(CLIENT|SERVER|PRODUCER|CONSUMER)"'
)
_NOT_ZIPKIN = re.compile(rb'"(operationName|resourceSpans|spanId)"\s*:')


def sniff(head: bytes) -> bool:
    """True when ``head`` looks like Zipkin v2 JSON: ``traceId`` with endpoints or a span kind,
    and none of Jaeger's or OTLP's field names."""
    return bool(
        _TRACE_ID.search(head) and _ZIPKIN_FIELD.search(head) and not _NOT_ZIPKIN.search(head)
    )


def _micros(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{name} is not a number of microseconds: {value!r}")
    try:
        return _EPOCH + timedelta(microseconds=int(value))
    except (OverflowError, ValueError):
        raise RecordError(f"{name} is out of range: {value!r}") from None


def _service(endpoint: Any) -> str | None:
    return endpoint.get("serviceName") if isinstance(endpoint, dict) else None


def _endpoint(span: dict) -> tuple[str, str, str]:
    ep = span.get("localEndpoint")
    ep = ep if isinstance(ep, dict) else {}
    return (
        str(ep.get("serviceName", "")),
        str(ep.get("ipv4") or ep.get("ipv6") or ""),
        str(ep.get("port", "")),
    )


def _server_halves(good: list[tuple[int, dict]]) -> dict[tuple[str, str], list[tuple[str, dict]]]:
    """Event ids of the server halves of each shared span id, ordered by start and endpoint
    (not by file position, so a re-export in another order gets the same ids)."""
    halves: dict[tuple[str, str], list[dict]] = {}
    for _, s in good:
        if s.get("shared"):
            halves.setdefault((str(s["traceId"]).lower(), str(s["id"]).lower()), []).append(s)
    named = {}
    for (trace_id, span_id), spans in halves.items():
        spans.sort(key=lambda s: (s.get("timestamp") or 0, _endpoint(s)))
        named[(trace_id, span_id)] = [
            (f"{span_id}:server" + (f":{i}" if i > 1 else ""), s) for i, s in enumerate(spans, 1)
        ]
    return named


def _server_parent(span: dict, halves: list[tuple[str, dict]]) -> str | None:
    """The server half a child span belongs to: same service, the same host when possible,
    the latest one started before the child."""
    ep, ts = _endpoint(span), span.get("timestamp") or 0
    same = [(e, s) for e, s in halves if _endpoint(s)[0] == ep[0]]
    for pool in ([(e, s) for e, s in same if _endpoint(s) == ep], same):
        before = [(s.get("timestamp") or 0, e) for e, s in pool if (s.get("timestamp") or 0) <= ts]
        if before:
            return max(before)[1]
        if pool:
            return pool[0][0]
    return None


def _check(span: Any) -> None:
    """Type checks at the boundary: ids are strings (or integers), times are numbers."""
    if not isinstance(span, dict):
        raise RecordError(f"span is not a JSON object but {json_kind(span)}")
    check_record(span)
    if not as_key(span.get("traceId"), "traceId") or not as_key(span.get("id"), "id"):
        raise RecordError("span lacks traceId or id")
    as_key(span.get("parentId"), "parentId")
    ts = _micros(span.get("timestamp"), "timestamp")
    if span.get("duration") is not None:
        _micros(span["duration"], "duration")
        if ts is not None:
            try:
                ts + timedelta(microseconds=int(span["duration"]))
            except (OverflowError, ValueError):
                raise RecordError("timestamp + duration is out of range") from None
    as_list(span.get("annotations"), "annotations")
    as_object(span.get("tags"), "tags")


def _span_events(span: dict, n: int, origin: str, client_ids: set, halves: dict) -> list[dict]:
    trace_id, span_id = str(span["traceId"]).lower(), str(span["id"]).lower()
    parent = str(span["parentId"]).lower() if span.get("parentId") else None
    source = _service(span.get("localEndpoint"))
    target = _service(span.get("remoteEndpoint"))
    if span.get("shared"):
        event_id = next(e for e, s in halves[(trace_id, span_id)] if s is span)
        if (trace_id, span_id) in client_ids:
            parent = span_id
    else:
        event_id = span_id
        if parent and (trace_id, parent) in halves:
            parent = _server_parent(span, halves[(trace_id, parent)]) or parent
    ts = _micros(span.get("timestamp"), "timestamp")
    dur = span.get("duration")
    tags = span.get("tags") or {}
    attrs = {
        "kind": span.get("kind"),
        "shared": span.get("shared"),
        "debug": span.get("debug"),
        "tags": tags or None,
        "local_endpoint": span.get("localEndpoint"),
        "remote_endpoint": span.get("remoteEndpoint"),
    }
    base = {"trace_id": trace_id, "source": source, "target": target, "origin": origin, "ord": n}
    events = [
        base
        | {
            "event_id": event_id,
            "kind": "message" if span.get("kind") == "PRODUCER" else "span",
            "parent_span_id": parent,
            "parent_id": parent if span.get("kind") == "CONSUMER" else None,
            "name": span.get("name"),
            "type": span.get("name") or (span.get("kind") or "span").lower(),
            "ts": ts,
            "end_ts": ts + timedelta(microseconds=int(dur)) if ts and dur is not None else None,
            "status": "error" if isinstance(tags, dict) and "error" in tags else None,
            "attrs": {k: v for k, v in attrs.items() if v is not None},
        }
    ]
    for k, ann in enumerate(as_list(span.get("annotations"), "annotations"), start=1):
        ann = ann if isinstance(ann, dict) else {"value": ann}
        try:
            ann_ts = _micros(ann.get("timestamp"), "timestamp")
        except RecordError:
            ann_ts = None
        events.append(
            base
            | {
                "event_id": f"{event_id}:ann:{k}",
                "kind": "span_event",
                "parent_span_id": event_id,
                "type": str(ann.get("value") or "annotation"),
                "ts": ann_ts,
            }
        )
    return events


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage the spans of a Zipkin v2 JSON file for ``toolkit.ingest``."""
    doc = load_json(con, path)
    if doc is None:
        return
    spans = doc if isinstance(doc, list) else [doc]
    rejects = Rejects(con)
    good: list[tuple[int, dict]] = []
    for n, span in enumerate(spans, start=1):
        try:
            _check(span)
            good.append((n, span))
        except RECORD_FAILURES as e:
            rejects.add(f"{path}#{n}", reason_of(e), span)
    key = lambda s: (str(s["traceId"]).lower(), str(s["id"]).lower())  # noqa: E731
    client_ids = {key(s) for _, s in good if not s.get("shared")}
    halves = _server_halves(good)
    rows: list[dict] = []
    for n, span in good:
        try:
            rows += _span_events(span, n, f"{path}#{n}", client_ids, halves)
        except RECORD_FAILURES as e:
            rejects.add(f"{path}#{n}", reason_of(e), span)
    rejects.flush()
    stage_rows(con, "events", rows)
    span_tree.derive(con)


FORMAT = Format("zipkin", sniff, read)
