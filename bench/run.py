"""The benchmark: tracer overhead side by side with the peers, memory, store throughput. One command.

    python bench/run.py            # full run (~10 min on 2 busy cores)
    python bench/run.py --quick    # smoke-sized (~2 min)

Needs the bench venv (``pip install -e '.[dev]' -r bench/requirements.txt``); variants whose
packages are missing are listed as skipped. Every ratio is computed within one process and one
round (time of the variant / time untraced), then summarised over rounds as median [min-max];
absolute times drift with the machine, ratios much less. Variants that patch LangChain globally
(the peers) each run in a subprocess of their own that re-measures the untraced baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tracers
import workload

MODES = ("sync", "async")
CPU = "_cpu"
"""Suffix of the CPU-time series (``sync_cpu``): process CPU time, all threads, per invoke."""
GC = "_gc"
"""Suffix of the garbage-collection series (``sync_gc``): seconds in the cyclic GC, per invoke."""
_T0 = time.perf_counter()


@dataclass(frozen=True)
class Plan:
    """How much work each part of the benchmark does."""

    rounds: int
    sync_invokes: int
    async_batches: int
    warmup: int = 3
    memory_runs: int = 100_000
    abandoned_runs: int = 10_000
    gc_freeze: bool = False


QUICK = Plan(rounds=3, sync_invokes=20, async_batches=1, memory_runs=10_000, abandoned_runs=2_000)
FULL = Plan(rounds=5, sync_invokes=100, async_batches=4)  # 200 async invokes: full GCs average out


def log(message: str) -> None:
    """Progress on stderr (the tables go to stdout)."""
    print(f"[{time.perf_counter() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def measure(names: list[str], plan: Plan) -> dict[str, Any]:
    """Time every variant in ``names`` (the first must be ``untraced``), rounds interleaved.

    Returns per variant: spans per invoke and, per mode, seconds per invoke of every round and the
    per-round ratio to the untraced time of that same round.
    """
    assert names[0] == "untraced"
    agent = workload.build()
    workload.check(agent)
    per_invoke = {"sync": plan.sync_invokes, "async": plan.async_batches * workload.CONCURRENCY}
    out: dict[str, Any] = {
        n: {"spans_per_invoke": {}, "info": {}, **{m + sfx: [] for m in MODES for sfx in ("", CPU, GC)}}
        for n in names
    }
    with ExitStack() as stack:
        sessions = {n: stack.enter_context(tracers.open_session(n)) for n in names}
        for name, session in sessions.items():  # warm up; count spans per invoke in each mode
            session.activate()
            try:
                before = session.counter.count
                workload.run_sync(agent, plan.warmup, session.callbacks)
                session.flush()
                out[name]["spans_per_invoke"]["sync"] = (session.counter.count - before) / plan.warmup
                before = session.counter.count
                workload.run_async(agent, 1, session.callbacks)
                session.flush()
                spans = (session.counter.count - before) / workload.CONCURRENCY
                out[name]["spans_per_invoke"]["async"] = spans
            finally:
                session.deactivate()
        if plan.gc_freeze:  # what an application can do once at startup (see the README)
            gc.collect()
            gc.freeze()
        for r in range(plan.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for mode in MODES:
                for name in order:
                    wall, cpu, collecting = _timed(agent, sessions[name], mode, plan)
                    out[name][mode].append(wall / per_invoke[mode])
                    out[name][mode + CPU].append(cpu / per_invoke[mode])
                    out[name][mode + GC].append(collecting / per_invoke[mode])
            log(
                f"round {r + 1}/{plan.rounds}: "
                + ", ".join(
                    f"{n} {out[n]['sync'][-1] * 1e3:.2f}/{out[n]['async'][-1] * 1e3:.2f} ms" for n in names
                )
            )
        for name, session in sessions.items():
            for key, value in session.info.items():
                if callable(value):
                    out[name]["info"][key] = value()
    return out


class _GcClock:
    """Seconds spent in the cyclic garbage collector while installed (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started


def _timed(agent: Any, session: tracers.Session, mode: str, plan: Plan) -> tuple[float, float, float]:
    """Wall, CPU and GC seconds of one measurement, including draining the variant's span pipeline.

    CPU time is the whole process's (every thread: the agent's and the exporter's), so it counts
    the tracer's full cost and is less disturbed by other programs sharing the machine. GC time is
    part of both: spans held by a ``BatchSpanProcessor`` until export live long enough to be
    promoted, and the full collections they trigger scan the whole LangChain heap.
    """
    session.activate()
    clock = _GcClock()
    try:
        gc.collect()
        gc.callbacks.append(clock)
        cpu = time.process_time()
        start = time.perf_counter()
        if mode == "sync":
            workload.run_sync(agent, plan.sync_invokes, session.callbacks)
        else:
            workload.run_async(agent, plan.async_batches, session.callbacks)
        session.flush()
        return time.perf_counter() - start, time.process_time() - cpu, clock.seconds
    finally:
        gc.callbacks.remove(clock)
        session.deactivate()


def _worker_cmd(name: str, plan: Plan) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--rounds",
        str(plan.rounds),
        "--sync-invokes",
        str(plan.sync_invokes),
        "--async-batches",
        str(plan.async_batches),
        *(["--gc-freeze"] if plan.gc_freeze else []),
    ]


def measure_in_subprocess(name: str, plan: Plan) -> dict[str, Any]:
    """Run ``untraced`` + ``name`` in a fresh interpreter; return its results."""
    done = subprocess.run(_worker_cmd(name, plan), stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker for {name} exited with {done.returncode}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def overhead(plan: Plan, names: list[str]) -> dict[str, Any]:
    """Measure ``names``: local variants in this process, global patchers one subprocess each.

    Returns per variant its results plus ``baseline`` (the untraced results of its own process).
    """
    local = ["untraced"] + [n for n in names if n != "untraced" and n not in tracers.GLOBAL_PATCHERS]
    log(f"measuring in this process: {', '.join(local)}")
    main = measure(local, plan)
    results = {n: {**main[n], "baseline": main["untraced"], "process": "main"} for n in local}
    for name in names:
        if name in tracers.GLOBAL_PATCHERS:
            log(f"measuring {name} in its own process (with its own untraced baseline)")
            own = measure_in_subprocess(name, plan)
            results[name] = {**own[name], "baseline": own["untraced"], "process": "own"}
    return results


def ratios(result: dict[str, Any], mode: str) -> list[float]:
    """Per-round ratio of the variant's time to the untraced time of the same process and round."""
    return [t / b for t, b in zip(result[mode], result["baseline"][mode], strict=True)]


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x [{min(values):.2f}-{max(values):.2f}]"


def overhead_table(results: dict[str, Any], plan: Plan) -> str:
    """The Markdown table of per-invoke times and ratios."""
    lines = [
        f"Per-invoke time, demo agent (3 model calls + 2 tool calls), {plan.rounds} rounds of "
        f"{plan.sync_invokes} sequential invokes and {plan.async_batches}x{workload.CONCURRENCY} "
        "concurrent ainvokes. Ratio = time / untraced time in the same process and round, median "
        "[min-max] over rounds; wall = elapsed time, CPU = the process's CPU time (all threads, so "
        "the export thread is counted; steadier when other programs share the machine); GC ms = time "
        "per invoke in Python's cyclic garbage collector (part of both).",
        "",
        "| tracer | spans/invoke | sync ms | sync x wall | sync x CPU | async ms | async x wall "
        "| async x CPU | GC ms sync/async |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, res in results.items():
        spans = res["spans_per_invoke"]
        span_text = f"{spans['sync']:g}" + (
            "" if spans["sync"] == spans["async"] else f" / {spans['async']:g}"
        )
        cells = [tracers.LABELS[name] + (" †" if res["process"] == "own" else ""), span_text]
        for mode in MODES:
            cells.append(f"{statistics.median(res[mode]) * 1e3:.2f}")
            cells.append(_summary(ratios(res, mode)))
            cells.append(_summary(ratios(res, mode + CPU)))
        cells.append("/".join(f"{statistics.median(res.get(m + GC) or [0.0]) * 1e3:.2f}" for m in MODES))
        lines.append("| " + " | ".join(cells) + " |")
    own = [n for n, r in results.items() if r["process"] == "own"]
    if own:
        lines.append("")
        lines.append(
            "† measured in its own process (it patches LangChain globally) against that process's own "
            "untraced baseline: "
            + "; ".join(
                f"{n} {statistics.median(results[n]['baseline']['sync']) * 1e3:.2f}/"
                f"{statistics.median(results[n]['baseline']['async']) * 1e3:.2f} ms"
                for n in own
            )
            + " (sync/async)."
        )
    for name, res in results.items():
        for key, value in res.get("info", {}).items():
            lines.append(f"{tracers.LABELS[name]}: {key} = {value}")
    return "\n".join(lines)


def target_lines(results: dict[str, Any]) -> list[tuple[str, bool]]:
    """The issue's overhead targets, evaluated on the medians."""
    checks: list[tuple[str, bool]] = []
    if "ours_duckdb" not in results:
        return checks
    peers = [n for n in results if n in tracers.GLOBAL_PATCHERS]
    for mode in MODES:
        ours = statistics.median(ratios(results["ours_duckdb"], mode))
        checks.append((f"ours (DuckDB journal) {mode} {ours:.2f}x untraced <= 1.30x", ours <= 1.30))
        if peers:
            best = min(peers, key=lambda n: statistics.median(ratios(results[n], mode)))
            peer = statistics.median(ratios(results[best], mode))
            factor = (peer - 1) / (ours - 1) if ours > 1 else float("inf")
            checks.append(
                (
                    f"{mode} overhead {ours - 1:+.2f} vs better peer {tracers.LABELS[best]} "
                    f"{peer - 1:+.2f}: {factor:.1f}x less (target >= 2.5x)",
                    factor >= 2.5,
                )
            )
    return checks


def like_for_like(results: dict[str, Any]) -> list[str]:
    """Ours exporting to memory (the peers' pipeline) against the better peer: overhead factors."""
    peers = [n for n in results if n in tracers.GLOBAL_PATCHERS]
    if "ours_memory" not in results or not peers:
        return []
    lines = []
    for mode in MODES:
        for kind in ("", CPU):
            series = mode + kind
            ours = statistics.median(ratios(results["ours_memory"], series))
            best = min(peers, key=lambda n: statistics.median(ratios(results[n], series)))
            peer = statistics.median(ratios(results[best], series))
            factor = (peer - 1) / (ours - 1) if ours > 1 else float("inf")
            lines.append(
                f"like for like ({'CPU' if kind else 'wall'}, {mode}): ours to memory {ours:.2f}x vs "
                f"{tracers.LABELS[best]} {peer:.2f}x: {factor:.1f}x less overhead"
            )
    return lines


def _selected(only: str | None) -> tuple[list[str], list[str]]:
    wanted = list(tracers.VARIANTS) if not only else ["untraced", *only.split(",")]
    names, skipped = [], []
    for name in dict.fromkeys(wanted):
        reason = tracers.missing(name)
        if reason:
            skipped.append(f"{name} ({reason})")
        else:
            names.append(name)
    return names, skipped


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run every part, print the tables; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke-sized run (~2 min)")
    parser.add_argument("--only", help="comma-separated variants to time (untraced is always added)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--sync-invokes", type=int)
    parser.add_argument("--async-batches", type=int)
    parser.add_argument("--memory-runs", type=int)
    parser.add_argument("--abandoned-runs", type=int)
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() after warm-up (an application's choice)"
    )
    parser.add_argument("--no-overhead", action="store_true", help="skip the overhead table")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory rows")
    parser.add_argument("--no-stores", action="store_true", help="skip store throughput/latency rows")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    base = QUICK if args.quick else FULL
    plan = Plan(
        rounds=args.rounds or base.rounds,
        sync_invokes=args.sync_invokes or base.sync_invokes,
        async_batches=args.async_batches or base.async_batches,
        memory_runs=args.memory_runs or base.memory_runs,
        abandoned_runs=args.abandoned_runs or base.abandoned_runs,
        gc_freeze=args.gc_freeze,
    )
    if args.worker:
        print(json.dumps(measure(["untraced", args.worker], plan)))
        return 0

    raw: dict[str, Any] = {"plan": plan.__dict__}
    checks: list[tuple[str, bool]] = []
    info: list[str] = []
    sections: list[str] = []
    if not args.no_overhead:
        names, skipped = _selected(args.only)
        results = overhead(plan, names)
        raw["overhead"] = results
        sections.append(overhead_table(results, plan))
        if skipped:
            sections.append("Skipped (not installed): " + ", ".join(skipped))
        checks += target_lines(results)
        info += like_for_like(results)
    if not args.no_memory and tracers.missing("ours_duckdb"):
        sections.append(f"Memory: skipped ({tracers.missing('ours_duckdb')}).")
    elif not args.no_memory:
        import memory

        log("memory: RSS over many runs through one handler + exporter")
        report = memory.run(plan.memory_runs, plan.abandoned_runs, log=log)
        raw["memory"] = report.raw
        sections.append(report.table)
        checks += report.checks
    if not args.no_stores:
        sections.append(_stores_section(raw, args.quick))
    if checks or info:
        sections.append(
            "Targets:\n"
            + "\n".join(f"- [{'x' if ok else ' '}] {text}" for text, ok in checks)
            + "".join(f"\n- {line}" for line in info)
        )
    print("\n\n".join(s for s in sections if s))
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2, default=str))
    log("done")
    return 0 if all(ok for _, ok in checks) else 1


def _stores_section(raw: dict[str, Any], quick: bool) -> str:
    """Exporter throughput and query latency rows, printed by the stores' own ``bench_stores``."""
    try:
        import bench_stores
    except ImportError as exc:
        return f"Store throughput / query latency: skipped (bench/bench_stores.py: {exc})."
    log("stores: write throughput and query latency (bench_stores)")
    out = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="bench-stores-") as tmp, contextlib.redirect_stdout(out):
        code = bench_stores.main([*(["--quick"] if quick else []), "--dir", tmp])
    raw["stores"] = out.getvalue()
    if code:
        raise RuntimeError(f"bench_stores exited with {code}")
    body = out.getvalue().strip()
    return f"Store throughput and query latency (bench/bench_stores.py):\n\n```\n{body}\n```"


if __name__ == "__main__":
    sys.exit(main())
