"""OTLP/HTTP on the wire: bodies in (content types, compression, size), answers out.

What a request must be (the OTLP/HTTP specification, traces only):

========================  ================================================================
``POST /v1/traces``       anything else: 404 (other paths), 405 with ``Allow: POST``
``Content-Type``          ``application/x-protobuf`` (or ``application/protobuf``) or
                          ``application/json``; parameters (``; charset=utf-8``) and case
                          ignored; anything else: 415
``Content-Encoding``      none / ``identity``, ``gzip`` (``x-gzip``), ``deflate`` (zlib or raw);
                          anything else: 415; a broken stream: 400
``Content-Length``        required (411 without it; a chunked body is refused the same way);
                          above the limit: 413 before reading; the limit also applies after
                          decompression, so a gzip bomb is a 413 after ``limit`` bytes
========================  ================================================================

Answers: 200 with an ``ExportTraceServiceResponse`` in the request's encoding (its
``partial_success`` carries the count of rejected spans and the first reasons when some were
rejected); 400 with a ``google.rpc.Status`` when the body is not a request at all; 503 with
``Retry-After`` when the receiver's queue is full or it is stopping (the exporter retries).

A protobuf body is parsed here, in the HTTP thread, and flattened into rows by
:func:`toolkit.ingest.otlp.flatten_request`, which makes exactly what the OTLP/JSON reader makes
of :func:`request_to_json`'s text for the same request (tested), so both encodings share one
mapping.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_MEDIA_TYPES = {"application/x-protobuf": PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}


class BodyError(Exception):
    """A request that gets an HTTP error before it reaches the writer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(header: str | None) -> str:
    """The canonical media type of a ``Content-Type`` header, or a 415 :class:`BodyError`."""
    kind = (header or "").split(";", 1)[0].strip().lower()
    if kind not in _MEDIA_TYPES:
        raise BodyError(
            415, f"unsupported content type {header!r}: send {PROTOBUF} or {JSON} to /v1/traces"
        )
    return _MEDIA_TYPES[kind]


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """``body`` decoded per ``Content-Encoding``, never more than ``limit`` bytes (413 beyond).

    Raises:
        BodyError: 415 for an unknown encoding, 400 for a broken stream, 413 when too large.
    """
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        return body
    if enc in ("gzip", "x-gzip"):
        return _inflate(body, [zlib.MAX_WBITS | 16], limit)
    if enc == "deflate":  # RFC 9110 deflate is zlib-wrapped; some clients send it raw
        return _inflate(body, [zlib.MAX_WBITS, -zlib.MAX_WBITS], limit)
    raise BodyError(415, f"unsupported content encoding {encoding!r}: use gzip or deflate")


def _inflate(body: bytes, wbits_options: list[int], limit: int) -> bytes:
    error: Exception | None = None
    for wbits in wbits_options:
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(body, limit + 1)
        except zlib.error as e:
            error = e
            continue
        if len(out) > limit:
            raise BodyError(413, f"the body is larger than {limit} bytes once decompressed")
        if not d.eof:
            raise BodyError(400, "the compressed body is truncated")
        return out
    raise BodyError(400, f"the body does not decompress: {error}")


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """The request in a protobuf body; a body that does not parse is a 400 :class:`BodyError`."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError, ValueError) as e:
        raise BodyError(400, f"not a protobuf ExportTraceServiceRequest: {e}") from None
    return request


def request_to_json(request: ExportTraceServiceRequest) -> tuple[str, int]:
    """The request as OTLP/JSON text (the proto3 JSON mapping, ids as hex) and its span count:
    what a file of received requests holds, and the reference that
    :func:`toolkit.ingest.otlp.flatten_request` is tested against.

    Equivalent to ``json_format.MessageToDict`` for what the reader reads (fields at their
    default value omitted), about five times faster.
    """
    spans = 0
    out: list[dict[str, Any]] = []
    for rs in request.resource_spans:
        scopes = []
        for ss in rs.scope_spans:
            scope: dict[str, Any] = {}
            if ss.scope.name:
                scope["name"] = ss.scope.name
            if ss.scope.version:
                scope["version"] = ss.scope.version
            if ss.scope.attributes:
                scope["attributes"] = _kvs(ss.scope.attributes)
            scopes.append({"scope": scope, "spans": [_span(s) for s in ss.spans]})
            spans += len(ss.spans)
        out.append({"resource": {"attributes": _kvs(rs.resource.attributes)}, "scopeSpans": scopes})
    return json.dumps({"resourceSpans": out}, ensure_ascii=False), spans


def _span(s: Span) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if s.trace_id:
        d["traceId"] = s.trace_id.hex()
    if s.span_id:
        d["spanId"] = s.span_id.hex()
    if s.parent_span_id:
        d["parentSpanId"] = s.parent_span_id.hex()
    if s.name:
        d["name"] = s.name
    if s.kind:
        d["kind"] = str(s.kind)
    if s.start_time_unix_nano:
        d["startTimeUnixNano"] = str(s.start_time_unix_nano)
    if s.end_time_unix_nano:
        d["endTimeUnixNano"] = str(s.end_time_unix_nano)
    if s.attributes:
        d["attributes"] = _kvs(s.attributes)
    if s.status.code or s.status.message:
        status: dict[str, Any] = {}
        if s.status.code:
            status["code"] = str(s.status.code)
        if s.status.message:
            status["message"] = s.status.message
        d["status"] = status
    if s.events:
        d["events"] = [
            {
                k: v
                for k, v in (
                    ("timeUnixNano", str(e.time_unix_nano) if e.time_unix_nano else None),
                    ("name", e.name or None),
                    ("attributes", _kvs(e.attributes) if e.attributes else None),
                )
                if v is not None
            }
            for e in s.events
        ]
    if s.links:
        d["links"] = [
            {
                k: v
                for k, v in (
                    ("traceId", link.trace_id.hex() or None),
                    ("spanId", link.span_id.hex() or None),
                    ("attributes", _kvs(link.attributes) if link.attributes else None),
                )
                if v is not None
            }
            for link in s.links
        ]
    return d


def _kvs(kvs: Any) -> list[dict[str, Any]]:
    return [{"key": kv.key, "value": _any(kv.value)} for kv in kvs]


def _any(v: AnyValue) -> dict[str, Any]:
    which = v.WhichOneof("value")
    if which == "string_value":
        return {"stringValue": v.string_value}
    if which == "int_value":
        return {"intValue": str(v.int_value)}
    if which == "bool_value":
        return {"boolValue": v.bool_value}
    if which == "double_value":
        x = v.double_value
        if math.isfinite(x):
            return {"doubleValue": x}
        return {"doubleValue": "NaN" if x != x else "Infinity" if x > 0 else "-Infinity"}
    if which == "bytes_value":
        return {"bytesValue": base64.b64encode(v.bytes_value).decode("ascii")}
    if which == "array_value":
        return {"arrayValue": {"values": [_any(x) for x in v.array_value.values]}}
    if which == "kvlist_value":
        return {"kvlistValue": {"values": [_kv(x) for x in v.kvlist_value.values]}}
    return {}


def _kv(kv: KeyValue) -> dict[str, Any]:
    return {"key": kv.key, "value": _any(kv.value)}


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, body, content type, extra headers; for an error its message
    (what gRPC sends instead of the body)."""

    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()
    message: str = ""


def success(kind: str, rejected: int = 0, message: str = "") -> Answer:
    """200 with an ``ExportTraceServiceResponse`` (partial success when spans were rejected)."""
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if kind == PROTOBUF:
        return Answer(200, response.SerializeToString(), PROTOBUF)
    body: dict[str, Any] = {}
    if rejected or message:
        body["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": message}
    return Answer(200, json.dumps(body).encode(), JSON)


# google.rpc.Code for each HTTP status the receiver answers with (gRPC answers with it too)
RPC_CODES = {400: 3, 404: 5, 405: 12, 411: 3, 413: 8, 415: 3, 500: 13, 503: 14}


def failure(status: int, message: str, kind: str = JSON, retry_after: int | None = None) -> Answer:
    """An error answer: a ``google.rpc.Status`` in the request's encoding (JSON when unknown)."""
    code = RPC_CODES.get(status, 2)
    headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
    if kind == PROTOBUF:
        text = message.encode()
        # google.rpc.Status: field 1 code (varint), field 2 message (bytes); written by hand so
        # that no googleapis dependency is needed for two fields
        body = b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
        return Answer(status, body, PROTOBUF, headers, message)
    body = json.dumps({"code": code, "message": message}).encode()
    return Answer(status, body, JSON, headers, message)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
