"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

The request is taken as raw bytes (a generic handler without a deserializer) so that a body that does
not parse gets the protocol's ``INVALID_ARGUMENT`` instead of grpc's internal error. gzip is handled by
grpc itself. Answers (OTLP spec): success with ``partial_success`` when spans were malformed;
``UNAUTHENTICATED`` for a missing / wrong bearer token; ``UNAVAILABLE`` with a ``RetryInfo`` detail
when the store fails, the server is over its memory bound or shutting down (senders retry).
Also the standard health service (``grpc.health.v1.Health/Check``), and TLS when given a certificate.
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2

from .auth import Tls, TokenCheck
from .journal_process import Journal
from .otlp_spans import ExportTraceServiceResponse
from .writer import Outcome

_logger = logging.getLogger("otel_runjournal.serve")

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
HEALTH_SERVICE = "grpc.health.v1.Health"


def _retry_details(outcome: Outcome) -> tuple[tuple[str, bytes], ...]:
    info = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=max(outcome.retry_after, 1)))
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=outcome.message or "")
    status.details.add().Pack(info)
    return (("grpc-status-details-bin", status.SerializeToString()),)


class _Export:
    def __init__(self, journal: Journal, token: TokenCheck, timeout: float) -> None:
        self._journal, self._token, self._timeout = journal, token, timeout

    def __call__(self, body: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        if not self._token.ok(metadata.get("authorization")):
            _logger.warning(
                "serve: gRPC export from %s refused: missing or wrong bearer token", context.peer()
            )
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        outcome = self._journal.submit_body(body, timeout=self._timeout)
        if outcome.reason == "malformed":
            _logger.warning("serve: malformed gRPC export from %s: %s", context.peer(), outcome.message)
            self._journal.note_malformed()
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, outcome.message or "malformed request")
        if not outcome.ok:
            context.set_trailing_metadata(_retry_details(outcome))
            context.abort(grpc.StatusCode.UNAVAILABLE, outcome.message or "retry later")
        response = ExportTraceServiceResponse()
        if outcome.rejected:
            response.partial_success.rejected_spans = outcome.rejected
            response.partial_success.error_message = outcome.message or ""
        return response


def _health_service(body: bytes) -> str | None:
    """The ``service`` of a ``grpc.health.v1.HealthCheckRequest`` (field 1, a string); None if unreadable."""
    if not body:
        return ""
    if body[0] != 0x0A:
        return None
    size, shift, pos = 0, 0, 1
    while pos < len(body) and shift < 35:
        byte = body[pos]
        size |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            name = body[pos : pos + size]
            return name.decode("utf-8", "replace") if len(name) == size else None
        shift += 7
    return None


class _HealthCheck:
    """``grpc.health.v1.Health/Check`` (what Kubernetes' gRPC probes and ``grpc_health_probe`` call):
    SERVING while the journal is healthy, NOT_SERVING otherwise, NOT_FOUND for other services."""

    KNOWN = ("", SERVICE)

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def __call__(self, body: bytes, context: grpc.ServicerContext) -> bytes:
        service = _health_service(body)
        if service is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "not a grpc.health.v1.HealthCheckRequest")
        if service not in self.KNOWN:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service!r}")
        serving = self._journal.health().get("status") == "ok"
        return b"\x08\x01" if serving else b"\x08\x02"  # HealthCheckResponse.status SERVING / NOT_SERVING


def start_grpc(
    journal: Journal,
    host: str,
    port: int,
    *,
    token: TokenCheck,
    max_request_bytes: int,
    max_workers: int = 16,
    timeout: float = 30.0,
    tls: Tls | None = None,
) -> tuple[grpc.Server, int]:
    """Start the gRPC receiver; returns the server and the bound port (``port=0``: a free one)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="otel-runjournal-grpc"),
        options=[
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.so_reuseport", 0),  # a second serve on the same port must fail, not share it
        ],
        maximum_concurrent_rpcs=max_workers * 4,
    )
    handler: Any = grpc.unary_unary_rpc_method_handler(
        _Export(journal, token, timeout),
        request_deserializer=None,
        response_serializer=ExportTraceServiceResponse.SerializeToString,
    )
    health: Any = grpc.unary_unary_rpc_method_handler(_HealthCheck(journal))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),
            grpc.method_handlers_generic_handler(HEALTH_SERVICE, {"Check": health}),
        )
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if tls is not None:
        bound = server.add_secure_port(address, grpc.ssl_server_credentials([(tls.key, tls.cert)]))
    else:
        bound = server.add_insecure_port(address)
    if not bound:
        raise OSError(f"cannot listen for OTLP/gRPC on {address}")
    server.start()
    return server, bound
