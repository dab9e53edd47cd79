"""OTLP/gRPC (``TraceService/Export``, port 4317), for ``pip install 'toolkit[grpc]'``.

The exporters of some SDKs and the OTel Collector speak gRPC by default. This server hands
each request to the same code as OTLP/HTTP (:meth:`toolkit.receive.Receiver.handle`, as a
protobuf body), so both transports share the writer, the batches, the answers after commit
and the retry handling. gRPC decompresses (gzip) and enforces the size limit itself
(``RESOURCE_EXHAUSTED`` above ``max_body``); an HTTP error status becomes the gRPC code of the
same meaning (400 ``INVALID_ARGUMENT``, 503 ``UNAVAILABLE``, which exporters retry, 500
``INTERNAL``).

``grpcio`` is an optional dependency: it is a large native package, and OTLP/HTTP on 4318
serves every OpenTelemetry SDK without it.
"""

from __future__ import annotations

from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc

from toolkit.receive.protocol import PROTOBUF, RPC_CODES

if TYPE_CHECKING:
    from toolkit.receive import Receiver

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _identity(data: bytes) -> bytes:
    return data


def serve(receiver: Receiver, host: str, port: int, workers: int) -> tuple[grpc.Server, int]:
    """Start a gRPC server for ``receiver`` on ``host:port`` (0: a free port); return it and
    its port."""

    def export(body: bytes, context: grpc.ServicerContext) -> bytes:
        # the raw body, not a parsed message: its SHA-256 is the retry key, as over HTTP
        receiver.count_request()
        answer = receiver.handle(PROTOBUF, None, body)
        if answer.status != 200:
            context.abort(_CODES[RPC_CODES.get(answer.status, 2)], answer.message)
        return answer.body  # an ExportTraceServiceResponse, already serialised

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Export": grpc.unary_unary_rpc_method_handler(
                export, request_deserializer=_identity, response_serializer=_identity
            )
        },
    )
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", receiver.max_body),
        ("grpc.so_reuseport", 0),  # a taken port is an error, not a second listener
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=options)
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"gRPC: cannot listen on {host}:{port} (Address already in use?)")
    server.start()
    return server, bound
