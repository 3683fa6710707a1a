"""PostgreSQL rows of the store benchmark (``bench_stores.py --postgres URL``), and writers in parallel.

Writer processes: each process (forked, so the batches are built before the clock starts) opens its
own store and writes its own runs; the rate is all events over the wall time from a common start to
the last process done. For DuckDB and JSONL the processes take turns on the file; for PostgreSQL
they write at once. The big PostgreSQL table for the query rows is generated inside the server
(``generate_series``) in the library's schema, the same shape as the DuckDB one.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import time
import uuid
from collections.abc import Callable
from urllib.parse import quote

from otel_runjournal.records import RunWrite
from otel_runjournal.stores import RunStore

THREADS = 40_000


def schema_url(server: str) -> str:
    """A fresh schema on ``server`` for one case (dropped by :func:`drop_schemas`)."""
    import psycopg

    name = f"rj_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return f"{server}{'&' if '?' in server else '?'}options={quote(f'-csearch_path={name}')}"


def drop_schemas(server: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        names = [
            n for (n,) in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rj_bench_%'")
        ]
        for name in names:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def _writer(
    factory: Callable[[], RunStore], batches: list[list[RunWrite]], start: object, done: object
) -> None:
    store = factory()
    start.wait()  # type: ignore[attr-defined]
    for batch in batches:
        store.write(batch)
    store.close()
    done.put(time.perf_counter())  # type: ignore[attr-defined]


def server_cpu(url: str) -> Callable[[], float] | None:
    """Total CPU seconds of a local server (postmaster, its live children, and the reaped ones it
    accounts for), or ``None`` when the server is not on this machine."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_backend_pid(), inet_server_addr()::text").fetchone()
    assert row is not None
    backend, address = row
    if address is not None and not address.startswith(("127.", "::1")):
        return None
    try:
        postmaster = int(_stat(backend)[1])
    except OSError:
        return None

    def total() -> float:
        seconds = sum(map(int, _stat(postmaster)[11:15]))  # utime stime cutime cstime
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    fields = _stat(int(pid))
                except OSError:
                    continue
                if int(fields[1]) == postmaster:
                    seconds += int(fields[11]) + int(fields[12])
        return seconds / os.sysconf("SC_CLK_TCK")

    return total


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [state, ppid, ...] (index 11, 12 = utime, stime)."""
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def parallel_writes(
    factory: Callable[[], RunStore], per_process: list[list[list[RunWrite]]]
) -> tuple[float, float]:
    """(events per wall second, events per CPU second of the writer processes) with one forked
    writer process per entry of ``per_process``."""
    ctx = mp.get_context("fork")
    children_cpu = _children_cpu()
    start = ctx.Barrier(len(per_process) + 1)
    done = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(factory, b, start, done)) for b in per_process]
    for p in procs:
        p.start()
    start.wait()
    began = time.perf_counter()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a writer process failed (exit code {p.exitcode})")
    ends = [done.get(timeout=10) for _ in procs]
    events = sum(len(u.events) for b in per_process for batch in b for u in batch)
    return events / (max(ends) - began), events / max(_children_cpu() - children_cpu, 1e-9)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_big(url: str, events: int) -> tuple[float, list[str], list[str]]:
    """A journal of ``events`` rows generated inside PostgreSQL (same shape as the DuckDB one)."""
    import psycopg

    from otel_runjournal.stores.postgres.store import PostgresStore

    PostgresStore(url).close()  # schema + migrations
    runs = events // 25
    began = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"""INSERT INTO run_events
            SELECT 'thread-' || ((i / 25) % {THREADS}), 'run-' || (i / 25),
                   ((i / 25) / {THREADS}) * 25 + i % 25 + 1,
                   CASE WHEN i % 25 = 0 THEN 'run_start' WHEN i % 25 = 24 THEN 'run_end'
                        WHEN i % 8 = 1 THEN 'ai_message' WHEN i % 25 = 1 THEN 'human_message'
                        ELSE 'llm_end' END,
                   (CASE WHEN i % 25 IN (0, 24) THEN 'lifecycle' WHEN i % 8 = 1 OR i % 25 = 1 THEN 'message'
                        ELSE 'trace' END)::event_category,
                   'model output text ' || i, '{{"model":"gpt-4o","caller":"lead_agent"}}',
                   TIMESTAMPTZ '2025-01-01' + i * INTERVAL '1 millisecond', lpad(to_hex(i / 25), 32, '0'),
                   lpad(to_hex(i % 25), 16, '0')
            FROM generate_series(0, {events - 1}::BIGINT) AS t (i)"""
        )
        conn.execute(
            f"""INSERT INTO runs (run_id, thread_id, status, started_at, total_tokens, usage_by_caller)
            SELECT 'run-' || r, 'thread-' || (r % {THREADS}), 'success',
                   TIMESTAMPTZ '2025-01-01' + r * INTERVAL '25 milliseconds', 160, '{{"lead_agent":160}}'
            FROM generate_series(0, {runs - 1}::BIGINT) AS t (r)"""
        )
        conn.execute("INSERT INTO thread_seq SELECT thread_id, max(seq) FROM run_events GROUP BY thread_id")
        conn.execute("VACUUM ANALYZE run_events")
        conn.execute("VACUUM ANALYZE runs")
    import random

    rng = random.Random(7)
    threads = [f"thread-{rng.randrange(min(THREADS, runs))}" for _ in range(50)]
    run_ids = [f"run-{rng.randrange(runs)}" for _ in range(50)]
    return time.perf_counter() - began, threads, run_ids
