"""Memory: resident set size over many runs through one handler + journal exporter, and abandoned runs.

A cheap run shape: a root chain with one chat-model child. Its callbacks are recorded once from a
real LangChain runnable (so the handler sees exactly the arguments LangChain passes), then replayed
with fresh run ids, which keeps 100k runs affordable. Abandoned runs replay only the ``*_start``
callbacks; the handler's time-to-live must end them, so its open-run count stays bounded.

Run by ``run.py`` in a fresh interpreter (``python bench/memory.py --runs N --abandoned M`` prints
JSON), so the RSS baseline is not polluted by other measurements.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_runjournal.demo.model import ScriptedChatModel

sys.path.insert(0, str(Path(__file__).resolve().parent))

Call = tuple[str, tuple[Any, ...], dict[str, Any]]
_MB = 1024 * 1024
FLUSH_EVERY = 500
"""Runs between forced flushes: 1000 spans, below the BatchSpanProcessor's queue bound of 2048."""
IDLE_S = 0.5
RSS_TARGET_MB = 20.0


def rss_bytes() -> int:
    """Current resident set size of this process."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _malloc_trim() -> None:
    """Hand memory that is free but still cached by glibc's allocator back to the OS (no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def settled_rss(store: Any) -> int:
    """RSS once the store has released its idle DuckDB connection and freed memory is trimmed.

    Separates what is still held (handler maps, exporter LRUs, leaks) from DuckDB's buffer cache,
    which lives only while the store's connection is open (it closes it when idle).
    """
    deadline = time.monotonic() + 5.0
    time.sleep(IDLE_S)
    while getattr(store, "_con", None) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    mutex = getattr(store, "_mutex", None)
    if mutex is not None:  # the idle timer lets go of ``_con`` first, then closes (and checkpoints)
        with mutex:  # under this lock: wait for the close to finish, or RSS includes its buffers
            pass
    gc.collect()
    _malloc_trim()
    return rss_bytes()


class _Recorder(BaseCallbackHandler):
    """Records the callbacks LangChain makes for one run."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def _record(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((method, args, kwargs))

    def on_chain_start(self, *args: Any, **kwargs: Any) -> None:
        self._record("on_chain_start", *args, **kwargs)

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self._record("on_chat_model_start", *args, **kwargs)

    def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        self._record("on_llm_end", *args, **kwargs)

    def on_chain_end(self, *args: Any, **kwargs: Any) -> None:
        self._record("on_chain_end", *args, **kwargs)


def record_run() -> list[Call]:
    """The callback sequence of one real root-chain → chat-model run."""
    model = ScriptedChatModel(answer="Hello! You said: {question}")

    def answer(question: str, config: RunnableConfig) -> str:
        return str(model.invoke([HumanMessage(question)], config).content)

    recorder = _Recorder()
    RunnableLambda(answer, name="memory_probe").invoke("hi there", {"callbacks": [recorder]})
    methods = [c[0] for c in recorder.calls]
    expected = ["on_chain_start", "on_chat_model_start", "on_llm_end", "on_chain_end"]
    if methods != expected:
        raise RuntimeError(f"unexpected callback sequence {methods}")
    return recorder.calls


def replay(handler: Any, calls: list[Call], *, end: bool = True) -> None:
    """Replay ``calls`` on ``handler`` with fresh run ids (only the starts when ``end`` is False)."""
    ids: dict[Any, uuid.UUID] = {}
    for method, args, kwargs in calls:
        if not end and not method.endswith("_start"):
            continue
        fresh = dict(kwargs)
        for key in ("run_id", "parent_run_id"):
            old = kwargs.get(key)
            if old is not None:
                fresh[key] = ids.setdefault(old, uuid.uuid4())
        getattr(handler, method)(*args, **fresh)


def open_runs(handler: Any) -> int:
    """The handler's count of runs it still tracks (its public counter, if any, else its run map)."""
    for name in ("open_run_count", "open_runs"):
        value = getattr(handler, name, None)
        if value is not None:
            return int(value() if callable(value) else value)
    for name in ("_runs", "_registry", "_spans"):
        value = getattr(handler, name, None)
        if value is not None:
            return len(value)
    return -1


@dataclass
class MemoryReport:
    """What :func:`run` measured, as a table, target checks and raw numbers."""

    table: str
    checks: list[tuple[str, bool]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


def measure(
    runs: int,
    abandoned: int,
    workdir: Path,
    log: Callable[[str], None],
    ttl: float = 1.0,
    store_kind: str = "duckdb",
) -> dict[str, Any]:
    """Drive ``runs`` complete and ``abandoned`` never-ending runs; sample RSS and open runs."""
    from tracers import store_factory

    from otel_runjournal.journal.exporter import RunJournalExporter
    from otel_runjournal.tracing.handler import RunJournalCallbackHandler

    factory = store_factory(f"ours_{store_kind}")
    assert factory is not None, f"the {store_kind} store is not importable"
    calls = record_run()
    provider = TracerProvider()
    location = workdir / ("memory.duckdb" if store_kind == "duckdb" else "memory-jsonl")
    store = factory(location)
    provider.add_span_processor(BatchSpanProcessor(RunJournalExporter(store)))
    handler = RunJournalCallbackHandler(tracer_provider=provider)
    out: dict[str, Any] = {"store": store_kind, "runs": runs, "abandoned": abandoned, "samples": []}

    def sample(done: int) -> None:
        provider.force_flush(timeout_millis=120_000)
        gc.collect()
        busy = rss_bytes() / _MB
        row = {
            "runs": done,
            "rss_mb": busy,
            "rss_idle_mb": 0.0,
            "py_objects": len(gc.get_objects()),
            "py_blocks": sys.getallocatedblocks(),
            "open_runs": open_runs(handler),
        }
        t0 = time.perf_counter()
        row["rss_idle_mb"] = settled_rss(store) / _MB
        row["settle_s"] = time.perf_counter() - t0
        out["samples"].append(row)
        log(f"memory: {done} runs, RSS {busy:.1f} MB ({row['rss_idle_mb']:.1f} settled), {row}")

    def drive(n: int) -> None:
        for i in range(1, n + 1):
            replay(handler, calls)
            if i % FLUSH_EVERY == 0:  # keep the queue below its bound: no span is dropped
                provider.force_flush(timeout_millis=120_000)

    drive(min(2_000, runs // 10))  # warm up
    sample(0)
    step = max(1, runs // 5)
    start = time.perf_counter()
    for done in range(step, runs + 1, step):
        drive(step)
        sample(done)
    out["runs_per_s"] = runs / (time.perf_counter() - start - sum(s["settle_s"] for s in out["samples"]))
    first, last = out["samples"][0], out["samples"][-1]
    out["rss_growth_mb"] = last["rss_mb"] - first["rss_mb"]
    out["rss_idle_growth_mb"] = last["rss_idle_mb"] - first["rss_idle_mb"]
    out["py_blocks_growth"] = last["py_blocks"] - first["py_blocks"]
    if abandoned:
        _abandon(out, provider, store, calls, abandoned, ttl, log)
    provider.shutdown()
    store.close()
    out["stored_runs"] = _stored_runs(location) if store_kind == "duckdb" else {}
    return out


def _abandon(
    out: dict[str, Any],
    provider: TracerProvider,
    store: Any,
    calls: list[Call],
    abandoned: int,
    ttl: float,
    log: Callable[[str], None],
) -> None:
    """Start ``abandoned`` runs that never end, a tenth per TTL; record the handler's open runs."""
    from otel_runjournal.tracing.handler import RunJournalCallbackHandler

    ttl_handler = RunJournalCallbackHandler(tracer_provider=provider, run_ttl=ttl)
    chunks = 10
    before = settled_rss(store)
    counts = []
    for _ in range(chunks):
        for _ in range(abandoned // chunks):
            replay(ttl_handler, calls, end=False)
        counts.append(open_runs(ttl_handler))
        time.sleep(ttl * 1.1)
    replay(ttl_handler, calls)  # a later run lets the handler sweep what expired
    provider.force_flush(timeout_millis=120_000)
    gc.collect()
    out["abandoned_ttl_s"] = ttl
    out["abandoned_open_runs"] = counts
    out["abandoned_open_after"] = open_runs(ttl_handler)
    out["abandoned_rss_growth_mb"] = (settled_rss(store) - before) / _MB
    log(f"memory: abandoned runs, open-run count per chunk {counts}, after {out['abandoned_open_after']}")
    shutdown = getattr(ttl_handler, "shutdown", None)
    if shutdown:
        shutdown()


def _stored_runs(path: Path) -> dict[str, int]:
    """Runs per status in the journal (proves the exporter kept up and abandoned runs were marked)."""
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return {
            str(s): int(n) for s, n in con.execute("SELECT status, count(*) FROM runs GROUP BY 1").fetchall()
        }


def report(raw: dict[str, Any]) -> MemoryReport:
    """Format the measurements as a Markdown table and evaluate the targets."""
    chunk = raw["abandoned"] // 10
    lines = [
        "Memory: one handler + journal exporter (DuckDB, BatchSpanProcessor); each run is a root chain "
        f"with one chat-model child ({raw['runs_per_s']:.0f} runs/s through handler and exporter)",
        "",
        "| runs | RSS MB (just flushed) | RSS MB (settled) | Python objects | Python blocks | open runs |",
        "|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {s['runs']} | {s['rss_mb']:.1f} | {s['rss_idle_mb']:.1f} | {s['py_objects']} | "
            f"{s['py_blocks']} | {s['open_runs']} |"
            for s in raw["samples"]
        ),
        "",
        f"RSS growth over {raw['runs']} runs: {raw['rss_idle_growth_mb']:+.1f} MB settled (the store's "
        "idle DuckDB connection released, free memory trimmed); "
        f"{raw['rss_growth_mb']:+.1f} MB just flushed (includes DuckDB's buffer cache while the "
        "connection is open).",
        f"{raw['abandoned']} abandoned runs (started, never ended), {chunk} per run_ttl "
        f"({raw['abandoned_ttl_s']} s): handler's open runs (root + child) after each batch "
        f"{raw['abandoned_open_runs']}, after the TTL {raw['abandoned_open_after']}; "
        f"settled RSS change {raw['abandoned_rss_growth_mb']:+.1f} MB.",
        f"Runs in the journal by status: {raw['stored_runs']}.",
        f"Python memory blocks (sys.getallocatedblocks) grew by {raw['py_blocks_growth']:+d} over the "
        f"{raw['runs']} runs (the exporter's bounded LRU of recent runs fills, then stays flat).",
    ]
    jsonl = raw.get("jsonl")
    if jsonl:
        lines.append(
            f"Same {jsonl['runs']} runs into the JSONL store ({jsonl['runs_per_s']:.0f} runs/s): settled RSS "
            f"growth {jsonl['rss_idle_growth_mb']:+.1f} MB ({jsonl['rss_growth_mb']:+.1f} MB just flushed), "
            f"Python blocks {jsonl['py_blocks_growth']:+d}, open runs at the end "
            f"{jsonl['samples'][-1]['open_runs']}."
        )
    peak = max(raw["abandoned_open_runs"])
    checks = [
        (
            f"RSS growth over {raw['runs']} runs (settled) {raw['rss_idle_growth_mb']:+.1f} MB "
            f"< {RSS_TARGET_MB:.0f} MB",
            raw["rss_idle_growth_mb"] < RSS_TARGET_MB,
        ),
        (
            f"abandoned runs bounded by the TTL: peak {peak} open (one TTL window holds {2 * chunk}) of "
            f"{2 * raw['abandoned']} started, {raw['abandoned_open_after']} after the TTL",
            peak <= 2 * chunk and raw["abandoned_open_after"] == 0,
        ),
    ]
    return MemoryReport("\n".join(lines), checks, raw)


def _subprocess(runs: int, abandoned: int, ttl: float, store_kind: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--runs", str(runs), "--abandoned", str(abandoned)]
    done = subprocess.run(
        [*cmd, "--ttl", str(ttl), "--store", store_kind], stdout=subprocess.PIPE, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement ({store_kind}) exited with {done.returncode}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(runs: int, abandoned: int, log: Callable[[str], None], ttl: float = 1.0) -> MemoryReport:
    """Measure in fresh interpreters (clean RSS baselines): DuckDB with abandoned runs, then JSONL."""
    log(f"memory: {runs} runs, then {abandoned} abandoned runs (run_ttl={ttl} s), DuckDB store")
    raw = _subprocess(runs, abandoned, ttl, "duckdb")
    log(f"memory: {runs} runs, JSONL store")
    raw["jsonl"] = _subprocess(runs, 0, ttl, "jsonl")
    return report(raw)


def _main() -> None:
    parser = argparse.ArgumentParser(description="RSS over many runs through one handler + exporter")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--abandoned", type=int, default=10_000)
    parser.add_argument("--ttl", type=float, default=1.0, help="run_ttl of the abandoned-runs handler")
    parser.add_argument("--store", choices=("duckdb", "jsonl"), default="duckdb")
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        print(json.dumps(measure(args.runs, args.abandoned, Path(tmp), log, args.ttl, args.store)))


if __name__ == "__main__":
    _main()
