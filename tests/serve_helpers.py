"""Helpers for the serve tests: real agent spans, OTLP requests (protobuf / JSON), a running serve."""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_runjournal import RunJournalExporter, open_store
from otel_runjournal.serve.server import Serve, ServeConfig

ROOT = Path(__file__).resolve().parent.parent
SENDER = str(ROOT / "tests" / "serve_sender.py")


def agent_spans(runs: int = 1, *, light: bool = True, capture_content: bool = True) -> list[ReadableSpan]:
    """Finished spans of ``runs`` runs of the offline demo agent (content on the spans)."""
    import uuid

    from langchain_core.messages import HumanMessage

    from otel_runjournal import RunJournalCallbackHandler
    from otel_runjournal.demo.agent import build_agent

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "serve-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    # content only where OTLP carries it too (on the spans), never through the in-process side channel
    # (which a journal exporter left alive by another test would otherwise switch on)
    handler = RunJournalCallbackHandler(provider, capture_content=capture_content, journal_content=False)
    agent = build_agent(subagent=False, failing_tool=False, middleware=False) if light else build_agent()
    for i in range(runs):
        agent.invoke(
            {"messages": [HumanMessage(f"question {i}")]},
            {"callbacks": [handler], "run_id": uuid.uuid4(), "configurable": {"thread_id": f"th-{i}"}},
        )
    handler.shutdown()
    provider.shutdown()
    return list(memory.get_finished_spans())


def request_of(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """The OTLP request the SDK's exporters would send for these spans."""
    return encode_spans(spans)


def to_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON: lowerCamelCase, integer enums, ids as hex (not protobuf's base64)."""
    data = json_format.MessageToDict(request, use_integers_for_enums=True)

    def fix(obj: Any) -> None:
        if isinstance(obj, dict):
            for key, value in obj.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    obj[key] = base64.b64decode(value).hex()
                else:
                    fix(value)
        elif isinstance(obj, list):
            for item in obj:
                fix(item)

    fix(data)
    return json.dumps(data).encode()


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def response(self) -> ExportTraceServiceResponse:
        out = ExportTraceServiceResponse()
        if self.headers.get("content-type", "").startswith("application/json"):
            json_format.Parse(self.body.decode() or "{}", out)
        else:
            out.ParseFromString(self.body)
        return out


def post(
    port: int,
    body: bytes,
    *,
    content_type: str = "application/x-protobuf",
    gzipped: bool = False,
    token: str | None = None,
    path: str = "/v1/traces",
    headers: dict[str, str] | None = None,
) -> Reply:
    """POST to serve's HTTP receiver; returns status, body and lower-cased headers (errors too)."""
    all_headers = {"Content-Type": content_type, **(headers or {})}
    if gzipped:
        body = gzip.compress(body)
        all_headers["Content-Encoding"] = "gzip"
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers=all_headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return Reply(resp.status, resp.read(), {k.lower(): v for k, v in resp.headers.items()})
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.read(), {k.lower(): v for k, v in err.headers.items()})


def health(port: int) -> tuple[int, dict[str, Any]]:
    """GET /health → (status, JSON)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@contextmanager
def serving(store: str, spool: Path, **options: Any) -> Iterator[Serve]:
    """An in-process serve on free loopback ports; stopped (gracefully) at the end."""
    server = Serve(
        ServeConfig(store=store, grpc=("127.0.0.1", 0), http=("127.0.0.1", 0), spool=str(spool), **options)
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """``otel-runjournal serve`` as its own process (so it can be SIGKILLed / SIGTERMed)."""

    def __init__(self, store: str, spool: Path, grpc_port: int, http_port: int, *extra: str) -> None:
        self.store, self.spool, self.grpc_port, self.http_port = store, spool, grpc_port, http_port
        self.extra = extra
        self.proc: subprocess.Popen[str] | None = None
        self.logs: list[str] = []

    def start(self, timeout: float = 60) -> ServeProcess:
        cmd = [sys.executable, "-m", "otel_runjournal", "serve", "--store", self.store]
        cmd += ["--spool", str(self.spool), "--grpc", f"127.0.0.1:{self.grpc_port}"]
        cmd += ["--http", f"127.0.0.1:{self.http_port}", *self.extra]
        log = self.spool.parent / f"serve-{len(self.logs)}.log"
        self.logs.append(str(log))
        self._log = open(log, "w")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, text=True, cwd=ROOT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited early:\n{log.read_text()}")
            try:
                status, _ = health(self.http_port)
                if status in (200, 503):
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve did not start:\n{log.read_text()}")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait()

    def children(self) -> list[int]:
        """Pids of serve's child processes (its journal process, multiprocessing's helper)."""
        assert self.proc is not None
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def kill_all(self) -> None:
        """SIGKILL serve and its children at once (a crash of the machine, as far as serve can tell)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.wait()

    def log_text(self) -> str:
        return "\n".join(Path(p).read_text() for p in self.logs)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()


def spawn_sender(endpoint: str, protocol: str, runs: int, *args: str) -> subprocess.Popen[str]:
    """A sender app process (tests/serve_sender.py)."""
    env = {**os.environ, "OTEL_BSP_MAX_QUEUE_SIZE": "200000"}
    return subprocess.Popen(
        [sys.executable, SENDER, "--endpoint", endpoint, "--protocol", protocol, "--runs", str(runs), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def sender_run_ids(proc: subprocess.Popen[str], timeout: float = 300) -> list[str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    match = re.search(r'^\{"run_ids".*$', out, re.M)
    assert match, f"no run ids in sender output: {out[-500:]} {err[-2000:]}"
    return list(json.loads(match.group(0))["run_ids"])


def journal_events(location: str) -> Counter[tuple[str, str, str | None]]:
    """(run id, event type, span id) of every journal event, counted."""
    store = open_store(location)
    try:
        out: Counter[tuple[str, str, str | None]] = Counter()
        for run in store.list_runs(limit=1000):
            for e in store.list_events(run.run_id, limit=1000):
                out[(e.run_id, e.event_type, e.span_id)] += 1
        return out
    finally:
        store.close()


def exported_events(
    batches: Sequence[Sequence[ReadableSpan]], location: str
) -> Counter[tuple[str, str, str | None]]:
    """What the in-process exporter journals for the same spans, exported batch by batch (what serve
    must journal)."""
    exporter = RunJournalExporter(location)
    for spans in batches:
        exporter.export(spans)
    exporter.shutdown()
    return journal_events(location)


def wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    """Poll ``condition()`` until true; fail (saying ``what`` never happened) at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.02)
