"""A tiny OTLP/HTTP sink in its own process: accepts trace exports, counts spans, discards them.

Stands in for a Collector so "ours with OTLP only" pays the real serialisation + HTTP cost, without a
collector binary or an unreachable port. ``GET /stats`` returns ``{"requests": n, "spans": m}``.
Run as a script it prints its port on the first line of stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_stats = {"requests": 0, "spans": 0}
_lock = threading.Lock()


def _count_spans(body: bytes) -> int:
    try:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    except ImportError:  # pragma: no cover - the proto package is a dev dependency
        return 0
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        spans = _count_spans(body) if self.path.endswith("/v1/traces") else 0
        with _lock:
            _stats["requests"] += 1
            _stats["spans"] += spans
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        with _lock:
            payload = json.dumps(_stats).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve() -> None:
    """Serve on a free loopback port until stdin closes; print the port first."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # the parent closes our stdin (or dies) to stop us
    server.shutdown()


@contextmanager
def running_sink() -> Iterator[str]:
    """Start the sink process; yield its traces endpoint URL; stop it on exit."""
    proc = subprocess.Popen(
        [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1/traces"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stats(endpoint: str) -> dict[str, int]:
    """Requests and spans the sink behind ``endpoint`` has received so far."""
    with urllib.request.urlopen(endpoint.rsplit("/v1/", 1)[0] + "/stats", timeout=5) as response:
        return dict(json.load(response))


if __name__ == "__main__":
    serve()
