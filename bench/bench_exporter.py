"""Exporter micro-benchmark: CPU the journal exporter spends per span, with and without a store.

    python bench/bench_exporter.py                       # ~1 min: both workloads, 3 stages
    python bench/bench_exporter.py --baseline 21c3a83    # also the exporter's modules at a git revision
    python bench/bench_exporter.py --quick               # seconds (smoke test)
    python bench/bench_exporter.py --pipeline            # ~1 min: the exporter's share of the overhead

Workloads (spans are made once, then replayed; each stage runs ``--repeat`` times, best and median
printed):

- ``agent``: real spans of the real handler on the benchmark agent (``bench/workload.py``: LangGraph
  ReAct loop, 3 model calls + 2 tool calls: 11 spans per invoke at the handler's default verbosity),
  content in the side channel (the default), so rendering the content the journal records is part of
  the measured cost.
- ``synthetic``: handler-shaped spans from ``tests/spanfactory.py`` (4 spans per run).

Stages, spans fed in batches of 512 (``BatchSpanProcessor``'s default export size):

- ``map+assemble``: :class:`~otel_runjournal.journal.assembler.Assembler` only (span → rows, held per run,
  one ``RunWrite`` per finished run) — what the exporter costs before ``store.write``;
- ``duckdb`` / ``jsonl``: ``RunJournalExporter.export`` into a fresh real store in a temporary
  directory (mapping + the store's write path), then ``shutdown``.

``--baseline REV`` copies ``otel_runjournal/`` into a temporary directory as package
``otel_runjournal_baseline``, with the exporter's own modules (:data:`EXPORTER_FILES`) as of git
revision ``REV``, and measures it in the same process on the same spans, taking turns with the
current code in every repeat: "before" and "after" differ only in the exporter's modules.

``--pipeline`` instead runs the agent itself with the handler behind a ``BatchSpanProcessor`` and
prints time per invoke relative to the untraced agent for a no-op exporter, the journal exporter with
a store that keeps nothing, and each real store (see :func:`pipeline`).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BATCH = 512


# --- workloads ---------------------------------------------------------------------------------------
def agent_spans(invokes: int) -> list[Any]:
    """Finished spans of ``invokes`` runs of the benchmark agent traced by the real handler."""
    from langchain_core.messages import HumanMessage
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_runjournal.demo.agent import build_agent
    from otel_runjournal.tracing.handler import RunJournalCallbackHandler

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    # journal_content=True: no journal exporter exists yet, and content is part of what is measured
    handler = RunJournalCallbackHandler(tracer_provider=provider, journal_content=True)
    agent = build_agent(subagent=False, failing_tool=False, middleware=False)
    config = {"callbacks": [handler]}
    question = "What is the weather in Paris, and what is 6*7+1?"
    for _ in range(invokes):
        agent.invoke({"messages": [HumanMessage(question)]}, config)
    return list(memory.get_finished_spans())


def synthetic_spans(runs: int) -> list[Any]:
    """Handler-shaped spans of ``runs`` runs (4 spans each) from the tests' span factory."""
    sys.path.insert(0, str(REPO / "tests"))
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from spanfactory import SpanFactory, handler_run

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    factory = SpanFactory(provider)
    for r in range(runs):
        handler_run(factory, f"run-{r}", thread_id=f"thread-{r % 97}", t=r * 200.0)
    return list(memory.get_finished_spans())


# --- stages ------------------------------------------------------------------------------------------
CURRENT = "otel_runjournal"
BASELINE = "otel_runjournal_baseline"


def _batches(spans: Sequence[Any]) -> list[Sequence[Any]]:
    return [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]


def assemble_only(package: str, spans: Sequence[Any]) -> tuple[float, int]:
    """Seconds (process CPU time) to map and assemble every span; events produced."""
    assembler = importlib.import_module(f"{package}.journal.assembler").Assembler(max_pending_spans=100_000)
    batches = _batches(spans)
    events = 0
    start = time.process_time()
    for batch in batches:
        for write in assembler.add(batch):
            events += len(write.events)
    for write in assembler.drain(final=True):
        events += len(write.events)
    return time.process_time() - start, events


def _store_stage(kind: str) -> Callable[[str, Sequence[Any]], tuple[float, int]]:
    def run(package: str, spans: Sequence[Any]) -> tuple[float, int]:
        """Wall seconds to export every span into a fresh store (then shut down); events written."""
        exporter_cls = importlib.import_module(f"{package}.journal.exporter").RunJournalExporter
        stores = importlib.import_module(f"{package}.stores")
        with tempfile.TemporaryDirectory(prefix="bench-exporter-") as tmp:
            store = stores.DuckDBStore(Path(tmp) / "j.duckdb") if kind == "duckdb" else stores.JsonlStore(tmp)
            exporter = exporter_cls(store)
            batches = _batches(spans)
            start = time.perf_counter()
            for batch in batches:
                exporter.export(batch)
            exporter.shutdown()
            elapsed = time.perf_counter() - start
            stats = exporter.stats
            store.close()
            if stats.dropped_spans or stats.written_spans != len(spans):
                raise RuntimeError(f"{kind}: not every span was written: {stats}")
            return elapsed, int(stats.written_events)

    return run


STAGES: dict[str, Callable[[str, Sequence[Any]], tuple[float, int]]] = {
    "map+assemble": assemble_only,
    "duckdb": _store_stage("duckdb"),
    "jsonl": _store_stage("jsonl"),
}


def _contents(spans: Sequence[Any]) -> list[tuple[tuple[int, int], dict[str, Any]]]:
    """The content the handler handed over for ``spans`` (the journal takes it as it maps them)."""
    from otel_runjournal import content

    pairs = [(content.key_of(span), content.peek(span)) for span in spans]
    return [(key, found) for key, found in pairs if key is not None and found is not None]


def _hand_over(package: str, contents: Sequence[tuple[tuple[int, int], dict[str, Any]]]) -> None:
    """Hand the spans' content to ``package``'s registry again, as the handler did once."""
    registry = importlib.import_module(f"{package}.content").REGISTRY
    for key, found in contents:
        registry.put(key, found)


def measure(args: argparse.Namespace, packages: Sequence[str] = (CURRENT,)) -> list[dict[str, Any]]:
    """Every workload, stage and package: spans/s and events/s (best and median of the repeats).

    The packages take turns within each repeat, so drift in the machine's speed hits them alike."""
    workloads = {
        "agent": lambda: agent_spans(args.invokes),
        "synthetic": lambda: synthetic_spans(args.runs),
    }
    rows: list[dict[str, Any]] = []
    for workload, make in workloads.items():
        spans = make()
        contents = _contents(spans)
        for stage, run in STAGES.items():
            repeat = args.repeat if stage == "map+assemble" else max(1, args.repeat // 2)
            times: dict[str, list[float]] = {package: [] for package in packages}
            events: dict[str, int] = {}
            for _ in range(repeat):
                for package in packages:
                    _hand_over(package, contents)  # every pass takes the content it maps
                    gc.collect()
                    elapsed, events[package] = run(package, spans)
                    times[package].append(elapsed)
            for package in packages:
                best, median = min(times[package]), statistics.median(times[package])
                rows.append(
                    {
                        "package": package,
                        "workload": workload,
                        "stage": stage,
                        "spans": len(spans),
                        "events": events[package],
                        "spans_per_s_best": len(spans) / best,
                        "spans_per_s_median": len(spans) / median,
                        "events_per_s_best": events[package] / best,
                        "us_per_span_best": best / len(spans) * 1e6,
                    }
                )
    return rows


# --- in the pipeline -------------------------------------------------------------------------------
PIPELINE_VARIANTS = ("nop_exporter", "map_only", "duckdb", "jsonl")


class _NullStore:
    """A store that keeps nothing: the exporter's own cost in the pipeline (benchmark use only)."""

    def write(self, batch: Sequence[Any]) -> None:
        pass

    def close(self) -> None:
        pass


def pipeline(invokes: int, rounds: int) -> list[dict[str, Any]]:
    """The agent traced by the handler behind a ``BatchSpanProcessor``, time per invoke (including the
    final flush) relative to the untraced agent in the same round, for: a no-op exporter (handler and
    processor only), the journal exporter with a store that keeps nothing (+ mapping), and with each
    real store. Shows how much of the journal's overhead is the exporter's."""
    from langchain_core.messages import HumanMessage
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from otel_runjournal.demo.agent import build_agent
    from otel_runjournal.journal.exporter import RunJournalExporter
    from otel_runjournal.stores import DuckDBStore, JsonlStore
    from otel_runjournal.tracing.handler import RunJournalCallbackHandler

    class NopExporter(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    agent = build_agent(subagent=False, failing_tool=False, middleware=False)
    question = "What is the weather in Paris, and what is 6*7+1?"

    def timed(callbacks: list[Any], provider: Any = None) -> tuple[float, float]:
        config = {"callbacks": callbacks} if callbacks else {}
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(invokes):
            agent.invoke({"messages": [HumanMessage(question)]}, config)
        if provider is not None:
            provider.force_flush()
        return time.perf_counter() - wall, time.process_time() - cpu

    ratios: dict[str, list[tuple[float, float]]] = {v: [] for v in PIPELINE_VARIANTS}
    for _ in range(rounds):
        base_wall, base_cpu = timed([])
        for variant in PIPELINE_VARIANTS:
            with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
                exporter: Any = NopExporter()
                store: Any = None
                if variant == "map_only":
                    store = _NullStore()
                elif variant == "duckdb":
                    store = DuckDBStore(Path(tmp) / "j.duckdb")
                elif variant == "jsonl":
                    store = JsonlStore(tmp)
                if store is not None:
                    exporter = RunJournalExporter(store)
                provider = TracerProvider()
                provider.add_span_processor(BatchSpanProcessor(exporter))
                callbacks = [RunJournalCallbackHandler(tracer_provider=provider)]
                timed(callbacks, provider)  # warm up (schema, first renders)
                wall, cpu = timed(callbacks, provider)
                provider.shutdown()
                if store is not None:
                    store.close()  # the exporter closes only stores it opened
                ratios[variant].append((wall / base_wall, cpu / base_cpu))
    return [
        {
            "variant": variant,
            "wall_ratio": statistics.median(r[0] for r in ratios[variant]),
            "wall_min": min(r[0] for r in ratios[variant]),
            "wall_max": max(r[0] for r in ratios[variant]),
            "cpu_ratio": statistics.median(r[1] for r in ratios[variant]),
        }
        for variant in PIPELINE_VARIANTS
    ]


# --- baseline ----------------------------------------------------------------------------------------
EXPORTER_FILES = (
    "journal/exporter.py",
    "journal/assembler.py",
    "journal/mapping.py",
    "journal/emitter.py",
    "journal/span_events.py",
    "journal/spanfacts.py",
    "journal/runwrite.py",
    "genai_json.py",
    "journal/spanread.py",
)
"""The exporter's own modules: the baseline takes these from the git revision, the rest (handler,
stores, records) from the working tree, so only the exporter's cost differs between the two."""


def install_baseline(rev: str, directory: Path) -> str:
    """Make the package importable as :data:`BASELINE` from ``directory``, with the exporter's modules
    as of git revision ``rev`` (the package imports itself only relatively, so a renamed copy works)."""
    package = directory / BASELINE
    shutil.copytree(REPO / CURRENT, package, ignore=shutil.ignore_patterns("__pycache__", "__main__.py"))
    for name in EXPORTER_FILES:
        old = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{CURRENT}/{name}"], capture_output=True)
        if old.returncode == 0:
            (package / name).write_bytes(old.stdout)
        else:  # not at that revision yet (so nothing there imports it)
            (package / name).unlink(missing_ok=True)
    sys.path.insert(0, str(directory))
    importlib.invalidate_caches()
    return BASELINE


def _table(rows: list[dict[str, Any]]) -> str:
    baseline = {(r["workload"], r["stage"]): r for r in rows if r["package"] == BASELINE}
    head = f"{'workload':<10} {'stage':<13} {'spans':>6} {'events':>7} {'spans/s':>9} {'median':>9}"
    head += f" {'events/s':>9} {'µs/span':>8}"
    if baseline:
        head += f" {'before':>9} {'speed-up':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        if r["package"] == BASELINE:
            continue
        line = (
            f"{r['workload']:<10} {r['stage']:<13} {r['spans']:>6} {r['events']:>7}"
            f" {r['spans_per_s_best']:>9,.0f} {r['spans_per_s_median']:>9,.0f}"
            f" {r['events_per_s_best']:>9,.0f} {r['us_per_span_best']:>8.1f}"
        )
        b = baseline.get((r["workload"], r["stage"]))
        if b is not None:
            ratio = r["spans_per_s_best"] / b["spans_per_s_best"]
            line += f" {b['spans_per_s_best']:>9,.0f} {ratio:>7.2f}x"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, measure (and the baseline), print the table (or JSON rows)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invokes", type=int, default=400, help="agent invokes (11 spans each)")
    parser.add_argument("--runs", type=int, default=10_000, help="synthetic runs (4 spans each)")
    parser.add_argument("--repeat", type=int, default=5, help="repeats per stage (stores: half)")
    parser.add_argument("--baseline", metavar="REV", help="also measure the exporter as of this git rev")
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 repeats")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    parser.add_argument(
        "--pipeline", action="store_true", help="instead: overhead in the agent's process (ratios)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="--pipeline rounds (200 invokes each)")
    args = parser.parse_args()
    if args.quick:
        args.invokes, args.runs, args.repeat, args.rounds = 20, 200, 2, 1
    if args.pipeline:
        results = pipeline(200 if not args.quick else 5, args.rounds)
        if args.json:
            print(json.dumps(results))
            return
        print("time per invoke / untraced, same round (median, min-max); handler + BatchSpanProcessor +")
        for r in results:
            print(
                f"  {r['variant']:<13} wall {r['wall_ratio']:.2f}x ({r['wall_min']:.2f}-{r['wall_max']:.2f})"
                f"  cpu {r['cpu_ratio']:.2f}x"
            )
        return
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        packages = [CURRENT]
        if args.baseline:
            packages.append(install_baseline(args.baseline, Path(tmp)))
        rows = measure(args, packages)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"batches of {BATCH} spans; map+assemble: process CPU time; stores: wall time incl. shutdown")
    print("best of the repeats; packages measured in turns within each repeat")
    if args.baseline:
        print(f"before = the exporter's modules at {args.baseline}, the rest as in the working tree")
    print()
    print(_table(rows))


if __name__ == "__main__":
    main()
