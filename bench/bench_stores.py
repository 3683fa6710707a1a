"""Store benchmark: sustained write rate into each store and query latency on a large journal.

    python bench/bench_stores.py            # ~2 min: 200k events per write run, 10M-event query store
    python bench/bench_stores.py --quick    # seconds: small sizes (smoke test)
    python bench/bench_stores.py --query-events 2000000 --write-events 100000
    python bench/bench_stores.py --postgres postgresql://user@127.0.0.1:5432/db   # + PostgreSQL rows
    python bench/bench_stores.py --only-duckdb-writes     # the DuckDB write rows alone (A/B runs)

Writer-process rows (``--processes``, default 4) run that many forked writers at once, each writing
its share of the events (see ``bench_postgres.py``); "per CPU-s" is per CPU-second of the writer
processes. For a server on this machine the CPU it spent is measured too, and the rate the machine
would reach if the writers and the server had every core to themselves is projected from both (on
a shared machine the wall rate measures the other jobs as much as the store). PostgreSQL rows need
a server (default: the tests' ``OTEL_RUNJOURNAL_TEST_POSTGRES``; ``scripts/postgres_server.sh``
starts one); each case writes into a fresh schema, dropped at the end.

Writes use exporter-shaped batches: runs of 25 events and 10 spans, 51 runs (510 spans, what one
``BatchSpanProcessor`` export of 512 spans carries) per ``write()``; the "x8" rows write 8 times
that per call (``OTEL_BSP_MAX_EXPORT_BATCH_SIZE=4096``) and the "exporter batch" rows 4 times (2,040
spans: the journal's own processor exports 2,048, see ``wiring.journal_span_processor``). Each rate
is shown per wall-clock second and per CPU-second of this process: on a shared machine the wall
rate swings with the load of other processes, the CPU rate much less (DuckDB's fsync waits are wall
time, not CPU time).
The prebuilt batches are moved out of the garbage collector's way (``gc.freeze``) so the rate is
the store's, not a full-heap collection of test data, and ``os.sync()`` runs before each case so
it does not pay for the write-back of the previous one.

The big DuckDB store is generated with SQL inside DuckDB (not through Python rows) in the
library's own schema, then queried through ``DuckDBStore``: on an open connection (the store
keeps it ``linger`` seconds after an operation) and cold (open + query + close, what a one-shot
CLI call pays).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
from bench_postgres import build_big, drop_schemas, parallel_writes, schema_url, server_cpu

from otel_runjournal.records import RunEvent, RunRecord, RunWrite, SpanRecord
from otel_runjournal.stores import DuckDBStore, JsonlStore, RunStore
from otel_runjournal.stores.duckdb import insert as _insert

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
EVENTS_PER_RUN = 25
SPANS_PER_RUN = 10
RUNS_PER_BATCH = 51
THREADS = 40_000


def make_batches(total_events: int, prefix: str) -> list[list[RunWrite]]:
    """Exporter-shaped batches totalling ``total_events`` events."""
    runs = total_events // EVENTS_PER_RUN
    batches: list[list[RunWrite]] = []
    for r in range(runs):
        run_id, thread_id = f"{prefix}-run-{r}", f"{prefix}-thread-{r % 997}"
        at = T0 + timedelta(seconds=r)
        events = [
            RunEvent(
                thread_id=thread_id,
                run_id=run_id,
                event_type="ai_message" if i % 8 == 1 else "llm_end",
                category="message" if i % 8 == 1 else "trace",
                created_at=at + timedelta(milliseconds=i),
                content=f"some model output text number {i} " * 3,
                metadata={
                    "model": "gpt-4o",
                    "caller": "lead_agent",
                    "usage": {"input_tokens": 120, "output_tokens": 40},
                },
                trace_id=f"{r:032x}",
                span_id=f"{i:016x}",
            )
            for i in range(EVENTS_PER_RUN)
        ]
        spans = [
            SpanRecord(
                trace_id=f"{r:032x}",
                span_id=f"{i:016x}",
                parent_span_id=None if i == 0 else f"{0:016x}",
                run_id=run_id,
                name="chat gpt-4o",
                kind="CLIENT",
                start_time=at,
                end_time=at + timedelta(seconds=1),
                duration_ms=1000.0,
                status_code="OK",
                attributes={"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 120},
            )
            for i in range(SPANS_PER_RUN)
        ]
        run = RunRecord(run_id=run_id, thread_id=thread_id, status="success", started_at=at, total_tokens=160,
                        usage_by_caller={"lead_agent": 160})  # fmt: skip
        if r % RUNS_PER_BATCH == 0:
            batches.append([])
        batches[-1].append(RunWrite(run=run, events=events, spans=spans))
    return batches


def bench_writes(store: RunStore, batches: list[list[RunWrite]]) -> tuple[float, float]:
    """(events per wall second, events per CPU second) writing ``batches``, then closing the store."""
    events = sum(len(u.events) for b in batches for u in b)
    os.sync()  # earlier cases' dirty pages are written back now, not during this one
    gc.collect()
    gc.freeze()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            store.write(batch)
        store.close()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        gc.unfreeze()
    return events / wall, events / max(cpu, 1e-9)


def build_big_duckdb(path: str, events: int, real_ids: bool = False) -> tuple[float, list[str], list[str]]:
    """A journal of ``events`` rows in the library's schema, generated inside DuckDB.

    ``real_ids``: ids and metadata as distinct as a real journal's (a trace id per run, a span id
    per two events, metadata with per-event numbers); by default span ids repeat 25 values and the
    metadata is one constant, which DuckDB compresses to almost nothing and fetches cheaply.
    """
    if real_ids:
        metadata = (
            """'{"model":"gpt-4o","caller":"lead_agent","usage":{"input_tokens":' || (hash(i) % 5000) """
            """|| ',"output_tokens":' || (hash(i + 1) % 900) || '}}'"""
        )
        trace_id, span_id = (
            "printf('%032x', hash(i // 25))",
            "printf('%016x', hash(i // 2) % 1000000000000000)",
        )
    else:
        metadata = """'{"model":"gpt-4o","caller":"lead_agent"}'"""
        trace_id, span_id = "lpad(printf('%x', i // 25), 32, '0')", "lpad(printf('%x', i % 25), 16, '0')"
    DuckDBStore(path).close()  # schema + migrations
    runs = events // EVENTS_PER_RUN
    start = time.perf_counter()
    con = duckdb.connect(path)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    # runs interleave across THREADS threads, as when many conversations are served at once
    con.execute(
        f"""INSERT INTO run_events
        SELECT 'thread-' || ((i // 25) % {THREADS}), 'run-' || (i // 25),
               ((i // 25) // {THREADS}) * 25 + i % 25 + 1,
               CASE WHEN i % 25 = 0 THEN 'run_start' WHEN i % 25 = 24 THEN 'run_end'
                    WHEN i % 8 = 1 THEN 'ai_message' WHEN i % 25 = 1 THEN 'human_message' ELSE 'llm_end' END,
               CAST(CASE WHEN i % 25 IN (0, 24) THEN 'lifecycle' WHEN i % 8 = 1 OR i % 25 = 1 THEN 'message'
                    ELSE 'trace' END AS event_category),
               'model output text ' || i, {metadata},
               TIMESTAMPTZ '2025-01-01' + to_microseconds(i * 1000), {trace_id}, {span_id}
        FROM range({events}) t(i)"""
    )
    con.execute(
        f"""INSERT INTO runs (run_id, thread_id, status, started_at, total_tokens, usage_by_caller)
        SELECT 'run-' || r, 'thread-' || (r % {THREADS}), 'success',
               TIMESTAMPTZ '2025-01-01' + to_microseconds(r * 25000), 160, '{{"lead_agent":160}}'
        FROM range({runs}) t(r)"""
    )
    con.execute("INSERT INTO thread_seq SELECT thread_id, max(seq) FROM run_events GROUP BY thread_id")
    con.close()
    rng = random.Random(7)
    threads = [f"thread-{rng.randrange(min(THREADS, runs))}" for _ in range(50)]
    run_ids = [f"run-{rng.randrange(runs)}" for _ in range(50)]
    return time.perf_counter() - start, threads, run_ids


def latency(fn: Callable[[str], object], keys: list[str]) -> tuple[float, float]:
    """Median and p95 in ms over ``keys`` (after one warm-up call)."""
    fn(keys[0])
    samples = []
    for key in keys:
        start = time.perf_counter()
        fn(key)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def query_rows(
    store_factory: Callable[[], RunStore], threads: list[str], run_ids: list[str]
) -> list[tuple[str, float, float]]:
    rows = []
    store = store_factory()
    big = 2**62
    rows.append(
        (
            "last 50 messages of a thread",
            *latency(lambda t: store.list_messages(t, before_seq=big, limit=50), threads),
        )
    )
    rows.append(
        ("one page (100) of a run's events", *latency(lambda r: store.list_events(r, limit=100), run_ids))
    )
    store.close()
    return rows


def open_cost(path: str) -> tuple[float, float]:
    samples = []
    for _ in range(10):
        start = time.perf_counter()
        duckdb.connect(path, read_only=True).close()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), max(samples)


def regroup(batches: list[list[RunWrite]], factor: int) -> list[list[RunWrite]]:
    """``factor`` consecutive batches merged into one write."""
    return [[u for b in batches[i : i + factor] for u in b] for i in range(0, len(batches), factor)]


WRITE_TARGETS = {"duckdb": 200_000, "jsonl": 300_000, "postgres": 100_000}
QUERY_TARGET_MS = 10.0


def write_table(root: Path, total: int, duckdb_only: bool = False) -> None:
    print(
        f"\n## write throughput ({total:,} events; {RUNS_PER_BATCH} runs x {EVENTS_PER_RUN} events "
        f"+ {SPANS_PER_RUN} spans per write unless noted)"
    )
    print(f"{'store / path':<50} {'events/s':>10} {'per CPU-s':>10} {'target':>9}")
    cases: list[tuple[str, str, Callable[[], RunStore], int]] = [
        ("duckdb  pyarrow (fast extra)", "duckdb", lambda: DuckDBStore(root / "w1.duckdb", arrow=True), 1),
        ("duckdb  no pyarrow (orjson + read_json)", "duckdb",
         lambda: DuckDBStore(root / "w2.duckdb", arrow=False), 1),
        ("duckdb  pyarrow, x8 batches", "duckdb", lambda: DuckDBStore(root / "w3.duckdb", arrow=True), 8),
        # the journal's own exporter batch (2,048 spans, see wiring.journal_span_processor)
        ("duckdb  pyarrow, exporter batch (2,040 spans)", "duckdb",
         lambda: DuckDBStore(root / "w7.duckdb", arrow=True), 4),
        ("duckdb  no pyarrow, exporter batch (2,040 spans)", "duckdb",
         lambda: DuckDBStore(root / "w8.duckdb", arrow=False), 4),
        ("jsonl   fsync=never", "jsonl", lambda: JsonlStore(root / "w4", fsync="never"), 1),
        ("jsonl   fsync=never, x8 batches", "jsonl", lambda: JsonlStore(root / "w5", fsync="never"), 8),
        ("jsonl   fsync=batch (1/4 of the events)", "jsonl",
         lambda: JsonlStore(root / "w6", fsync="batch"), 1),
    ]  # fmt: skip
    if duckdb_only:
        cases = [case for case in cases if case[1] == "duckdb"]
    for label, kind, factory, factor in cases:
        try:
            store = factory()
        except ValueError as exc:  # pyarrow missing
            print(f"{label:<50} skipped: {exc}")
            continue
        batches = make_batches(total // 4 if "fsync=batch" in label else total, label.split()[0])
        wall, cpu = bench_writes(store, regroup(batches, factor))
        print(f"{label:<50} {wall:>10,.0f} {cpu:>10,.0f} {WRITE_TARGETS[kind]:>9,}")


def split_batches(batches: list[list[RunWrite]], parts: int) -> list[list[list[RunWrite]]]:
    return [batches[i::parts] for i in range(parts)]


def process_table(root: Path, total: int, processes: int, postgres: str | None) -> None:
    print(f"\n## {processes} writer processes at once ({total:,} events in all, one write = one batch)")
    print(f"{'store':<50} {'events/s':>10} {'per CPU-s':>10} {'target':>9}")
    cases: list[tuple[str, str, Callable[[], RunStore]]] = [
        # long waits allowed: on a loaded machine a writer can wait more than the default 10 s
        ("duckdb  (turn-taking on the file)", "duckdb", lambda: DuckDBStore(root / "p1.duckdb", timeout=300)),
        ("jsonl   (turn-taking on the lock)", "jsonl", lambda: JsonlStore(root / "p2", timeout=300)),
    ]
    if postgres:
        from otel_runjournal.stores.postgres.store import PostgresStore

        url = schema_url(postgres)
        PostgresStore(url).close()
        cases.append(("postgres (concurrent transactions)", "postgres", lambda: PostgresStore(url)))
    for label, kind, factory in cases:
        factory().close()  # created (and migrated) before the writers start
        batches = make_batches(total, f"p{kind}")
        server = server_cpu(postgres) if kind == "postgres" and postgres else None
        server_start = server() if server else 0.0
        rate, cpu_rate = parallel_writes(factory, split_batches(batches, processes))
        target = WRITE_TARGETS[kind] if kind == "postgres" else 0
        print(f"{label:<50} {rate:>10,.0f} {cpu_rate:>10,.0f} {target or '-':>9}")
        if server:
            per_server = total / max(server() - server_start, 1e-9)
            cores = os.cpu_count() or 1
            print(f"{'  the server, per its CPU-second':<50} {'':>10} {per_server:>10,.0f}")
            print(
                f"{f'  CPU-bound rate on {cores} idle cores (projection)':<50} "
                f"{cores / (1 / cpu_rate + 1 / per_server):>10,.0f}"
            )


def postgres_tables(postgres: str, total: int, query_events: int) -> None:
    from otel_runjournal.stores.postgres.store import PostgresStore

    print(f"\n## PostgreSQL, one writer process ({total:,} events; server {postgres.split('@')[-1]})")
    print(f"{'store / path':<50} {'events/s':>10} {'per CPU-s':>10} {'target':>9}")
    for label, factor in (("postgres COPY + upserts", 1), ("postgres COPY + upserts, x8 batches", 8)):
        url = schema_url(postgres)
        wall, cpu = bench_writes(PostgresStore(url), regroup(make_batches(total, "pg"), factor))
        print(f"{label:<50} {wall:>10,.0f} {cpu:>10,.0f} {WRITE_TARGETS['postgres']:>9,}")
    url = schema_url(postgres)
    seconds, threads, run_ids = build_big(url, query_events)
    appended = make_batches(min(total, 100_000), "append")
    wall, cpu = bench_writes(PostgresStore(url), appended)
    print(
        f"{'postgres appending to the ' + format(query_events, ',') + '-event store':<50} "
        f"{wall:>10,.0f} {cpu:>10,.0f} {WRITE_TARGETS['postgres']:>9,}"
    )
    print(
        f"\n## query latency, PostgreSQL store with {query_events:,} events (built in {seconds:.0f}s); "
        f"target <= {QUERY_TARGET_MS:g} ms"
    )
    print(f"{'query':<50} {'median ms':>10} {'p95 ms':>10}")
    for name, med, p95 in query_rows(lambda: PostgresStore(url, read_only=True), threads, run_ids):
        print(f"{name + ' [pooled connection]':<50} {med:>10.2f} {p95:>10.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write-events", type=int, default=200_000)
    parser.add_argument(
        "--query-events", type=int, default=10_000_000, help="size of the generated DuckDB store"
    )
    parser.add_argument("--jsonl-query-events", type=int, default=200_000)
    parser.add_argument(
        "--real-ids",
        action="store_true",
        help="the big DuckDB store with distinct span ids, a trace id per run and varied metadata",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--processes", type=int, default=4, help="writer processes for the parallel rows")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("OTEL_RUNJOURNAL_TEST_POSTGRES"),
        help="a PostgreSQL server URL for the PostgreSQL rows (default: $OTEL_RUNJOURNAL_TEST_POSTGRES)",
    )
    parser.add_argument("--pg-query-events", type=int, default=10_000_000, help="size of the big PG table")
    parser.add_argument("--only-postgres", action="store_true", help="only the writer-process and PG rows")
    parser.add_argument(
        "--only-duckdb-writes",
        action="store_true",
        help="only the DuckDB write rows (run it with PYTHONPATH=<another tree> to compare two versions)",
    )
    parser.add_argument(
        "--dir", default=None, help="where to put the stores (default: a temp dir, removed afterwards)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.write_events, args.query_events, args.jsonl_query_events = 20_000, 200_000, 20_000
        args.pg_query_events = 200_000
    if args.dir is None:  # about 700 MB: removed afterwards unless --dir was given
        with tempfile.TemporaryDirectory(prefix="rj-bench-") as tmp:
            return run(args, Path(tmp))
    return run(args, Path(args.dir))


def run(args: argparse.Namespace, root: Path) -> int:
    print(
        f"# stores under {root}; python {sys.version.split()[0]}, "
        f"duckdb {duckdb.__version__}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}"
    )
    if args.only_duckdb_writes:
        write_table(root, args.write_events, duckdb_only=True)
        return 0
    try:
        process_table(root, args.write_events, args.processes, args.postgres)
        if args.postgres:
            postgres_tables(args.postgres, args.write_events, args.pg_query_events)
    finally:
        if args.postgres:
            drop_schemas(args.postgres)
    if args.only_postgres:
        return 0
    write_table(root, args.write_events)

    big = str(root / "big.duckdb")
    seconds, threads, run_ids = build_big_duckdb(big, args.query_events, args.real_ids)
    size_mb = os.path.getsize(big) / 2**20
    appended = make_batches(min(args.write_events, 100_000), "append")
    wall, cpu = bench_writes(DuckDBStore(big, arrow=_insert.pa is not None), appended)
    print(
        f"{'duckdb  appending to the ' + format(args.query_events, ',') + '-event store':<50} "
        f"{wall:>10,.0f} {cpu:>10,.0f} {WRITE_TARGETS['duckdb']:>9,}"
    )
    print(
        f"\n## query latency, DuckDB store with {args.query_events:,} events "
        f"({size_mb:,.0f} MB, built in {seconds:.0f}s{', real ids' if args.real_ids else ''}); "
        f"target <= {QUERY_TARGET_MS:g} ms"
    )
    print(f"{'query':<50} {'median ms':>10} {'p95 ms':>10}")
    for label, factory in (
        ("open connection", lambda: DuckDBStore(big, read_only=True, linger=60)),
        ("open+query+close", lambda: DuckDBStore(big, read_only=True, linger=0)),
    ):
        for name, med, p95 in query_rows(factory, threads, run_ids):
            print(f"{name + ' [' + label + ']':<50} {med:>10.2f} {p95:>10.2f}")
    med, worst = open_cost(big)
    print(f"{'duckdb.connect + close alone':<50} {med:>10.2f} {worst:>10.2f}")

    jdir = root / "jsonl-query"
    batches = make_batches(args.jsonl_query_events, "q")
    with JsonlStore(jdir) as store:
        for batch in batches:
            store.write(batch)
    jthreads = [f"q-thread-{i}" for i in range(0, 997, 20)]
    jruns = [f"q-run-{i}" for i in range(0, args.jsonl_query_events // EVENTS_PER_RUN, 97)][:50]
    print(
        f"\n## query latency, JSONL store with {args.jsonl_query_events:,} events "
        f"({len(batches) * RUNS_PER_BATCH:,} runs)"
    )
    start = time.perf_counter()
    JsonlStore(jdir).list_runs(limit=1)
    print(f"{'open + first query (indexes runs.jsonl)':<50} {(time.perf_counter() - start) * 1000:>10.2f}")
    for name, med, p95 in query_rows(lambda: JsonlStore(jdir), jthreads, jruns):
        print(f"{name + ' [open store]':<50} {med:>10.2f} {p95:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
