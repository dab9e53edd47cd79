"""Live: an OTLP/HTTP receiver that stores traces while you explore them.

``toolkit.receive(con)`` starts, inside the calling process, an HTTP server on
``http://127.0.0.1:4318/v1/traces`` (threads: one per connection, see
:mod:`toolkit.receive.protocol` for what it accepts and answers) and one writer thread that
merges what arrives into ``con``'s database in batches, one transaction each (see
:mod:`toolkit.receive.writer` for the semantics: the same mapping, identity and rejects as file
ingest; traces re-derived as their spans arrive; retries stored once). Point an exporter at it
(``OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318``) and query ``con`` as usual: each query
sees the batches committed before it.

An answer is sent once the request's batch is committed (or rejected), so a 200 means stored
and ``partial_success`` counts exactly the spans that went to ``rejects``. A full queue answers
503 with ``Retry-After`` (OTLP exporters retry with back-off).

``toolkit.open_traces`` says which traces are still running: an analysis run during ingest sees
them as they are so far (a trace without its root span yet, a request not yet answered); while
a receiver runs, ``toolkit.hangs`` and ``toolkit.findings`` judge at the present moment and
leave out the traces still open.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import duckdb

from toolkit.analyze import derived
from toolkit.db import mark_live
from toolkit.ingest import otlp
from toolkit.receive.protocol import (
    PROTOBUF,
    Answer,
    BodyError,
    decompress,
    failure,
    media_type,
    parse_protobuf,
    success,
)
from toolkit.receive.writer import Pending, Writer

__all__ = ["Counters", "Receiver", "open_traces", "receive"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 20 * 1024 * 1024  # the OTel Collector's default max_request_body_size


@dataclass(frozen=True)
class Counters:
    """A snapshot of a receiver's work since it started."""

    requests: int  # POSTs to /v1/traces, answered or not
    accepted: int  # requests queued for the writer
    committed: int  # requests whose batch was committed (or answered as received before)
    spans: int  # spans stored
    rejects: int  # records sent to ``rejects``
    refused: int  # requests answered with an error (4xx / 5xx)
    batches: int  # transactions committed
    queued: int  # requests waiting for the writer now
    last_error: str | None  # the last error answered or met, with its status


class Receiver:
    """A running receiver (see :func:`receive`); stop it with :meth:`stop` or a ``with`` block."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        host: str,
        port: int,
        max_body: int,
        queue_size: int,
        batch_delay: float,
        batch_bytes: int,
        retain: float,
        timeout: float,
        grpc_port: int | None = None,
    ) -> None:
        self.max_body = max_body
        self.timeout = timeout
        self._con = con
        self._lock = threading.Lock()
        self._counts = {"requests": 0, "accepted": 0, "refused": 0}
        self._last_error: str | None = None
        # The analyses' derived tables exist before the first batch: from then on only the
        # writer changes them (in each batch's transaction), and a query on ``con`` finds them
        # current instead of building them while the writer does (a write-write conflict).
        derived.ensure(con)
        self.writer = Writer(
            con,
            queue_size=queue_size,
            batch_delay=batch_delay,
            batch_bytes=batch_bytes,
            retain=retain,
        )
        self.server = _Server((host, port), _Handler)
        self.server.receiver = self
        address = self.server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self.writer.start()
        self._serving = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="toolkit-receive-http",
            daemon=True,
        )
        self._serving.start()
        mark_live(con, True)  # the analyses on con now judge hangs at the present moment
        # the writer's deriver keeps the derived tables, several batches at a time: an
        # analysis on con asks it to catch up instead of writing them itself
        derived.kept_by(con, self._catch_up)
        self.stopped = False
        self.grpc_port: int | None = None  # the OTLP/gRPC port, when one was asked for
        self._grpc: Any = None
        if grpc_port is not None:
            try:
                from toolkit.receive import otlp_grpc
            except ImportError as e:
                self.stop()
                raise ImportError(
                    f"OTLP/gRPC needs grpcio: pip install 'toolkit[grpc]' ({e})"
                ) from None
            try:
                self._grpc, self.grpc_port = otlp_grpc.serve(self, host, grpc_port, queue_size)
            except BaseException:
                self.stop()
                raise

    @property
    def endpoint(self) -> str:
        """The base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (``/v1/traces`` is appended)."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The traces URL (for ``OTLPSpanExporter(endpoint=...)``)."""
        return f"{self.endpoint}/v1/traces"

    @property
    def counters(self) -> Counters:
        """What the receiver did so far."""
        with self._lock, self.writer.lock:
            w = self.writer.counts
            return Counters(
                requests=self._counts["requests"],
                accepted=self._counts["accepted"],
                committed=w["committed_requests"],
                spans=w["spans"],
                rejects=w["rejects"],
                refused=self._counts["refused"],
                batches=w["batches"],
                queued=self.writer.queue.qsize(),
                last_error=(
                    self._last_error or self.writer.last_error or self.writer.deriver.last_error
                ),
            )

    def wait(self, spans: int, timeout: float = 30.0) -> bool:
        """Wait until ``spans`` spans are stored (or ``timeout`` seconds); return whether they are."""
        deadline = time.monotonic() + timeout
        while self.counters.spans < spans:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self, timeout: float = 30.0) -> Counters:
        """Stop accepting requests, store those already queued, and return the counters.

        Safe to call twice.
        """
        if not self.stopped:
            self.stopped = True
            self.server.shutdown()
            self.server.server_close()
            if self._grpc is not None:
                self._grpc.stop(grace=None)
            self.writer.gate.set()
            self.writer.stopping.set()
            self.writer.join(timeout)
            derived.kept_by(self._con, None)
            mark_live(self._con, False)
        return self.counters

    def _catch_up(self) -> bool:
        return not self.stopped and self.writer.deriver.catch_up(self.timeout)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        c = self.counters
        state = "stopped" if self.stopped else f"listening on {self.url}"
        return (
            f"<Receiver {state}: {c.requests} requests, {c.spans} spans stored, "
            f"{c.rejects} rejects, {c.refused} refused>"
        )

    # ---------------------------------------------------------------- one request

    def _refuse(self, answer: Answer) -> Answer:
        with self._lock:
            self._counts["refused"] += 1
            self._last_error = f"{answer.status}: {answer.body[:300].decode(errors='replace')}"
        return answer

    def count_request(self) -> None:
        """Count a request received (by either transport), before anything is checked."""
        with self._lock:
            self._counts["requests"] += 1

    def handle(self, content_type: str | None, encoding: str | None, body: bytes) -> Answer:
        """Answer one POST to /v1/traces (called from the HTTP threads)."""
        with self.writer.incoming():
            kind, accepted = self._accept(content_type, encoding, body)
        if isinstance(accepted, Answer):
            return accepted
        pending = accepted
        with self._lock:
            self._counts["accepted"] += 1
        if not pending.done.wait(self.timeout):
            # still queued: the exporter retries, and the retry is answered from the first copy
            return self._refuse(failure(503, "not stored yet; retry later", kind, retry_after=1))
        result = pending.result
        assert result is not None
        if result.status == 200:
            return success(kind, result.rejected, result.message[:1000])
        return self._refuse(failure(result.status, result.message[:1000], kind))

    def _accept(
        self, content_type: str | None, encoding: str | None, body: bytes
    ) -> tuple[str, Pending | Answer]:
        """Decode a body and queue it for the writer: the request's media type and what was
        queued, or the error answer."""
        kind = "application/json"
        try:
            kind = media_type(content_type)
            data = decompress(body, encoding, self.max_body)
            if kind == PROTOBUF:
                try:
                    pending = Pending.of(
                        data, None, spans=otlp.flatten_request(parse_protobuf(data))
                    )
                except BodyError as e:
                    pending = Pending.of(data, None, e.message)
                except RecursionError:  # values nested deeper than Python recurses
                    pending = Pending.of(data, None, "attribute values nested too deep")
            else:
                try:
                    text = data.decode("utf-8")
                    pending = Pending.of(data, text)
                except UnicodeDecodeError as e:
                    pending = Pending.of(data, data.decode("utf-8", "replace"), f"not UTF-8: {e}")
        except BodyError as e:
            return kind, self._refuse(failure(e.status, e.message, kind))
        if self.stopped:
            return kind, self._refuse(failure(503, "the receiver is stopping", kind, retry_after=1))
        try:
            self.writer.queue.put_nowait(pending)
        except Exception:  # queue.Full
            answer = failure(503, "the receiver's queue is full", kind, retry_after=1)
            return kind, self._refuse(answer)
        return kind, pending


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # socketserver's default backlog is 5: more exporters connecting at once overflowed it,
    # and Linux then reset connections the clients already thought open
    request_queue_size = 128
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hung up before its answer: nothing to tell anyone on stderr
        log.debug("toolkit.receive: error answering %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: exporters reuse their connection
    timeout = 60  # a client that stops sending mid-request frees its thread

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log on stderr inside a notebook

    def _send(self, answer: Answer, *, close: bool = False, allow: bool = False) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers:
            self.send_header(name, value)
        if allow:
            self.send_header("Allow", "POST")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(answer.body)

    def _on_traces(self) -> bool:
        return urlsplit(self.path).path.rstrip("/") == "/v1/traces"

    def do_POST(self) -> None:
        receiver = self.server.receiver
        if not self._on_traces():
            self._send(failure(404, f"no such endpoint {self.path!r}: POST to /v1/traces"))
            return
        receiver.count_request()
        kind = self.headers.get("Content-Type")
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length is None:
            answer = failure(411, "send the body with a Content-Length")
            self._send(receiver._refuse(answer), close=True)
            return
        try:
            size = int(length)
            if size < 0:
                raise ValueError
        except ValueError:
            self._send(receiver._refuse(failure(400, "bad Content-Length")), close=True)
            return
        if size > receiver.max_body:
            answer = failure(413, f"the body is larger than {receiver.max_body} bytes")
            self._send(receiver._refuse(answer), close=True)  # unread body: close
            return
        body = self.rfile.read(size)
        if len(body) < size:
            self.close_connection = True
            return
        self._send(receiver.handle(kind, self.headers.get("Content-Encoding"), body))

    def _not_allowed(self) -> None:
        if self._on_traces():
            answer = failure(405, f"{self.command} is not allowed: POST to /v1/traces")
            self._send(self.server.receiver._refuse(answer), close=True, allow=True)
        else:
            self._send(failure(404, f"no such endpoint {self.path!r}: POST to /v1/traces"))

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _not_allowed


def receive(
    con: duckdb.DuckDBPyConnection,
    port: int = 4318,
    host: str = "127.0.0.1",
    *,
    max_body: int = DEFAULT_MAX_BODY,
    queue_size: int = 64,
    batch_delay: float = 0.02,
    batch_bytes: int = 16 * 1024 * 1024,
    retain: float = 600.0,
    timeout: float = 30.0,
    grpc_port: int | None = None,
) -> Receiver:
    """Receive OpenTelemetry traces over OTLP/HTTP into ``con``'s database, in the background.

    Args:
        con: a writable connection from :func:`toolkit.connect`; the receiver writes through its
            own ``cursor()``, and ``con`` stays free for queries. Stop the receiver before
            closing ``con``.
        port: the TCP port (4318 is OTLP/HTTP's); 0 picks a free one (see ``Receiver.port``).
        host: the address to listen on; the default accepts local clients only. ``0.0.0.0``
            accepts any: there is no authentication.
        max_body: the largest body accepted, in bytes, after decompression (413 beyond).
        queue_size: requests waiting for the writer before it answers 503 with Retry-After.
        batch_delay: seconds the writer waits for more requests to merge in one transaction;
            while HTTP threads are still decoding requests, up to ten times as long (under
            load, the requests of all waiting exporters go into one transaction).
        batch_bytes: the most request bytes merged in one transaction.
        retain: seconds a trace's spans stay in memory after its last span arrived, for
            re-mapping the trace when more of its spans arrive (at most a million spans are
            kept: beyond, the traces idle longest are forgotten first).
        timeout: seconds a request waits for its batch to commit before a 503 (the retry is
            answered from the first copy, never stored twice).
        grpc_port: also serve OTLP/gRPC on this port (4317 is OTLP/gRPC's; 0 picks a free
            one, see ``Receiver.grpc_port``), on the same ``host`` and writer. Needs the
            ``[grpc]`` extra (grpcio).

    Returns:
        A :class:`Receiver`: ``url``, ``port``, ``counters`` (requests, spans stored, rejects,
        refused, last error...), ``wait(spans)``, ``stop()``.

    Raises:
        OSError: the port is taken (``Address already in use``).
        ImportError: ``grpc_port`` without grpcio installed.
    """
    return Receiver(
        con,
        host=host,
        port=port,
        max_body=max_body,
        queue_size=queue_size,
        batch_delay=batch_delay,
        batch_bytes=batch_bytes,
        retain=retain,
        timeout=timeout,
        grpc_port=grpc_port,
    )
