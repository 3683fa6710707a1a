"""A real OTLP trace receiver on loopback (gRPC and HTTP/protobuf), decoding with opentelemetry-proto.

Used two ways:
- in-process: ``with OtlpReceiver() as rx: ...`` then ``rx.wait_for_spans(n)``;
- as its own process: ``python tests/otlp_receiver.py OUT_DIR`` prints one JSON line
  ``{"grpc": port, "http": port}`` and writes every received request, serialized, as
  ``OUT_DIR/<n>-<transport>.pb``; :func:`read_dir` decodes them. :class:`ReceiverProcess` wraps it.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import time
import zlib
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

ExportRequest = trace_service_pb2.ExportTraceServiceRequest


@dataclass
class ReceivedSpan:
    """A decoded span, flattened for assertions."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: int
    status_code: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[str] = field(default_factory=list)
    transport: str = ""


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which) if which else None


def decode(request: ExportRequest, transport: str = "") -> list[ReceivedSpan]:
    """Flatten an export request into :class:`ReceivedSpan` objects."""
    out: list[ReceivedSpan] = []
    for rs in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for span in ss.spans:
                out.append(_flatten(span, resource, transport))
    return out


def _flatten(span: PbSpan, resource: dict[str, Any], transport: str) -> ReceivedSpan:
    return ReceivedSpan(
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        kind=span.kind,
        status_code=span.status.code,
        attributes={kv.key: _value(kv.value) for kv in span.attributes},
        resource=resource,
        events=[e.name for e in span.events],
        transport=transport,
    )


class _Servicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: OtlpReceiver) -> None:
        self._sink = sink

    def Export(self, request: ExportRequest, context: Any) -> Any:
        self._sink._record(request, "grpc")
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    """OTLP/gRPC and OTLP/HTTP trace endpoints on 127.0.0.1 (ephemeral ports), collecting requests."""

    def __init__(self, out_dir: Path | None = None) -> None:
        self.requests: list[tuple[str, ExportRequest]] = []
        self._out_dir = out_dir
        self._cond = threading.Condition()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Servicer(self), self._grpc)
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _make_http_handler(self))
        self.http_port = self._http.server_address[1]
        self._http_thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> OtlpReceiver:
        self._grpc.start()
        self._http_thread.start()
        return self

    def stop(self) -> None:
        self._grpc.stop(grace=None)
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, request: ExportRequest, transport: str) -> None:
        with self._cond:
            self.requests.append((transport, request))
            if self._out_dir is not None:
                path = self._out_dir / f"{len(self.requests):05d}-{transport}.pb"
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(request.SerializeToString())
                tmp.rename(path)
            self._cond.notify_all()

    def spans(self) -> list[ReceivedSpan]:
        with self._cond:
            return [s for transport, req in self.requests for s in decode(req, transport)]

    def wait_for_spans(self, count: int, timeout: float = 30.0) -> list[ReceivedSpan]:
        """Block until at least ``count`` spans arrived (or the timeout passed); return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(len(decode(r)) for _, r in self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        return self.spans()


def _make_http_handler(sink: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            if "protobuf" not in (self.headers.get("Content-Type") or ""):
                self.send_error(415)
                return
            request = ExportRequest()
            request.ParseFromString(body)
            sink._record(request, "http")
            payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def read_dir(out_dir: Path) -> list[ReceivedSpan]:
    """Decode every request a receiver process wrote to ``out_dir``."""
    spans: list[ReceivedSpan] = []
    for path in sorted(out_dir.glob("*.pb")):
        request = ExportRequest()
        request.ParseFromString(path.read_bytes())
        spans.extend(decode(request, path.stem.split("-", 1)[1]))
    return spans


class ReceiverProcess:
    """Runs this module as a separate process; ``spans()`` decodes what it has received so far."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [sys.executable, __file__, str(out_dir)], stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        ports = json.loads(self._proc.stdout.readline())
        self.grpc_endpoint = f"http://127.0.0.1:{ports['grpc']}"
        self.http_endpoint = f"http://127.0.0.1:{ports['http']}"

    def spans(self) -> list[ReceivedSpan]:
        return read_dir(self.out_dir)

    def wait_for_spans(self, count: int, timeout: float = 30.0) -> list[ReceivedSpan]:
        deadline = time.monotonic() + timeout
        while len(spans := self.spans()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return spans

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=10)

    def __enter__(self) -> ReceiverProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    receiver = OtlpReceiver(Path(sys.argv[1])).start()
    print(json.dumps({"grpc": receiver.grpc_port, "http": receiver.http_port}), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
