"""OTLP/HTTP receiver (standard library): ``POST /v1/traces`` (protobuf or JSON, gzip), ``GET /health``.

Answers (OTLP spec): 200 with an ``ExportTraceServiceResponse`` in the request's encoding (its
``partial_success`` when spans were malformed); 400 with a ``google.rpc.Status`` for a body that does
not parse; 401 for a missing / wrong bearer token; 411 without ``Content-Length``; 413 past
``max_request_bytes`` (also after gunzip); 415 for other content types or encodings; 503 (store
failing, shutting down) or 429 (over the memory bound) with ``Retry-After``, which senders retry.
HTTPS when given a certificate.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.rpc import status_pb2

from .auth import Tls, TokenCheck
from .journal_process import Journal
from .otlp_spans import ExportTraceServiceResponse, MalformedRequest, parse_json, response_json

_logger = logging.getLogger("otel_runjournal.serve")

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TRACES_PATH = "/v1/traces"
# HTTP status → the google.rpc.Status code put in the error body (OTLP/HTTP spec)
_RPC_CODES = {400: 3, 401: 16, 404: 5, 411: 3, 413: 3, 415: 3, 429: 8, 503: 14}


class _TooLarge(Exception):
    pass


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress gzip without ever holding more than ``limit`` bytes (a small bomb stays small)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise MalformedRequest(f"not gzip: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _TooLarge
    if not inflater.eof:
        raise MalformedRequest("truncated gzip body")
    return out


class OtlpHttpServer(ThreadingHTTPServer):
    """A threading HTTP server carrying the journal and limits for its handlers."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        journal: Journal,
        token: TokenCheck,
        max_request_bytes: int,
        timeout: float,
        max_concurrent: int = 32,
        tls: Tls | None = None,
    ) -> None:
        if ":" in address[0]:
            self.address_family = __import__("socket").AF_INET6
        super().__init__(address, _Handler)
        if tls is not None:  # the handshake happens in the connection's thread, not the accept loop
            self.socket = tls.server_context().wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        self.journal = journal
        self.token = token
        self.max_request_bytes = max_request_bytes
        self.request_timeout = timeout
        self.slots = threading.BoundedSemaphore(max_concurrent)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(_Handler.timeout)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError) as exc:  # a plain-text client, a bad certificate, a scan
                _logger.info("serve: TLS handshake with %s failed: %s", client_address[0], exc)
                return
        super().finish_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: OtlpHttpServer
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds a connection may sit idle / trickle a body

    def log_message(self, format: str, *args: Any) -> None:
        _logger.debug("serve http: %s - %s", self.address_string(), format % args)

    # --- responses ---------------------------------------------------------------------------------
    def _send(self, code: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code: int, message: str, as_json: bool, headers: dict[str, str] | None = None) -> None:
        status = status_pb2.Status(code=_RPC_CODES.get(code, 2), message=message)
        if as_json:
            body = json.dumps({"code": status.code, "message": message}).encode()
        else:
            body = status.SerializeToString()
        self._send(code, body, JSON if as_json else PROTOBUF, headers)

    # --- routes ------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        if self.path.split("?")[0] in ("/health", "/healthz"):
            health = self.server.journal.health()
            code = 200 if health["status"] == "ok" else 503
            self._send(code, json.dumps(health).encode(), JSON)
            return
        self._error(404, f"not found: {self.path[:100]}; OTLP traces go to POST {TRACES_PATH}", True)

    def do_POST(self) -> None:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        as_json = content_type == JSON
        if self.path.split("?")[0] != TRACES_PATH:
            self._discard_body()
            self._error(404, f"not found: {self.path[:100]}; OTLP traces go to POST {TRACES_PATH}", as_json)
            return
        if not self.server.token.ok(self.headers.get("Authorization")):
            _logger.warning(
                "serve: HTTP export from %s refused: missing or wrong bearer token", self.client_address[0]
            )
            self.close_connection = True
            self._error(401, "missing or wrong bearer token", as_json, {"WWW-Authenticate": "Bearer"})
            return
        if content_type not in (PROTOBUF, JSON):
            self._discard_body()
            self._error(415, f"unsupported Content-Type {content_type!r}: use {PROTOBUF} or {JSON}", as_json)
            return
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            self._discard_body()
            self._error(415, f"unsupported Content-Encoding {encoding!r}: use gzip or none", as_json)
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self.close_connection = True
            self._error(411, "Content-Length required", as_json)
            return
        try:
            length = int(length_text)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self.server.journal.note_malformed()
            self._error(400, "malformed Content-Length", as_json)
            return
        limit = self.server.max_request_bytes
        if length > limit:
            self.close_connection = True
            self._error(413, f"request larger than {limit} bytes", as_json)
            return
        if not self.server.slots.acquire(blocking=False):
            self._discard_body(length)
            self._error(429, "too many concurrent requests; retry later", as_json, {"Retry-After": "1"})
            return
        try:
            self._export(length, encoding, as_json, limit)
        finally:
            self.server.slots.release()

    def _export(self, length: int, encoding: str, as_json: bool, limit: int) -> None:
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            return  # the client went away mid-body
        try:
            if encoding == "gzip":
                body = gunzip(body, limit)
            if as_json:  # the journal reads protobuf
                body = parse_json(body).SerializeToString()
        except _TooLarge:
            self._error(413, f"request larger than {limit} bytes after decompression", as_json)
            return
        except MalformedRequest as exc:
            _logger.warning("serve: malformed HTTP export from %s: %s", self.client_address[0], exc)
            self.server.journal.note_malformed()
            self._error(400, str(exc), as_json)
            return
        except Exception as exc:  # anything else a hostile body can trigger: a 400, never a crash
            _logger.warning("serve: unreadable HTTP export from %s: %r", self.client_address[0], exc)
            self.server.journal.note_malformed()
            self._error(400, f"unreadable request: {type(exc).__name__}", as_json)
            return
        outcome = self.server.journal.submit_body(body, timeout=self.server.request_timeout)
        if outcome.reason == "malformed":
            peer = self.client_address[0]
            _logger.warning("serve: malformed HTTP export from %s: %s", peer, outcome.message)
            self.server.journal.note_malformed()
            self._error(400, outcome.message or "malformed request", as_json)
            return
        if not outcome.ok:
            code = 429 if outcome.reason == "memory" else 503
            headers = {"Retry-After": str(max(outcome.retry_after, 1))}
            self._error(code, outcome.message or "retry later", as_json, headers)
            return
        response = ExportTraceServiceResponse()
        if outcome.rejected:
            response.partial_success.rejected_spans = outcome.rejected
            response.partial_success.error_message = outcome.message or ""
        if as_json:
            self._send(200, response_json(response), JSON)
        else:
            self._send(200, response.SerializeToString(), PROTOBUF)

    def _discard_body(self, length: int | None = None) -> None:
        """Read (and drop) a small body so the connection stays usable; close it for big ones."""
        if length is None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
        if 0 <= length <= 1024 * 1024:
            self.rfile.read(length)
        else:
            self.close_connection = True


def start_http(
    journal: Journal,
    host: str,
    port: int,
    *,
    token: TokenCheck,
    max_request_bytes: int,
    timeout: float = 30.0,
    tls: Tls | None = None,
) -> tuple[OtlpHttpServer, int, threading.Thread]:
    """Start the HTTP receiver in a thread; returns the server, the bound port and the thread."""
    server = OtlpHttpServer((host.strip("[]"), port), journal, token, max_request_bytes, timeout, tls=tls)
    thread = threading.Thread(target=server.serve_forever, name="otel-runjournal-http", daemon=True)
    thread.start()
    return server, server.server_address[1], thread
