"""How many spans/s one ``otel-runjournal serve`` journals into DuckDB, and its memory under load.

    .venv/bin/python bench/bench_serve.py [--senders 4] [--spans 200000] [--protocol http|grpc]

Senders are separate processes: each builds its OTLP requests first (runs of the offline demo agent,
every run with fresh trace / span / run ids, ``--batch`` spans per request, as a Collector or the
SDK's ``BatchSpanProcessor`` would send them), waits for the start signal, then sends them over two
keep-alive connections as fast as serve answers. Throughput = spans / (start → the moment serve's
``/health`` reports them all written). serve runs with ``--settle 0`` (each run arrives whole in one
request; the settle delay would only add a constant at the end). RSS of the serve process is sampled
every 50 ms (idle before the load, peak during, after).

serve journals in a child process (the receiving process decodes, the child maps and writes): the
CPU seconds of both are printed, and RSS is the sum of serve's processes.

Baselines in the same run: ``RunJournalExporter.export`` of as many spans of the same kind into a
DuckDB file in this process (no network, no protobuf; as many, so that it pays for DuckDB's
checkpoints as serve does), batches of 2048 like ``configure()``'s journal processor;
and ``--senders`` processes each journaling their share straight into ONE DuckDB file (DuckDB
turn-taking, the way without serve).
The ratio serve / in-process is the number to compare between machines; the machine is shared and
has 2 cores, so senders and serve compete for CPU: absolute numbers are noisy. CPU seconds per span
(serve's two processes against the exporter's process) move less with the load. ``--rounds N``
repeats serve and the in-process baseline, alternating, and prints medians and ranges;
``--compare DIR`` runs the serve of another source tree (e.g. ``git archive`` of an older commit) in
every round too, for a before / after in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


# --- sender process -------------------------------------------------------------------------------
def _template(content: bool) -> Any:
    """One run of the light demo agent (3 model calls, 2 tools) as an OTLP request."""
    import uuid

    from langchain_core.messages import HumanMessage
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_runjournal import RunJournalCallbackHandler
    from otel_runjournal.demo.agent import build_agent

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench-serve"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    handler = RunJournalCallbackHandler(provider, capture_content=content)
    agent = build_agent(subagent=False, failing_tool=False, middleware=False)
    agent.invoke(
        {"messages": [HumanMessage("weather in Paris?")]}, {"callbacks": [handler], "run_id": uuid.uuid4()}
    )
    handler.shutdown()
    provider.shutdown()
    return encode_spans(memory.get_finished_spans())


def build_requests(count: int, batch: int, content: bool, seed: int) -> list[bytes]:
    """``count`` spans (whole runs) in requests of about ``batch`` spans, all ids fresh."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    template = _template(content)
    rs = template.resource_spans[0]
    scope = rs.scope_spans[0]
    run_spans = list(scope.spans)
    rng = random.Random(seed)
    out: list[bytes] = []
    made = 0
    while made < count:
        request = ExportTraceServiceRequest()
        new_rs = request.resource_spans.add()
        new_rs.resource.CopyFrom(rs.resource)
        new_ss = new_rs.scope_spans.add()
        new_ss.scope.CopyFrom(scope.scope)
        while len(new_ss.spans) < batch and made < count:
            trace_id = rng.randbytes(16)
            run_id = str(__import__("uuid").UUID(bytes=rng.randbytes(16)))
            ids = {s.span_id: rng.randbytes(8) for s in run_spans}
            for span in run_spans:
                new = new_ss.spans.add()
                new.CopyFrom(span)
                new.trace_id = trace_id
                new.span_id = ids[span.span_id]
                if span.parent_span_id:
                    new.parent_span_id = ids[span.parent_span_id]
                for kv in new.attributes:
                    if kv.key == "runjournal.run_id" or kv.key in (
                        "runjournal.thread_id",
                        "gen_ai.conversation.id",
                    ):
                        kv.value.string_value = run_id
            made += len(run_spans)
        out.append(request.SerializeToString())
    return out


def _send_http(port: int, bodies: list[bytes]) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for body in bodies:
        while True:
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                break
            time.sleep(float(resp.getheader("Retry-After") or 1))
    conn.close()


def _send_grpc(port: int, bodies: list[bytes]) -> None:
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=None,
        )
        for body in bodies:
            while True:
                try:
                    export(body, timeout=120)
                    break
                except grpc.RpcError:
                    time.sleep(1)


def _spans_of(bodies: list[bytes]) -> list[Any]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from otel_runjournal.serve.otlp_spans import convert

    spans = []
    for body in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans.extend(convert(request).spans)
    return spans


def direct_writer(args: argparse.Namespace) -> None:
    """Turn-taking: this process journals its spans straight into the shared DuckDB file."""
    from otel_runjournal import RunJournalExporter
    from otel_runjournal.stores.base import StoreLockedError

    spans = _spans_of(build_requests(args.count, 2048, args.content, args.seed))
    print("ready", flush=True)
    sys.stdin.readline()
    open_failures = 0
    while True:  # opening the file waits for the other processes too (and may time out)
        try:
            exporter = RunJournalExporter(args.direct)
            break
        except StoreLockedError:
            open_failures += 1
    for i in range(0, len(spans), 2048):
        exporter.export(spans[i : i + 2048])
    exporter.shutdown()
    stats = exporter.stats
    print(
        json.dumps(
            {
                "open_timeouts": open_failures,
                "failed_writes": stats.failed_writes,
                "dropped_spans": stats.dropped_spans,
            }
        ),
        flush=True,
    )


def sender(args: argparse.Namespace) -> None:
    bodies = build_requests(args.count, args.batch, args.content, args.seed)
    print("ready", flush=True)
    sys.stdin.readline()  # the start signal
    cpu = time.process_time()
    send = _send_grpc if args.protocol == "grpc" else _send_http
    halves = [bodies[0::2], bodies[1::2]]
    threads = [threading.Thread(target=send, args=(args.port, half)) for half in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"cpu {time.process_time() - cpu:.6f}", flush=True)  # sending only, not building the requests


# --- the measurement ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree(pid: int) -> list[int]:
    """``pid`` and its children (serve's journal process)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *(int(c) for c in children.read_text().split())] if children.exists() else [pid]


def _rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children."""
    total = 0.0
    for p in _tree(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def _cpu_s(pid: int) -> list[float]:
    """User + system CPU seconds so far of ``pid`` and of each of its children."""
    out = []
    for p in _tree(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        out.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return out


def _health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
        return dict(json.loads(resp.read()))


def _start_all(procs: list[subprocess.Popen[str]]) -> float:
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    return start


def turn_taking(processes: int, total: int, content: bool, directory: Path) -> tuple[float, dict[str, int]]:
    """spans/s of ``processes`` app processes each journaling straight into one DuckDB file."""
    path = str(directory / "shared.duckdb")
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--direct", path, "--count", str(total // processes)]
            + ["--seed", str(100 + i)]
            + (["--content"] if content else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for i in range(processes)
    ]
    start = _start_all(procs)
    problems: dict[str, int] = {}
    for proc in procs:
        assert proc.stdout is not None
        for key, value in json.loads(proc.stdout.readline() or "{}").items():
            problems[key] = problems.get(key, 0) + value
        proc.wait()
    elapsed = time.perf_counter() - start
    from otel_runjournal import open_store

    store = open_store(path)
    count = store.sql("select count(*) from spans")[0][0]  # type: ignore[attr-defined]
    store.close()
    return int(count) / elapsed, problems


def baseline(total: int, content: bool, directory: Path, seed: int = 99) -> tuple[float, float]:
    """(spans/s, CPU s per span) of RunJournalExporter.export into DuckDB in this process, same
    kind of spans (CPU: every thread of this process, DuckDB's too)."""
    from otel_runjournal import RunJournalExporter

    spans = _spans_of(build_requests(total, 2048, content, seed=seed))
    path = directory / f"baseline-{seed}.duckdb"
    exporter = RunJournalExporter(str(path))
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(spans), 2048):
        exporter.export(spans[i : i + 2048])
    exporter.force_flush()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    exporter.shutdown()
    return len(spans) / elapsed, cpu / len(spans)


def serve_once(args: argparse.Namespace, directory: Path, tree: Path, tag: str) -> dict[str, Any]:
    """One serve (the code in ``tree``) journaling ``--spans`` spans from ``--senders`` processes."""
    grpc_port, http_port = _free_port(), _free_port()
    env = {**os.environ, "PYTHONPATH": str(tree)}  # and cwd=tree: `python -m` imports from there
    serve = subprocess.Popen(
        [
            *(sys.executable, "-m", "otel_runjournal", "serve", "--store", str(directory / f"{tag}.duckdb")),
            *("--grpc", f"127.0.0.1:{grpc_port}", "--http", f"127.0.0.1:{http_port}"),
            *("--settle", "0", "--log-level", "warning"),
        ],
        cwd=tree,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _health(http_port)
                break
            except OSError:
                if time.monotonic() > deadline or serve.poll() is not None:
                    raise SystemExit("serve did not start") from None
                time.sleep(0.1)
        per_sender = args.spans // args.senders
        port = grpc_port if args.protocol == "grpc" else http_port
        senders = [
            subprocess.Popen(
                [sys.executable, __file__, "--sender", "--count", str(per_sender), "--port", str(port)]
                + ["--batch", str(args.batch), "--protocol", args.protocol, "--seed", str(i + 1)]
                + (["--content"] if args.content else []),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            for i in range(args.senders)
        ]
        idle_rss = _rss_mb(serve.pid)
        expected = _health(http_port)["written_spans"]
        cpu_before = _cpu_s(serve.pid)
        start = _start_all(senders)
        peak = idle_rss
        total = 0
        while True:
            peak = max(peak, _rss_mb(serve.pid))
            written = _health(http_port)["written_spans"] - expected
            if total == 0 and all(p.poll() is not None for p in senders):
                total = _health(http_port)["received_spans"]
            if total and written >= total:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        serve_cpu = [a - b for a, b in zip(_cpu_s(serve.pid), cpu_before, strict=False)]
        after_rss = _rss_mb(serve.pid)
        senders_cpu = 0.0
        for proc in senders:
            out, _ = proc.communicate()
            senders_cpu += float(out.split()[-1])
    finally:
        serve.terminate()
        serve.wait(60)
    return {
        "total": total,
        "elapsed": elapsed,
        "rate": total / elapsed,
        "cpu": serve_cpu,
        "senders_cpu": senders_cpu,
        "rss": (idle_rss, peak, after_rss),
    }


def _spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    """median [min - max] of ``values``."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    if len(ordered) == 1:
        return fmt.format(median)
    return f"{fmt.format(median)} [{fmt.format(ordered[0])} - {fmt.format(ordered[-1])}]"


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--spans", type=int, default=200_000, help="total spans over all senders")
    parser.add_argument("--batch", type=int, default=512, help="spans per request")
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http")
    parser.add_argument("--content", action="store_true", help="content on the spans (capture_content=True)")
    parser.add_argument("--rounds", type=int, default=1, help="serve and the baseline, alternating")
    parser.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="also run the serve of this source tree (e.g. an older checkout) in every round",
    )
    parser.add_argument("--no-turn-taking", action="store_true", help="skip the turn-taking baseline")
    parser.add_argument("--sender", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--direct", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sender:
        sender(args)
        return
    if args.direct:
        direct_writer(args)
        return

    trees = {"serve": ROOT}
    if args.compare is not None:
        trees["compared"] = args.compare.resolve()
    how = f"{args.senders} sender processes over {args.protocol}, {args.batch} spans/request"
    print(f"## serve → DuckDB, {how}, content {'on' if args.content else 'off'}")
    if args.compare is not None:
        print(f"compared: the serve of {trees['compared']}")
    rates: dict[str, list[float]] = {name: [] for name in (*trees, "in-process")}
    cpus: dict[str, list[float]] = {name: [] for name in rates}
    ratios: dict[str, list[float]] = {name: [] for name in trees}
    cpu_ratios: dict[str, list[float]] = {name: [] for name in trees}
    sending: dict[str, list[float]] = {name: [] for name in trees}
    journal_ratios: dict[str, list[float]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        directory = Path(tmp)
        for r in range(args.rounds):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))
            got: dict[str, dict[str, Any]] = {}
            for name in order:
                got[name] = serve_once(args, directory, trees[name], f"{name}-{r}")
            base, base_cpu = baseline(args.spans, args.content, directory, seed=99 + r)
            rates["in-process"].append(base)
            cpus["in-process"].append(base_cpu * 1e6)
            for name, result in got.items():
                cpu = sum(result["cpu"]) / result["total"]
                rates[name].append(result["rate"])
                cpus[name].append(cpu * 1e6)
                ratios[name].append(result["rate"] / base)
                cpu_ratios[name].append(cpu / base_cpu)
                parts = " + ".join(f"{c:.2f}" for c in result["cpu"])
                idle, peak, after = result["rss"]
                senders_cpu = result["senders_cpu"] / result["total"]
                sending[name].append(senders_cpu * 1e6)
                journal_ratios[name].append(result["cpu"][-1] / result["total"] / base_cpu)
                print(
                    f"round {r + 1} {name:9s} {result['rate']:>8,.0f} spans/s ({result['total']:,} in "
                    f"{result['elapsed']:.2f} s)  {result['rate'] / base:.2f}x  CPU {parts} s = "
                    f"{cpu * 1e6:.1f} µs/span (+ senders {senders_cpu * 1e6:.1f})  "
                    f"RSS idle/peak/after {idle:.0f}/{peak:.0f}/{after:.0f} MB",
                    flush=True,
                )
            print(
                f"round {r + 1} in-process {base:>8,.0f} spans/s  CPU {base_cpu * 1e6:.1f} µs/span  "
                f"(load {_load()})",
                flush=True,
            )
        print("### medians [min - max]")
        for name in rates:
            print(f"{name} spans/s              {_spread(rates[name])}")
            print(f"{name} CPU µs/span          {_spread(cpus[name], '{:.1f}')}")
        # the line names test_serve_bench.py reads
        last = got["serve"]
        print(f"spans journaled              {last['total']:>10,}")
        print("serve RSS MB idle/peak/after  " + " / ".join(f"{x:.0f}" for x in last["rss"]))
        print(f"serve spans/s                {statistics.median(rates['serve']):>10,.0f}")
        print(f"in-process exporter spans/s  {statistics.median(rates['in-process']):>10,.0f}")
        for name in trees:
            label = "serve / in-process" if name == "serve" else f"{name} / in-process"
            print(f"{label:28s} {_spread(ratios[name], '{:.2f}')}x")
            print(f"{name} CPU / in-process CPU  {_spread(cpu_ratios[name], '{:.2f}')}x", flush=True)
            # serve's journal process does the exporter's work and more (one interpreter lock, DuckDB's
            # threads as the exporter's): serve / in-process stays below about 1 / this ratio
            print(
                f"{name} senders CPU µs/span   {_spread(sending[name], '{:.1f}')}; journal process CPU / "
                f"in-process CPU {_spread(journal_ratios[name], '{:.2f}')}x",
                flush=True,
            )
        if not args.no_turn_taking:
            shared, problems = turn_taking(args.senders, min(args.spans, 100_000), args.content, directory)
            print(
                f"{args.senders} processes, one file     {shared:>10,.0f}   (DuckDB turn-taking: {problems})"
            )
    print(f"load average at the end: {_load()}")
    print("note: 2 shared cores; senders and serve compete for CPU, so the numbers are noisy")


if __name__ == "__main__":
    main()
