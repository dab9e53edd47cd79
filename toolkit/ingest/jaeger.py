"""Jaeger JSON: the UI/query API shape, a single trace, a span list, and protobuf-JSON span dumps.

Accepted shapes (the whole file is one JSON document, or one span per line):

* ``{"data": [trace, ...]}`` (query API), ``{"data": trace}`` (a UI state dump), a single
  ``trace`` (``{traceID, spans, processes}``) or a list of traces;
* a list of spans with an inline ``process`` (the anonymizer's output);
* Jaeger's protobuf JSON (``api_v2``/domain model): base64 ``traceId``/``spanId``, RFC 3339
  ``startTime``, ``"0.000225s"``/``"5000ns"`` durations, ``vStr``/``vInt64``... tags,
  ``processMap`` or an inline ``process``; as a document (``{"spans": [...]}``) or as JSONL.
  Base64 ids become lowercase hex (a 128-bit id whose high half is zero keeps the low 16 hex
  digits, as the UI shows it); a reference without ``refType`` is ``CHILD_OF`` (proto default).

Mapping (span -> ``events``):

=====================  ==================================================================
``traceID``            ``trace_id``
``spanID``             ``event_id``
``references``         the first ``CHILD_OF`` into the same trace, else the first same-trace
                       reference, else the first reference (whose other trace goes to
                       ``attrs.parent_trace_id``); ``attrs.ref_type`` names its kind. A
                       same-trace ``CHILD_OF`` is containment (``parent_span_id``); a
                       ``FOLLOWS_FROM`` or cross-trace reference, and the parent of a
                       ``span.kind=consumer`` span, is causation (``parent_id``). All
                       references stay in ``attrs["jaeger.references"]`` when there are several
``operationName``      ``type`` and ``name``; ``kind`` is ``message`` for a
                       ``span.kind=producer`` span, else ``span``
process                ``source``: tag ``gen_ai.agent.name`` when present, else the process
                       ``serviceName``; process tags -> ``attrs["jaeger.process_tags"]``
tag ``peer.service``   ``target``
``startTime``          ``ts`` (microseconds since the epoch, UTC)
``startTime+duration`` ``end_ts``
tags                   ``attrs`` (key -> value, GenAI ``gen_ai.*`` included); ``status``:
                       ``error`` when ``error`` is true or ``otel.status_code`` is ``ERROR``,
                       ``ok`` when ``otel.status_code`` is ``OK``, else NULL
GenAI output           ``content``: tag ``gen_ai.output.messages``, else
                       ``gen_ai.tool.call.result``
``warnings, flags``    ``attrs["jaeger.warnings"]``, ``attrs["jaeger.flags"]``
``logs[n]``            a child event: ``event_id`` ``<spanID>:log:<n>`` (n from 1),
                       ``kind`` ``span_event``, ``parent_span_id`` the span, ``type`` the
                       field ``event`` (else ``log``),
                       ``ts`` its timestamp, ``content`` the field ``message``, the other
                       fields in ``attrs``; same ``source`` as the span
=====================  ==================================================================

``traces``: system, session and outcome as :mod:`toolkit.ingest.span_tree` derives them.

Dropped: the trace-level ``warnings``/``processes`` beyond what each span uses, the UI-derived
fields of a state dump (``depth``, ``hasChildren``, ``relativeStartTime``, ``services``...), tag
``type`` names (the JSON value keeps its kind).

A span is rejected (origin ``path#N`` for the N-th span of the file, ``path:line`` for JSONL)
when it is not an object, lacks ``traceID``/``spanID`` or has a ``startTime`` that is not a
number of microseconds or an RFC 3339 time.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
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
    check_record,
    json_kind,
    json_lines,
    looks_like_jsonl,
    parse_json,
    read_bytes,
    reason_of,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UI_SPAN = re.compile(rb'"spanID"\s*:')
_PROTO_SPAN = re.compile(rb'"spanId"\s*:')
_OPERATION = re.compile(rb'"operationName"\s*:')
_DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)(ns|us|µs|ms|s)$")
_UNIT_US = {"ns": 1e-3, "us": 1, "µs": 1, "ms": 1e3, "s": 1e6}
_PROTO_VALUES = ("vStr", "vBool", "vInt64", "vFloat64", "vBinary")


def sniff(head: bytes) -> bool:
    """True when ``head`` looks like Jaeger JSON: spans with ``spanID``/``spanId`` and
    ``operationName`` (OTLP and Zipkin spans have neither ``operationName``)."""
    return bool(_OPERATION.search(head) and (_UI_SPAN.search(head) or _PROTO_SPAN.search(head)))


def _hex_id(value: Any, name: str = "id") -> str | None:
    """A span or trace id as lowercase hex (protobuf JSON writes ids in base64)."""
    text = as_key(value, name)
    if text is None:
        return None
    if re.fullmatch(r"[0-9a-fA-F]+", text):
        return text.lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text
    hexed = raw.hex()
    return hexed[16:] if len(hexed) == 32 and hexed.startswith("0" * 16) else hexed


def _micros(value: float) -> datetime:
    """Microseconds since the epoch as a UTC time; ``ValueError`` beyond years 1-9999."""
    try:
        return _EPOCH + timedelta(microseconds=int(value))
    except (OverflowError, ValueError):
        raise ValueError(f"out of range: {value!r}") from None


def _time(value: Any) -> datetime | None:
    """``startTime``: microseconds since the epoch, or an RFC 3339 string (protobuf JSON)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _micros(value)
    if isinstance(value, str):
        if re.fullmatch(r"\d+", value):
            return _micros(int(value))
        # Python keeps microseconds: cut nanosecond digits before parsing.
        text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
        dt = datetime.fromisoformat(text)
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
    raise ValueError(f"not a timestamp: {value!r}")


def _duration_us(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise RecordError(f"duration must be a number or a string, not {json_kind(value)}")
    m = _DURATION.match(value)
    if not m:
        return None
    return float(m.group(1)) * _UNIT_US[m.group(2)]


def _kv(items: Any) -> dict[str, Any]:
    """Jaeger tags/fields (``{key, type, value}`` or protobuf ``{key, vStr...}``) as a dict."""
    out: dict[str, Any] = {}
    for item in as_list(items, "tags"):
        if not isinstance(item, dict) or "key" not in item:
            continue
        key = as_key(item["key"], "tag key") or ""
        if "value" in item:
            out[key] = item["value"]
        else:
            out[key] = next((item[v] for v in _PROTO_VALUES if v in item), None)
    return out


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _parent(span: dict, trace_id: str) -> tuple[str | None, str | None, str | None]:
    """``(parent span id, parent trace id when another trace, ref type)``."""
    refs = [r for r in as_list(span.get("references"), "references") if isinstance(r, dict)]
    if not refs:
        return None, None, None

    def key(r: dict) -> tuple[str, str | None, str]:
        return (
            _hex_id(r.get("traceID", r.get("traceId")), "reference traceID") or trace_id,
            _hex_id(r.get("spanID", r.get("spanId")), "reference spanID"),
            as_key(r.get("refType"), "refType") or "CHILD_OF",
        )

    keyed = [key(r) for r in refs]
    same = [k for k in keyed if k[0] == trace_id]
    chosen = next((k for k in same if k[2] == "CHILD_OF"), None) or (same or keyed)[0]
    return chosen[1], (chosen[0] if chosen[0] != trace_id else None), chosen[2]


def _span_events(span: Any, processes: dict, origin: str, ord_: int) -> list[dict]:
    """The span's event and its log events; raises ``ValueError`` with the reject reason."""
    if not isinstance(span, dict):
        raise RecordError(f"span is not a JSON object but {json_kind(span)}")
    check_record(span)
    trace_id = _hex_id(span.get("traceID", span.get("traceId")), "traceID")
    span_id = _hex_id(span.get("spanID", span.get("spanId")), "spanID")
    if not trace_id or not span_id:
        raise RecordError("span lacks traceID or spanID")
    try:
        ts = _time(span.get("startTime"))
    except ValueError as e:
        raise RecordError(f"bad startTime: {e}") from None
    dur = _duration_us(span.get("duration"))
    try:
        end_ts = ts + timedelta(microseconds=dur) if ts is not None and dur is not None else None
    except (OverflowError, ValueError):
        raise RecordError(f"startTime + duration out of range: {dur!r}") from None
    process_id = as_key(span.get("processID"), "processID")
    process = span.get("process") or (processes.get(process_id) if process_id else None)
    process = process if isinstance(process, dict) else {}
    tags = _kv(span.get("tags"))
    parent_id, parent_trace, ref_type = _parent(span, trace_id)
    status_code = str(tags.get("otel.status_code", "")).upper()
    status = (
        "error"
        if _is_true(tags.get("error")) or status_code == "ERROR"
        else ("ok" if status_code == "OK" else None)
    )
    source = tags.get("gen_ai.agent.name") or process.get("serviceName")
    attrs: dict[str, Any] = dict(tags)
    extras = {
        "parent_trace_id": parent_trace,
        "ref_type": ref_type,
        "jaeger.references": span.get("references")
        if len(span.get("references") or []) > 1
        else None,
        "jaeger.process_tags": _kv(process.get("tags")) or None,
        "jaeger.warnings": span.get("warnings") or None,
        "jaeger.flags": span.get("flags"),
    }
    attrs.update({k: v for k, v in extras.items() if v is not None})
    content = tags.get("gen_ai.output.messages", tags.get("gen_ai.tool.call.result"))
    base = {"trace_id": trace_id, "source": source, "origin": origin, "ord": ord_}
    span_kind = str(tags.get("span.kind", "")).lower()
    contained = ref_type == "CHILD_OF" and parent_trace is None and span_kind != "consumer"
    events = [
        base
        | {
            "event_id": span_id,
            "kind": "message" if span_kind == "producer" else "span",
            "parent_span_id": parent_id
            if ref_type == "CHILD_OF" and parent_trace is None
            else None,
            "parent_id": None if contained else parent_id,
            "name": span.get("operationName"),
            "type": span.get("operationName") or "span",
            "target": tags.get("peer.service"),
            "ts": ts,
            "end_ts": end_ts,
            "status": status,
            "content": None if content is None else str(content),
            "attrs": attrs or None,
        }
    ]
    for n, log in enumerate(as_list(span.get("logs"), "logs"), start=1):
        fields = _kv(log.get("fields")) if isinstance(log, dict) else {}
        event = fields.pop("event", None)
        message = fields.pop("message", None)
        try:
            log_ts = _time(log.get("timestamp")) if isinstance(log, dict) else None
        except ValueError:
            log_ts, fields["timestamp"] = (
                None,
                log.get("timestamp") if isinstance(log, dict) else None,
            )
        events.append(
            base
            | {
                "event_id": f"{span_id}:log:{n}",
                "kind": "span_event",
                "parent_span_id": span_id,
                "type": str(event) if event is not None else "log",
                "ts": log_ts,
                "content": None if message is None else str(message),
                "attrs": fields or None,
            }
        )
    return events


def _processes(trace: dict) -> dict:
    procs = trace.get("processes")
    if isinstance(procs, dict):
        return procs
    out = {}
    for p in as_list(trace.get("processMap"), "processMap"):
        if isinstance(p, dict) and isinstance(p.get("processID"), str):
            out[p["processID"]] = p.get("process") or {}
    return out


def _spans(doc: Any) -> Iterator[tuple[Any, dict, str | None]]:
    """Every span of a Jaeger document with its trace's process table, or (a trace that cannot
    be read, ``{}``, the reason)."""
    if isinstance(doc, dict) and "data" in doc:
        doc = doc["data"]
    traces = doc if isinstance(doc, list) else [doc]
    for item in traces:
        if isinstance(item, dict) and "spans" in item:
            try:
                procs = _processes(item)
                spans = as_list(item.get("spans"), "spans")
            except RecordError as e:
                yield item, {}, f"trace: {e}"
                continue
            for span in spans:
                yield span, procs, None
        else:  # a bare span list
            yield item, {}, None


def read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stage the spans of a Jaeger JSON file (document or span-per-line) for ``toolkit.ingest``."""
    text = read_bytes(path).decode("utf-8", errors="replace")
    if not text.strip(" \t\r\n"):  # an empty file: no records
        return
    rejects = Rejects(con)
    items: list[tuple[Any, dict, str, str | None]] = []
    try:
        doc = parse_json(text)
    except ValueError as e:
        if not looks_like_jsonl(text[:65536].encode()):
            # one broken document: one reject, not one per line
            rejects.add(f"{path}#0", f"file is not valid JSON: {e}", text[:10000])
            rejects.flush()
            return
        # one span per line
        items += [(span, {}, origin, None) for origin, span in json_lines(path, text, rejects)]
    else:
        for n, (span, procs, why) in enumerate(_spans(doc), start=1):
            items.append((span, procs, f"{path}#{n}", why))
    rows: list[dict] = []
    for ord_, (span, procs, origin, why) in enumerate(items, start=1):
        try:
            if why:
                raise RecordError(why)
            rows += _span_events(span, procs, origin, ord_)
        except RECORD_FAILURES as e:
            rejects.add(origin, reason_of(e), span)
    rejects.flush()
    stage_rows(con, "events", rows)
    span_tree.derive(con)


FORMAT = Format("jaeger", sniff, read)
