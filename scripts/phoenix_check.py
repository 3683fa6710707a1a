"""End-to-end check against a real trace backend: Arize Phoenix, offline, on loopback.

Starts ``phoenix serve`` (temporary working dir, free ports on 127.0.0.1), runs the bundled offline
demo agent once with OTLP/HTTP and once with OTLP/gRPC, reads back what Phoenix stored through its
REST API (``GET /v1/projects/{project}/spans``) and checks names, parent links, token attributes and
that the local journal holds the same trace. Prints PASS/FAIL; exits 0 when everything passed.
Phoenix is always stopped.

Needs a virtualenv with ``arize-phoenix`` and ``otel-runjournal[demo]`` (see collector-config/README.md):

    .venv-phoenix/bin/python scripts/phoenix_check.py
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 180.0  # Phoenix runs its DB migrations on first start
INGEST_TIMEOUT_S = 30.0  # Phoenix inserts received spans in the background
EXPECTED_CHAT_SPANS = 8
ROOT_NAME = "invoke_agent research_assistant"
PROTOCOLS = (("http/protobuf", "runjournal-http"), ("grpc", "runjournal-grpc"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body = resp.read()
    return json.loads(body) if body[:1] in (b"{", b"[") else body.decode()


class Phoenix:
    """``phoenix serve`` in its own process group, on loopback, in a temporary working dir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.grpc_port = free_port()
        while self.grpc_port == self.port:
            self.grpc_port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.log_path = workdir / "phoenix.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "PHOENIX_WORKING_DIR": str(self.workdir / "phoenix"),
            "PHOENIX_HOST": HOST,
            "PHOENIX_PORT": str(self.port),
            "PHOENIX_GRPC_PORT": str(self.grpc_port),
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        }
        for var in ("PHOENIX_SQL_DATABASE_URL", "PHOENIX_POSTGRES_HOST", "PHOENIX_COLLECTOR_ENDPOINT"):
            env.pop(var, None)
        phoenix = shutil.which("phoenix", path=str(Path(sys.executable).parent)) or shutil.which("phoenix")
        cmd = [phoenix, "serve"] if phoenix else [sys.executable, "-m", "phoenix.server.main", "serve"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT_S) -> float:
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"phoenix serve exited with {self.proc.returncode}")
            try:
                http_get(f"{self.base}/healthz", timeout=2.0)
                if self._grpc_listening():
                    return time.monotonic() - started
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"Phoenix not healthy within {timeout:.0f} s")

    def _grpc_listening(self) -> bool:
        try:
            with socket.create_connection((HOST, self.grpc_port), timeout=1.0):
                return True
        except OSError:
            return False

    def spans(self, project: str, trace_id: str) -> list[dict[str, Any]]:
        """Every span Phoenix stored for ``trace_id`` in ``project`` (bounded pagination)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(50):
            query: list[tuple[str, str]] = [("trace_id", trace_id), ("limit", "1000")]
            if cursor:
                query.append(("cursor", cursor))
            url = (
                f"{self.base}/v1/projects/{urllib.parse.quote(project)}/spans?{urllib.parse.urlencode(query)}"
            )
            try:
                page = http_get(url)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:  # the project appears with its first span
                    return []
                raise
            out.extend(page.get("data", []))
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return out

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the group is ours alone
            proc.wait(timeout=20)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def run_agent(store_path: Path, endpoint: str, protocol: str, project: str) -> tuple[list[Any], set[str]]:
    """The bundled offline agent, one invoke, traced to ``endpoint`` and journaled into ``store_path``.
    Returns the journal's runs and the span ids it recorded for the run's trace."""
    from langchain_core.messages import HumanMessage

    import otel_runjournal
    from otel_runjournal import open_store
    from otel_runjournal.demo.agent import build_agent

    previous = os.environ.get("OTEL_RESOURCE_ATTRIBUTES")
    # Phoenix files spans under the resource attribute openinference.project.name
    os.environ["OTEL_RESOURCE_ATTRIBUTES"] = f"openinference.project.name={project}"
    try:
        journal = otel_runjournal.configure(
            store=str(store_path),
            service_name="phoenix-check",
            otlp_endpoint=endpoint,
            otlp_protocol=protocol,
            set_global=False,
        )
    finally:
        if previous is None:
            os.environ.pop("OTEL_RESOURCE_ATTRIBUTES", None)
        else:
            os.environ["OTEL_RESOURCE_ATTRIBUTES"] = previous
    try:
        build_agent().invoke(
            {"messages": [HumanMessage("What's the weather in Paris, and what is 6*7+1?")]},
            {"callbacks": [journal.handler], "configurable": {"thread_id": f"phoenix-{project}"}},
        )
    finally:
        journal.shutdown()
    store = open_store(str(store_path))
    try:
        runs = list(store.list_runs())
        rows = store.sql("SELECT span_id FROM spans WHERE trace_id = ?", [runs[0].trace_id]) if runs else []
        return runs, {row[0] for row in rows}
    finally:
        store.close()


def wait_for_spans(phoenix: Phoenix, project: str, trace_id: str, expected: int) -> list[dict[str, Any]]:
    """Poll until Phoenix holds ``expected`` spans of the trace (or the count stops changing), within
    INGEST_TIMEOUT_S: Phoenix inserts what it receives in the background."""
    deadline = time.monotonic() + INGEST_TIMEOUT_S
    spans: list[dict[str, Any]] = []
    stable = 0
    while time.monotonic() < deadline:
        current = phoenix.spans(project, trace_id)
        stable = stable + 1 if current and len(current) == len(spans) else 0
        spans = current
        if len(spans) >= expected or stable >= 6:
            break
        time.sleep(0.5)
    return spans


def check(runs: list[Any], journal_span_ids: set[str], spans: list[dict[str, Any]]) -> list[tuple[bool, str]]:
    results: list[tuple[bool, str]] = []

    def ok(cond: bool, what: str) -> None:
        results.append((bool(cond), what))

    by_id = {s["context"]["span_id"]: s for s in spans}
    names = [s["name"] for s in spans]
    roots = [s for s in spans if not s.get("parent_id")]
    chats = [n for n in names if n.startswith("chat ")]
    tools = sorted({n for n in names if n.startswith("execute_tool ")})
    ok(len(runs) == 1, f"journal holds 1 run (got {len(runs)})")
    trace_id = runs[0].trace_id if runs else None
    ok(bool(spans), f"Phoenix stored {len(spans)} spans for trace {trace_id}")
    phoenix_ids = set(by_id)
    missing, extra = len(journal_span_ids - phoenix_ids), len(phoenix_ids - journal_span_ids)
    ok(
        phoenix_ids == journal_span_ids,
        f"same span ids in Phoenix and the journal ({len(phoenix_ids)} / {len(journal_span_ids)}; "
        f"only in journal: {missing}, only in Phoenix: {extra})",
    )
    ok(
        len(roots) == 1 and roots[0]["name"] == ROOT_NAME,
        f"one root span '{ROOT_NAME}' (roots: {[r['name'] for r in roots]})",
    )
    ok(len(chats) == EXPECTED_CHAT_SPANS, f"{EXPECTED_CHAT_SPANS} 'chat ...' spans (got {len(chats)})")
    ok(bool(tools), f"'execute_tool ...' spans: {', '.join(tools) or 'none'}")
    orphans = [s["name"] for s in spans if s.get("parent_id") and s["parent_id"] not in by_id]
    ok(not orphans, f"every non-root span's parent is in the trace (orphans: {orphans or 'none'})")
    other_trace = [s["name"] for s in spans if s["context"]["trace_id"] != trace_id]
    ok(not other_trace, "every span carries the journal's trace id")
    with_usage = [
        s for s in spans if s["name"].startswith("chat ") and "gen_ai.usage.input_tokens" in s["attributes"]
    ]
    ok(
        chats and len(with_usage) == len(chats),
        f"gen_ai.usage.input_tokens on {len(with_usage)}/{len(chats)} chat spans "
        f"(sum {sum(int(s['attributes']['gen_ai.usage.input_tokens']) for s in with_usage)})",
    )
    root_total = roots[0]["attributes"].get("runjournal.usage.total_tokens") if roots else None
    journal_total = runs[0].total_tokens if runs else None
    ok(
        root_total is not None and int(root_total) == journal_total,
        f"root runjournal.usage.total_tokens {root_total} == journal total_tokens {journal_total}",
    )
    return results


def main() -> int:
    # a SIGTERM to this script still runs the finally below (which stops Phoenix)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="phoenix-check-"))
    phoenix = Phoenix(workdir)
    failed = False
    print(f"Phoenix: http://{HOST}:{phoenix.port} (OTLP/HTTP /v1/traces), gRPC {HOST}:{phoenix.grpc_port}")
    try:
        phoenix.start()
        try:
            took = phoenix.wait_healthy()
        except (RuntimeError, TimeoutError) as exc:
            print(f"FAIL  Phoenix did not start: {exc}\n{phoenix.log_tail()}")
            return 1
        print(f"Phoenix healthy after {took:.1f} s")
        for protocol, project in PROTOCOLS:
            endpoint = f"http://{HOST}:{phoenix.port if protocol == 'http/protobuf' else phoenix.grpc_port}"
            print(f"\n[{protocol}] → {endpoint}  project={project}")
            store_path = workdir / f"journal-{project}.duckdb"
            try:
                runs, journal_span_ids = run_agent(store_path, endpoint, protocol, project)
                trace_id = runs[0].trace_id if runs else None
                spans = wait_for_spans(phoenix, project, trace_id, len(journal_span_ids)) if trace_id else []
                results = check(runs, journal_span_ids, spans)
            except Exception as exc:  # report, keep going, still stop Phoenix
                results = [(False, f"{type(exc).__name__}: {exc}")]
            for passed, what in results:
                print(f"  {'PASS' if passed else 'FAIL'}  {what}")
            failed = failed or not all(passed for passed, _ in results)
    finally:
        phoenix.stop()
        if failed:
            print(f"\nPhoenix log (tail):\n{phoenix.log_tail()}")
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{'FAIL' if failed else 'PASS'}: Phoenix end-to-end check (OTLP/HTTP and OTLP/gRPC)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
