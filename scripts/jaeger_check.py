"""End-to-end check: the demo agent → the OpenTelemetry Collector running collector-config/ as shipped
→ a real Jaeger v2 (in-memory storage), read back through Jaeger's query API and compared, span by
span, with the local journal (DuckDB). Prints PASS/FAIL per check; exits 0 when everything passed.
Jaeger and the Collector are always stopped.

Needs the two binaries (built by .ci/services/20-otel-binaries.sh, or by hand: collector-config/README.md)
and a virtualenv with ``otel-runjournal[demo]``:

    JAEGER_BIN=... OTELCOL_BIN=... .venv/bin/python scripts/jaeger_check.py

What it does, all on free ports of 127.0.0.1:
1. ``validate`` both configs with their own binaries; Jaeger (collector-config/jaeger.yaml) and the
   Collector (collector-config/otel-collector.yaml, the file itself) started with env vars only.
2. The demo agent, traced with ``configure()`` and journaling into DuckDB, exports over OTLP/gRPC and
   OTLP/HTTP to the Collector and over OTLP/HTTP straight to Jaeger; one more run with
   ``capture_content=True``.
3. Jaeger's ``/api/v3`` API: one trace per run, every journal span there with the same name, parent,
   kind, status, events and ``gen_ai.*`` / ``runjournal.*`` attributes, root totals = the ``runs``
   row, message content only in the capture_content run, the error run in ERROR with its exception.
4. The Collector's debug exporter counted every span; its memory_limiter ran with the configured
   limits, and refuses data when started with a tiny limit; the Collector stopped and restarted under
   a running app: the app neither blocks nor raises, and what the SDK reports as dropped is printed
   and must match what Jaeger lacks.

About 900 lines, over the usual ~400: one script with one job whose steps share the same helpers
(the two servers, the journal reader, the parsers for Jaeger's API and the Collector's metrics); split
them out once a second script needs them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
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
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
COLLECTOR_CONFIG = REPO / "collector-config" / "otel-collector.yaml"
JAEGER_CONFIG = REPO / "collector-config" / "jaeger.yaml"
STARTUP_TIMEOUT_S = 60.0
INGEST_TIMEOUT_S = 30.0
COMPARED = ("gen_ai.operation.name", "gen_ai.request.model")
COMPARED_PREFIXES = ("gen_ai.usage.", "runjournal.")
CONTENT_ATTRS = ("gen_ai.input.messages", "gen_ai.output.messages")
ROOT_TOTALS = {
    "runjournal.usage.input_tokens": "input_tokens",
    "runjournal.usage.output_tokens": "output_tokens",
    "runjournal.usage.total_tokens": "total_tokens",
    "runjournal.usage.cached_input_tokens": "cached_input_tokens",
    "runjournal.usage.reasoning_tokens": "reasoning_tokens",
    "runjournal.llm_call_count": "llm_call_count",
    "runjournal.usage.lead_agent_tokens": "lead_agent_tokens",
    "runjournal.usage.subagent_tokens": "subagent_tokens",
    "runjournal.usage.middleware_tokens": "middleware_tokens",
}
# Differences between the root span and the runs row that the check found and the library has not
# settled yet; each must still occur (so the entry goes once it is fixed).
KNOWN_ROOT_MISMATCHES: dict[tuple[str, str], str] = {}
KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUSES = {0: "UNSET", 1: "OK", 2: "ERROR"}


# --- reporting ------------------------------------------------------------------------------------
class Report:
    """PASS/FAIL lines as they happen; ``failed`` once any check failed."""

    def __init__(self) -> None:
        self.failed = False

    def ok(self, cond: Any, what: str) -> bool:
        passed = bool(cond)
        self.failed = self.failed or not passed
        print(f"  {'PASS' if passed else 'FAIL'}  {what}", flush=True)
        return passed

    def section(self, title: str) -> None:
        print(f"\n[{title}]", flush=True)


# --- processes ------------------------------------------------------------------------------------
def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports on HOST (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def http_get(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body = resp.read()
    return json.loads(body) if body[:1] in (b"{", b"[") else body.decode()


class Server:
    """A Collector-style binary (Jaeger or ours) in its own process group, log to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path, health: str) -> None:
        self.name, self.argv, self.env, self.log_path, self.health = name, argv, env, log, health
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT_S) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                http_get(self.health, timeout=2.0)
                return time.monotonic() - started
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not healthy within {timeout:.0f} s:\n{self.log_tail()}")

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

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def validate(binary: str, config: Path, env: dict[str, str]) -> tuple[bool, str]:
    """The binary's own ``validate`` command on ``config``."""
    out = subprocess.run(
        [binary, "validate", f"--config={config}"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.returncode == 0, (out.stdout + out.stderr).strip()[-600:]


@dataclass
class Stack:
    """Jaeger + the Collector on loopback ports of their own."""

    jaeger_bin: str
    otelcol_bin: str
    workdir: Path
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = ("j_grpc", "j_http", "j_query", "j_query_grpc", "j_health", "c_grpc", "c_http", "c_health")
        self.ports = dict(zip(names, free_ports(len(names) + 1), strict=False))
        self.ports["c_metrics"] = free_ports(1)[0]
        p = self.ports
        self.jaeger_env = {
            "JAEGER_OTLP_GRPC_ENDPOINT": f"{HOST}:{p['j_grpc']}",
            "JAEGER_OTLP_HTTP_ENDPOINT": f"{HOST}:{p['j_http']}",
            "JAEGER_QUERY_HTTP_ENDPOINT": f"{HOST}:{p['j_query']}",
            "JAEGER_QUERY_GRPC_ENDPOINT": f"{HOST}:{p['j_query_grpc']}",
            "JAEGER_HEALTH_ENDPOINT": f"{HOST}:{p['j_health']}",
        }
        self.collector_env = collector_env(
            p["c_grpc"], p["c_http"], p["c_health"], p["c_metrics"], p["j_grpc"]
        )
        self.query = f"http://{HOST}:{p['j_query']}"
        self.jaeger = Server(
            "jaeger",
            [self.jaeger_bin, f"--config={JAEGER_CONFIG}"],
            self.jaeger_env,
            self.workdir / "jaeger.log",
            f"http://{HOST}:{p['j_health']}/status",
        )
        self.collector = self.make_collector("collector", self.collector_env)

    def make_collector(self, name: str, env: dict[str, str]) -> Server:
        return Server(
            name,
            [self.otelcol_bin, f"--config={COLLECTOR_CONFIG}"],
            env,
            self.workdir / f"{name}.log",
            f"http://{env['COLLECTOR_HEALTH_ENDPOINT']}/",
        )

    def endpoint(self, target: str, protocol: str) -> str:
        key = ("c_" if target == "collector" else "j_") + ("grpc" if protocol == "grpc" else "http")
        return f"http://{HOST}:{self.ports[key]}"


def collector_env(grpc: int, http: int, health: int, metrics: int, jaeger_grpc: int) -> dict[str, str]:
    return {
        "COLLECTOR_OTLP_GRPC_ENDPOINT": f"{HOST}:{grpc}",
        "COLLECTOR_OTLP_HTTP_ENDPOINT": f"{HOST}:{http}",
        "COLLECTOR_HEALTH_ENDPOINT": f"{HOST}:{health}",
        "COLLECTOR_METRICS_HOST": HOST,
        "COLLECTOR_METRICS_PORT": str(metrics),
        "JAEGER_OTLP_ENDPOINT": f"{HOST}:{jaeger_grpc}",
    }


# --- Jaeger's API, normalised ---------------------------------------------------------------------
def _hex_id(value: str) -> str:
    if re.fullmatch(r"[0-9a-fA-F]{16}|[0-9a-fA-F]{32}", value or ""):
        return value.lower()
    return base64.b64decode(value).hex() if value else ""


def _any_value(v: dict[str, Any]) -> Any:
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return [_any_value(x) for x in v["arrayValue"].get("values", [])]
    return v


def _attrs(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {a["key"]: _any_value(a.get("value", {})) for a in items or []}


def _enum(value: Any, table: dict[int, str], prefix: str) -> str:
    if isinstance(value, int):
        return table.get(value, str(value))
    return str(value or table[0]).removeprefix(prefix)


def jaeger_spans(query: str, trace_id: str) -> list[dict[str, Any]]:
    """The trace's spans from ``GET /api/v3/traces/{id}``, flattened and normalised ([] if unknown)."""
    try:
        body = http_get(f"{query}/api/v3/traces/{trace_id}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise
    out = []
    for rs in body.get("result", {}).get("resourceSpans", []):
        resource = _attrs(rs.get("resource", {}).get("attributes"))
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                status = s.get("status") or {}
                out.append(
                    {
                        "trace_id": _hex_id(s["traceId"]),
                        "span_id": _hex_id(s["spanId"]),
                        "parent": _hex_id(s.get("parentSpanId", "")) or None,
                        "name": s["name"],
                        "kind": _enum(s.get("kind", 0), KINDS, "SPAN_KIND_"),
                        "status": _enum(status.get("code", 0), STATUSES, "STATUS_CODE_"),
                        "attributes": _attrs(s.get("attributes")),
                        "events": [(e["name"], _attrs(e.get("attributes"))) for e in s.get("events", [])],
                        "service": resource.get("service.name"),
                    }
                )
    return out


def jaeger_trace_ids(query: str, service: str, since: float) -> set[str]:
    """Every trace id Jaeger holds for ``service`` since ``since`` (``GET /api/v3/traces``)."""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    params = urllib.parse.urlencode(
        {
            "query.service_name": service,
            "query.start_time_min": time.strftime(fmt, time.gmtime(since - 60)),
            "query.start_time_max": time.strftime(fmt, time.gmtime(time.time() + 60)),
            "query.num_traces": "1000",
        }
    )
    try:
        body = http_get(f"{query}/api/v3/traces?{params}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return set()
        raise
    return {
        _hex_id(s["traceId"])
        for rs in body.get("result", {}).get("resourceSpans", [])
        for ss in rs.get("scopeSpans", [])
        for s in ss.get("spans", [])
    }


def wait_for_trace(query: str, trace_id: str, expected: int, timeout: float = INGEST_TIMEOUT_S) -> list[dict]:
    deadline = time.monotonic() + timeout
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        spans = jaeger_spans(query, trace_id)
        if len(spans) >= expected:
            break
        time.sleep(0.3)
    return spans


# --- the app side ---------------------------------------------------------------------------------
@contextlib.contextmanager
def environ(**values: str | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Journal:
    runs: list[dict[str, Any]]
    spans: list[dict[str, Any]]


def read_journal(store_path: Path) -> Journal:
    """The journal's ``runs`` and ``spans`` rows, as dicts (read-only)."""
    import duckdb

    con = duckdb.connect(str(store_path), read_only=True)
    try:

        def rows(sql: str) -> list[dict[str, Any]]:
            cur = con.execute(sql)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

        runs = rows("SELECT * FROM runs ORDER BY started_at")
        spans = rows("SELECT * FROM spans")
    finally:
        con.close()
    for s in spans:
        s["attributes"] = json.loads(s["attributes"] or "{}")
        s["events"] = json.loads(s["events"] or "[]")
    return Journal(runs, spans)


def run_demo_scenario(store: Path, service: str, endpoint: str, protocol: str) -> None:
    """The CLI demo's agent runs (``run_demo``: 2 runs + 1 failing run), OTLP from the environment."""
    from otel_runjournal.cli.demo_run import run_demo

    with environ(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol, OTEL_SERVICE_NAME=service
    ):
        run_demo(str(store), runs=2, threads=2)


def run_content_scenario(store: Path, service: str, endpoint: str, protocol: str) -> None:
    """One agent run wired with ``configure(capture_content=True)``."""
    from langchain_core.messages import HumanMessage

    import otel_runjournal
    from otel_runjournal.demo.agent import build_agent

    wired = otel_runjournal.configure(
        store=str(store),
        service_name=service,
        otlp_endpoint=endpoint,
        otlp_protocol=protocol,
        capture_content=True,
        set_global=False,
    )
    try:
        build_agent().invoke(
            {"messages": [HumanMessage("What's the weather in Paris, and what is 6*7+1?")]},
            {"callbacks": [wired.handler], "configurable": {"thread_id": f"content-{uuid.uuid4().hex[:6]}"}},
        )
    finally:
        wired.shutdown()


# --- comparing ------------------------------------------------------------------------------------
def _compared(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if k in COMPARED or k.startswith(COMPARED_PREFIXES)}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return bool(a == b)


def span_diffs(mine: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """What differs between a journal span row and the same span in Jaeger."""
    diffs = []
    for what, a, b in (
        ("name", mine["name"], theirs["name"]),
        ("parent", mine["parent_span_id"], theirs["parent"]),
        ("kind", mine["kind"], theirs["kind"]),
        ("status", mine["status_code"], theirs["status"]),
        ("events", [e["name"] for e in mine["events"]], [e[0] for e in theirs["events"]]),
    ):
        if a != b:
            diffs.append(f"{what}: journal {a!r} vs Jaeger {b!r}")
    ours, jaegers = _compared(mine["attributes"]), _compared(theirs["attributes"])
    for key in sorted(set(ours) | set(jaegers)):
        if key not in jaegers or key not in ours or not _same(ours[key], jaegers[key]):
            diffs.append(f"{key}: journal {ours.get(key)!r} vs Jaeger {jaegers.get(key)!r}")
    return diffs


@dataclass
class Scenario:
    name: str
    target: str  # collector | jaeger
    protocol: str  # grpc | http/protobuf
    content: bool = False

    @property
    def service(self) -> str:
        return f"rj-check-{self.name}"


def check_scenario(
    report: Report, stack: Stack, scenario: Scenario, journal: Journal, since: float
) -> dict[str, list[dict[str, Any]]]:
    """Steps 3's checks for one scenario; returns Jaeger's spans per trace id."""
    expected_runs = 1 if scenario.content else 3
    trace_ids = [r["trace_id"] for r in journal.runs]
    report.ok(
        len(journal.runs) == expected_runs and len(set(trace_ids)) == len(trace_ids) and all(trace_ids),
        f"journal: {len(journal.runs)} runs, {len(set(trace_ids))} distinct trace ids, "
        f"{len(journal.spans)} spans",
    )
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for run in journal.runs:
        expected = sum(1 for s in journal.spans if s["trace_id"] == run["trace_id"])
        by_trace[run["trace_id"]] = wait_for_trace(stack.query, run["trace_id"], expected)
    found = jaeger_trace_ids(stack.query, scenario.service, since)
    report.ok(
        found == set(trace_ids),
        f"Jaeger holds one trace per run for service {scenario.service} "
        f"({len(found)} traces / {len(trace_ids)} runs)",
    )
    jaeger_by_id = {s["span_id"]: s for spans in by_trace.values() for s in spans}
    missing = [s["name"] for s in journal.spans if s["span_id"] not in jaeger_by_id]
    extra = len(jaeger_by_id) - (len(journal.spans) - len(missing))
    report.ok(
        not missing and extra == 0,
        f"every journal span is in Jaeger ({len(journal.spans) - len(missing)}/{len(journal.spans)}; "
        f"missing {missing[:3] or 'none'}; only in Jaeger: {extra})",
    )
    diffs = []
    for span in journal.spans:
        if span["span_id"] in jaeger_by_id:
            diffs += [f"{span['name']}: {d}" for d in span_diffs(span, jaeger_by_id[span["span_id"]])]
    compared = sorted({k for s in journal.spans for k in _compared(s["attributes"])})
    report.ok(
        not diffs,
        f"same name, parent, kind, status, events and {len(compared)} gen_ai/runjournal attributes "
        f"on every span ({len(diffs)} differences{': ' + '; '.join(diffs[:3]) if diffs else ''})",
    )
    root_diffs: list[str] = []
    known: list[str] = []
    for run in journal.runs:
        roots = [s for s in by_trace[run["trace_id"]] if s["parent"] is None]
        if len(roots) != 1:
            root_diffs.append(f"{run['run_id']}: {len(roots)} roots")
            continue
        attrs = roots[0]["attributes"]
        for attr, column in ROOT_TOTALS.items():
            if not _same(attrs.get(attr), run[column]):
                diff = f"{run['run_id'][:8]} ({run['status']}) {attr}={attrs.get(attr)}"
                diff += f" vs runs.{column}={run[column]}"
                (known if (run["status"], attr) in KNOWN_ROOT_MISMATCHES else root_diffs).append(diff)
    totals = sum(r["total_tokens"] or 0 for r in journal.runs)
    report.ok(
        not root_diffs,
        f"each root span's runjournal.usage.* / llm_call_count == its runs row (total_tokens "
        f"summed {totals}){': ' + '; '.join(root_diffs[:3]) if root_diffs else ''}",
    )
    errored = any(r["status"] == "error" for r in journal.runs)
    for (status, attr), why in KNOWN_ROOT_MISMATCHES.items():
        if status == "error" and errored:
            seen = [d for d in known if attr in d]
            # strict: once fixed, this fails until the entry is removed from KNOWN_ROOT_MISMATCHES
            report.ok(seen, f"KNOWN mismatch still there ({why}): {'; '.join(seen) or 'gone - remove it'}")
    with_content = [s for s in jaeger_by_id.values() if any(a in s["attributes"] for a in CONTENT_ATTRS)]
    if scenario.content:
        chats = [s for s in jaeger_by_id.values() if s["name"].startswith("chat ")]
        full = [s for s in chats if all(a in s["attributes"] for a in CONTENT_ATTRS)]
        question = any("weather in Paris" in str(s["attributes"].get(CONTENT_ATTRS[0])) for s in full)
        report.ok(
            chats and len(full) == len(chats) and question,
            f"capture_content=True: gen_ai.input/output.messages on {len(full)}/{len(chats)} chat spans "
            f"in Jaeger, the question among them: {question}",
        )
    else:
        report.ok(not with_content, f"no gen_ai.input/output.messages in Jaeger ({len(with_content)} spans)")
    errors = [r for r in journal.runs if r["status"] == "error"]
    if not scenario.content:
        ok = len(errors) == 1
        detail = "no error run"
        if ok:
            spans = by_trace[errors[0]["trace_id"]]
            root = next((s for s in spans if s["parent"] is None), None)
            exc = [e for s in spans if s["status"] == "ERROR" for e in s["events"] if e[0] == "exception"]
            ok = bool(root and root["status"] == "ERROR" and exc)
            detail = (
                f"root status {root and root['status']}, {len(exc)} exception events "
                f"({exc[0][1].get('exception.type') if exc else None}), error.type "
                f"{root and root['attributes'].get('error.type')}"
            )
        report.ok(ok, f"the error run in Jaeger: {detail}")
    return by_trace


# --- the Collector's own signals ------------------------------------------------------------------
def debug_span_count(log: str) -> int:
    """Spans the debug exporter logged (its one line per batch: ``"spans": N``)."""
    total = 0
    for line in log.splitlines():
        if "debug" in line and "Traces" in line:
            m = re.search(r'"spans": (\d+)', line)
            total += int(m.group(1)) if m else 0
    return total


def collector_metrics(port: int) -> dict[str, float]:
    """The Collector's own Prometheus metrics, summed per name (labels and ``_total`` dropped)."""
    text = http_get(f"http://{HOST}:{port}/metrics")
    out: dict[str, float] = {}
    for line in str(text).splitlines():
        if line and not line.startswith("#"):
            name = re.split(r"[{ ]", line, maxsplit=1)[0].removesuffix("_total")
            with contextlib.suppress(ValueError):
                out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def sdk_span_counts(reader: Any) -> dict[str, int]:
    """The SDK's own span metrics (``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``): OTLP exporter
    exported / failed, batch processor processed / dropped, by otel.component.type and error.type."""
    out: Counter[str] = Counter()
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name not in (
                    "otel.sdk.exporter.span.exported",
                    "otel.sdk.processor.span.processed",
                ):
                    continue
                for point in metric.data.data_points:
                    attrs = dict(point.attributes or {})
                    key = f"{attrs.get('otel.component.type')}:{attrs.get('error.type', 'ok')}"
                    out[key] += int(point.value)
    return dict(out)


# --- the steps ------------------------------------------------------------------------------------
SCENARIOS = (
    Scenario("collector-grpc", "collector", "grpc"),
    Scenario("collector-http", "collector", "http/protobuf"),
    Scenario("direct-http", "jaeger", "http/protobuf"),
    Scenario("content-http", "collector", "http/protobuf", content=True),
)


def step_validate(report: Report, stack: Stack) -> bool:
    report.section("1. the configs, validated by their own binaries")
    ok_c, out_c = validate(stack.otelcol_bin, COLLECTOR_CONFIG, stack.collector_env)
    report.ok(ok_c, f"otelcol validate collector-config/otel-collector.yaml{'' if ok_c else ': ' + out_c}")
    ok_j, out_j = validate(stack.jaeger_bin, JAEGER_CONFIG, stack.jaeger_env)
    report.ok(ok_j, f"jaeger validate collector-config/jaeger.yaml{'' if ok_j else ': ' + out_j}")
    comps = subprocess.run(
        [stack.otelcol_bin, "components"], capture_output=True, text=True, timeout=30
    ).stdout
    names = set(re.findall(r"name: (\S+)", comps))
    wanted = {
        "otlp",
        "memory_limiter",
        "batch",
        "debug",
        "otlp_grpc",
        "otlp_http",
        "health_check",
        "file_storage",
    }
    report.ok(
        wanted <= names,
        f"the Collector has {', '.join(sorted(wanted & names))} (missing {wanted - names or 'none'})",
    )
    return ok_c and ok_j


def step_collector_signals(report: Report, stack: Stack, via_collector: int) -> None:
    report.section("4a. the Collector's debug exporter and memory_limiter, as configured")
    time.sleep(1.5)  # the batch processor's timeout
    log = stack.collector.log_text()
    logged = debug_span_count(log)
    report.ok(
        logged == via_collector,
        f"debug exporter logged {logged} spans = the {via_collector} sent via the Collector",
    )
    limiter = next((ln for ln in log.splitlines() if "Memory limiter configured" in ln), "")
    settings = re.findall(r'"(limit_mib|spike_limit_mib|check_interval)": (\d+)', limiter)
    report.ok(
        settings == [("limit_mib", "512"), ("spike_limit_mib", "128"), ("check_interval", "1")],
        f"memory_limiter in the pipeline with the configured limits: {settings or 'no log line'}",
    )
    m = collector_metrics(stack.ports["c_metrics"])
    accepted, refused = m.get("otelcol_receiver_accepted_spans"), m.get("otelcol_receiver_refused_spans", 0)
    sent = m.get("otelcol_exporter_sent_spans")
    report.ok(
        accepted == via_collector and not refused and sent == 2 * via_collector,
        f"Collector metrics: accepted {accepted}, refused {refused}, sent {sent} (Jaeger + debug)",
    )


def step_memory_limiter(report: Report, stack: Stack, reader: Any, workdir: Path) -> None:
    report.section("4b. memory_limiter refuses data when the Collector is over its limit")
    grpc, http, health, metrics = free_ports(4)
    env = {
        **collector_env(grpc, http, health, metrics, stack.ports["j_grpc"]),
        "COLLECTOR_MEMORY_LIMIT_MIB": "2",  # far below any Go heap: every batch is refused
        "COLLECTOR_MEMORY_SPIKE_MIB": "1",
    }
    tight = stack.make_collector("collector-tight", env)
    try:
        tight.start()
        tight.wait_healthy()
        deadline = time.monotonic() + 10  # its first memory check runs check_interval (1 s) after start
        while "Memory usage is above" not in tight.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        before = sdk_span_counts(reader)
        store = workdir / "journal-tight.duckdb"
        t0 = time.monotonic()
        with environ(OTEL_EXPORTER_OTLP_TIMEOUT="3"):
            run_content_scenario(store, "rj-check-tight", f"http://{HOST}:{grpc}", "grpc")
        took = time.monotonic() - t0
        journal = read_journal(store)
        time.sleep(1.5)
        m = collector_metrics(metrics)
        refused = m.get("otelcol_receiver_refused_spans", 0)
        log = tight.log_text()
        report.ok(
            refused >= len(journal.spans) > 0 and "limit" in log,
            f"limit_mib=2 (env COLLECTOR_MEMORY_LIMIT_MIB): the Collector refused {refused:.0f} spans "
            f"(otelcol_receiver_refused_spans), the journal holds all {len(journal.spans)}",
        )
        after = sdk_span_counts(reader)
        failed = {
            k: v - before.get(k, 0)
            for k, v in after.items()
            if not k.endswith(":ok") and v - before.get(k, 0)
        }
        report.ok(
            not jaeger_spans(stack.query, journal.runs[0]["trace_id"]) and failed,
            f"nothing reached Jaeger; the SDK reports {failed} (run + shutdown took {took:.1f} s, "
            f"OTEL_EXPORTER_OTLP_TIMEOUT=3)",
        )
        lines = [ln.strip()[:160] for ln in log.splitlines() if "memory" in ln.lower()][:2]
        print("        collector log: " + "\n        collector log: ".join(lines))
    finally:
        tight.stop()


def step_outage(report: Report, stack: Stack, reader: Any, workdir: Path) -> None:
    report.section("4c. the Collector stops and restarts while the app keeps exporting")
    from langchain_core.messages import HumanMessage

    import otel_runjournal
    from otel_runjournal.demo.agent import build_agent

    store = workdir / "journal-outage.duckdb"
    before = sdk_span_counts(reader)
    # export every 0.5 s and give up on a batch after 2 s (SDK defaults: 5 s, 10 s, which bridge a
    # 4 s outage without loss): batches that fall in the outage are dropped, and must be reported
    with environ(OTEL_BSP_SCHEDULE_DELAY="500", OTEL_EXPORTER_OTLP_TIMEOUT="2"):
        wired = otel_runjournal.configure(
            store=str(store),
            service_name="rj-check-outage",
            otlp_endpoint=stack.endpoint("collector", "grpc"),
            otlp_protocol="grpc",
            set_global=False,
        )
    agent = build_agent()
    phases: list[tuple[str, str, float]] = []  # (phase, thread id, invoke seconds)
    errors: list[str] = []

    def run_for(phase: str, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            thread = f"outage-{phase}-{uuid.uuid4().hex[:6]}"
            t0 = time.monotonic()
            try:
                agent.invoke(
                    {"messages": [HumanMessage("Give me a one-line forecast for Paris.")]},
                    {"callbacks": [wired.handler], "configurable": {"thread_id": thread}},
                )
            except Exception as exc:  # the point: there must be none
                errors.append(f"{type(exc).__name__}: {exc}")
            phases.append((phase, thread, time.monotonic() - t0))
            time.sleep(0.2)

    run_for("up", 1.5)
    wired.force_flush()
    stack.collector.stop()  # a graceful stop: its batch is flushed to Jaeger
    run_for("down", 5.0)
    stack.collector.start()
    restart_s = stack.collector.wait_healthy()
    run_for("restarted", 1.5)
    t0 = time.monotonic()
    wired.shutdown()
    shutdown_s = time.monotonic() - t0
    slowest = max(p[2] for p in phases)
    report.ok(
        not errors and slowest < 2.0,
        f"{len(phases)} runs, none raised ({errors[:1] or 'no errors'}); "
        f"slowest invoke {slowest * 1000:.0f} ms; "
        f"shutdown (flush) {shutdown_s:.1f} s; Collector down 5 s, healthy {restart_s:.1f} s after restart",
    )
    journal = read_journal(store)
    by_thread = {r["thread_id"]: r for r in journal.runs}
    report.ok(
        len(by_thread) == len(phases),
        f"the journal recorded every run ({len(by_thread)}/{len(phases)}) whatever the Collector did",
    )
    time.sleep(2.5)  # the Collector's batch timeout, Jaeger's ingestion
    spans_of = Counter(s["trace_id"] for s in journal.spans)
    arrived: Counter[str] = Counter()
    lost_spans = 0
    for phase, thread, _ in phases:
        trace_id = by_thread[thread]["trace_id"]
        got = len(jaeger_spans(stack.query, trace_id))
        arrived[
            f"{phase}:{'complete' if got == spans_of[trace_id] else 'partial' if got else 'missing'}"
        ] += 1
        lost_spans += spans_of[trace_id] - got
    after = sdk_span_counts(reader)
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
    reported = sum(
        v for k, v in delta.items() if k.startswith("otlp_grpc_span_exporter:") and not k.endswith(":ok")
    )
    reported += sum(v for k, v in delta.items() if k.startswith("batching_span_processor:queue_full"))
    incomplete = [k for k in arrived if k.startswith(("up:", "restarted:")) and not k.endswith(":complete")]
    print(f"        runs by phase and arrival in Jaeger: {dict(sorted(arrived.items()))}")
    print(f"        SDK self-metrics (spans): {delta}")
    report.ok(
        arrived["up:complete"] and arrived["restarted:complete"] and not incomplete,
        "every run made while the Collector was up (before the stop, after the restart) is complete "
        f"in Jaeger{': not ' + str(incomplete) if incomplete else ''}",
    )
    report.ok(
        reported == lost_spans,
        f"the SDK reports {reported} spans as not exported (otel.sdk.exporter.span.exported with "
        f"error.type, plus queue_full drops) = the {lost_spans} spans Jaeger lacks",
    )


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    jaeger_bin, otelcol_bin = os.environ.get("JAEGER_BIN"), os.environ.get("OTELCOL_BIN")
    if not (
        jaeger_bin and otelcol_bin and os.access(jaeger_bin, os.X_OK) and os.access(otelcol_bin, os.X_OK)
    ):
        print("FAIL  set JAEGER_BIN and OTELCOL_BIN to the built binaries (.ci/services/20-otel-binaries.sh)")
        return 1
    # the SDK's own metrics (exported / failed / dropped spans) into an in-memory reader
    os.environ["OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"] = "true"
    for var in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_RESOURCE_ATTRIBUTES",
    ):
        os.environ.pop(var, None)
    os.environ.pop("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", None)
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    logging.basicConfig(level=logging.ERROR, format="        app log: %(name)s: %(message).160s")

    workdir = Path(tempfile.mkdtemp(prefix="jaeger-check-"))
    stack = Stack(jaeger_bin, otelcol_bin, workdir)
    report = Report()
    print(
        f"Jaeger query API {stack.query}; Collector OTLP gRPC {stack.endpoint('collector', 'grpc')}, "
        f"HTTP {stack.endpoint('collector', 'http/protobuf')}; logs in {workdir}"
    )
    try:
        if not step_validate(report, stack):
            return 1
        report.section("1. Jaeger and the Collector on loopback")
        for server in (stack.jaeger, stack.collector):
            server.start()
            try:
                took = server.wait_healthy()
            except (RuntimeError, TimeoutError) as exc:
                report.ok(False, f"{server.name} did not start: {exc}")
                return 1
            report.ok(True, f"{server.name} healthy after {took:.1f} s ({server.health})")
        via_collector = 0
        for scenario in SCENARIOS:
            endpoint = stack.endpoint(scenario.target, scenario.protocol)
            report.section(f"2-3. {scenario.name}: {scenario.protocol} → {scenario.target} {endpoint}")
            store = workdir / f"journal-{scenario.name}.duckdb"
            since = time.time()
            try:
                runner = run_content_scenario if scenario.content else run_demo_scenario
                runner(store, scenario.service, endpoint, scenario.protocol)
                journal = read_journal(store)
                check_scenario(report, stack, scenario, journal, since)
                via_collector += len(journal.spans) if scenario.target == "collector" else 0
            except Exception as exc:  # report, keep going, still stop the servers
                report.ok(False, f"{type(exc).__name__}: {exc}")
        step_collector_signals(report, stack, via_collector)
        for step in (step_memory_limiter, step_outage):
            try:
                step(report, stack, reader, workdir)
            except Exception as exc:
                report.ok(False, f"{type(exc).__name__}: {exc}")
    finally:
        stack.collector.stop()
        stack.jaeger.stop()
        if report.failed:
            for server in (stack.jaeger, stack.collector):
                print(f"\n{server.name} log (tail):\n{server.log_tail()}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{'FAIL' if report.failed else 'PASS'}: Jaeger + Collector end-to-end check")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
