"""The journal's own CPU cost in instructions per invoke, counted by valgrind's callgrind.

    python bench/instructions.py                       # every configuration (~10 min of CPU)
    python bench/instructions.py ours_duckdb bare_spans --lo 20 --hi 206
    python bench/instructions.py --keep /tmp/cg        # keep callgrind.out.* for callgrind_annotate

Wall time on a shared machine moves ±0.3x between rounds; an instruction count does not. Each
configuration runs the sync bench agent (``bench/workload.py``) twice under ``valgrind
--tool=callgrind``, ``--lo`` and ``--hi`` invokes after the same warm-up, and reports
``(I_hi - I_lo) / (hi - lo)``: start-up, imports and the warm-up cancel. Instructions of every
thread count (callgrind serialises them), so the ``BatchSpanProcessor``'s export thread is included.

So that the work does not depend on speed (valgrind runs ~50x slower than native):

- every ``BatchSpanProcessor`` exports by size only (``OTEL_BSP_SCHEDULE_DELAY`` = 11 days): the
  journal's processor in 2048-span exports (as ``configure()`` builds it), the others in 512s;
- the DuckDB store keeps its connection (``linger=inf``, no ``MAX_HOLD`` release), so no timer
  decides when the file is reopened; closing (and its checkpoint) happens once, at the end;
- ``PYTHONHASHSEED=0``.

The default ``--hi - --lo`` = 186 invokes = 2,046 spans, one journal export of 2,048: each extra
invoke carries its share of one store transaction, as in a steady state.

Configurations: ``untraced``; ``bare_spans`` (a span per run, no attributes: the SDK floor);
``ours_memory`` (our handler + ``InMemorySpanExporter``); ``ours_duckdb`` / ``ours_jsonl`` (our
handler + ``RunJournalExporter`` into a DuckDB file / JSONL directory; the DuckDB store uses pyarrow
when it is installed); ``ours_duckdb_json``: the DuckDB store's path without pyarrow (the default
install's) wherever it runs. Ratios are against
``untraced`` measured in the same run; "journal" is the configuration minus ``bare_spans`` in units
of ``untraced`` (the issue 23 target: ≤ +0.10x). ``ours_otlp``: the application's side of a journal
kept out of its process (``otel-runjournal serve``): our handler with content on the span attributes
(``capture_content=True``, as an application exporting to ``serve`` runs it) and the OTLP/HTTP exporter
(512-span batches) sending to a sink in another process (``otlp_sink.py``), which is not counted — only
what the application pays. ``ours_otlp_plain``: the same without content (the default handler
exporting to Jaeger or a Collector: no journal at all).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CONFIGS = (
    "untraced",
    "bare_spans",
    "ours_memory",
    "ours_duckdb",
    "ours_duckdb_json",
    "ours_jsonl",
    "ours_otlp",
    "ours_otlp_plain",
)
WARMUP = 5
_TOTALS = re.compile(rb"^(?:totals|summary):\s*(\d+)", re.MULTILINE)


# --- the measured process --------------------------------------------------------------------------
def child(config: str, invokes: int, workdir: Path) -> None:
    """Warm up, run ``invokes`` sync invokes of the bench agent under ``config``, drain, close."""
    sys.path.insert(0, str(HERE))
    import workload
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    agent = workload.build()
    stack = contextlib.ExitStack()  # the OTLP sink's process, for ours_otlp
    provider: TracerProvider | None = None
    sent: tuple[str, Any] | None = None
    callbacks: list[Any] = []
    memory: InMemorySpanExporter | None = None
    store: Any = None
    handler: Any = None
    if config != "untraced":
        provider = TracerProvider()
    if config == "bare_spans":
        import tracers

        assert provider is not None
        memory = InMemorySpanExporter()
        provider.add_span_processor(BatchSpanProcessor(memory))
        callbacks = [tracers.BareSpanHandler(provider)]
    elif config in ("ours_otlp", "ours_otlp_plain"):
        import otlp_sink
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        from otel_runjournal.tracing.handler import RunJournalCallbackHandler

        assert provider is not None
        import tracers

        endpoint = stack.enter_context(otlp_sink.running_sink())
        provider.add_span_processor(ended := tracers.SpanCounter())  # to check the sink got them all
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        sent = (endpoint, ended)
        handler = RunJournalCallbackHandler(
            tracer_provider=provider, capture_content=config == "ours_otlp", journal_content=False
        )
        callbacks = [handler]
    elif config.startswith("ours_"):
        from otel_runjournal.tracing.handler import RunJournalCallbackHandler

        assert provider is not None
        journal = config in ("ours_duckdb", "ours_duckdb_json", "ours_jsonl")
        if journal:
            from otel_runjournal.journal.exporter import RunJournalExporter
            from otel_runjournal.wiring import journal_span_processor

            if config.startswith("ours_duckdb"):
                from otel_runjournal.stores.duckdb import store as duckdb_store

                duckdb_store.MAX_HOLD = math.inf  # no wall-clock hand-over (see the module docstring)
                # ours_duckdb_json: the default install's path (no pyarrow) even where pyarrow is installed
                arrow = False if config == "ours_duckdb_json" else None
                store = duckdb_store.DuckDBStore(workdir / "journal.duckdb", linger=math.inf, arrow=arrow)
            else:
                from otel_runjournal.stores.jsonl.store import JsonlStore

                store = JsonlStore(workdir / "journal-jsonl")
            provider.add_span_processor(journal_span_processor(RunJournalExporter(store)))
        else:
            memory = InMemorySpanExporter()
            provider.add_span_processor(BatchSpanProcessor(memory))
        handler = RunJournalCallbackHandler(
            tracer_provider=provider, journal_content=None if journal else False
        )
        callbacks = [handler]

    def flush() -> None:
        if provider is not None and not provider.force_flush(timeout_millis=600_000):
            raise RuntimeError("span pipeline did not drain")
        if memory is not None:
            memory.clear()

    workload.check(agent)
    workload.run_sync(agent, WARMUP, callbacks)
    flush()
    workload.run_sync(agent, invokes, callbacks)
    flush()
    if handler is not None:
        handler.shutdown()
    if provider is not None:
        provider.shutdown()
    if store is not None:
        store.close()
    if sent is not None:  # an export that failed would count less work, not more: refuse the count
        import otlp_sink

        received = otlp_sink.stats(sent[0])["spans"]
        if received != sent[1].count:
            raise RuntimeError(f"the OTLP sink received {received} of {sent[1].count} spans")
    stack.close()


# --- the driver ------------------------------------------------------------------------------------
def count(config: str, invokes: int, keep: Path | None) -> int:
    """Instructions of one child process (callgrind's total ``Ir``)."""
    with tempfile.TemporaryDirectory(prefix=f"instr-{config}-") as tmp:
        out = (keep or Path(tmp)) / f"callgrind.out.{config}.{invokes}"
        env = dict(os.environ, PYTHONHASHSEED="0", OTEL_BSP_SCHEDULE_DELAY=str(10**9))
        for name in ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_MAX_QUEUE_SIZE"):
            env.pop(name, None)
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            *([] if keep else ["--dump-line=no", "--dump-instr=no"]),
            sys.executable,
            __file__,
            "--child",
            config,
            str(invokes),
            tmp,
        ]
        for _attempt in range(3):
            proc = subprocess.run(cmd, env=env, capture_output=True)
            if proc.returncode >= 0:
                break
            # killed by a signal (something else on a shared machine): the count is lost, run it again
            print(f"{config} x{invokes}: killed by signal {-proc.returncode}, running it again", flush=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{config} x{invokes} failed:\n{proc.stderr.decode(errors='replace')[-3000:]}")
        found = _TOTALS.search(out.read_bytes())
        if found is None:
            raise RuntimeError(f"no totals in {out}")
        print(f"{config} x{invokes}: {int(found.group(1)):,} instructions", flush=True)
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", default=list(CONFIGS), help=f"subset of {', '.join(CONFIGS)}")
    parser.add_argument("--lo", type=int, default=20)
    parser.add_argument("--hi", type=int, default=206)
    parser.add_argument("--jobs", type=int, default=2, help="callgrind processes at a time")
    parser.add_argument("--keep", type=Path, help="keep the callgrind outputs in this directory")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", nargs=3, metavar=("CONFIG", "INVOKES", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), Path(args.child[2]))
        return
    configs = list(dict.fromkeys(["untraced", *args.configs]))
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    jobs = [(c, n) for c in configs for n in (args.lo, args.hi)]
    with ThreadPoolExecutor(args.jobs) as pool:
        totals = dict(zip(jobs, pool.map(lambda job: count(*job, args.keep), jobs), strict=True))
    per = {c: (totals[c, args.hi] - totals[c, args.lo]) / (args.hi - args.lo) for c in configs}
    base = per["untraced"]
    floor = per.get("bare_spans")
    print(f"instructions per sync invoke (callgrind; {args.hi} - {args.lo} invokes)")
    print(f"{'configuration':<14} {'M instr':>9} {'x untraced':>11} {'over bare':>10}")
    for c in configs:
        over = f"{(per[c] - floor) / base:+.3f}x" if floor is not None and c != "untraced" else ""
        print(f"{c:<14} {per[c] / 1e6:>9.2f} {per[c] / base:>10.3f}x {over:>10}")
    if args.json:
        args.json.write_text(json.dumps({"lo": args.lo, "hi": args.hi, "per_invoke": per}, indent=1))


if __name__ == "__main__":
    main()
