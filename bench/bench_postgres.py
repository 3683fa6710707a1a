"""PostgreSQL rows of the store benchmark (``bench_stores.py --postgres URL``), and writers in parallel.

Writer processes: each process (forked, so the batches are built before the clock starts) opens its
own store and writes its own runs; the rate is all events over the wall time from a common start to
the last process done. For DuckDB and JSONL the processes take turns on the file; for PostgreSQL
they write at once. The big PostgreSQL table for the query rows is generated inside the server
(``generate_series``) in the library's schema, the same shape as the DuckDB one.

Run on its own, the store's writers against a bare ``COPY`` of the same rows::

    python bench/bench_postgres.py [--events 100000] [--rounds 5] [--baseline OLD_TREE]
    python bench/bench_postgres.py --instructions 1 3 [--baseline OLD_TREE]

Each round runs, each in its own process and a fresh schema (same tables and indexes, the
library's migrations), order rotating per round: ``store`` (4 forked writer processes through
``PostgresStore``; ``baseline store``: the same with ``--baseline``'s ``otel_runjournal`` on the
path), ``copy`` and ``copy-binary`` (4 forked processes, each one connection, one transaction per
batch as the store, ``COPY`` of the same span / run / event rows in text or binary format, with the
seqs numbered per thread beforehand; the rows are built before the clock starts, so a bare COPY
pays for no conversion at all). Reported: events/s median [range], the ratio to each COPY per
round, and the writers' and the server's CPU per event. ``--instructions`` counts the writer's
side with callgrind instead (one process, LO and HI batches, the difference per event; the
server's work is not in it).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
import uuid
from collections.abc import Callable
from typing import Any
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
    if type(store).__name__ == "PostgresStore":  # its pool connects in the background: connected
        store.schema_versions()  # type: ignore[attr-defined]  # before the clock, as the COPY processes
    start.wait()  # type: ignore[attr-defined]
    cpu = time.process_time()
    for batch in batches:
        store.write(batch)
    store.close()
    done.put((time.perf_counter(), time.process_time() - cpu))  # type: ignore[attr-defined]


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
    factory: Callable[[], RunStore],
    per_process: list[list[list[RunWrite]]],
    at_start: Callable[[], object] | None = None,
) -> tuple[float, float]:
    """(events per wall second, events per CPU second of the writer processes) with one forked
    writer process per entry of ``per_process``; ``at_start`` is called when the clock starts."""
    events = sum(len(u.events) for b in per_process for batch in b for u in batch)
    return _timed_processes(_writer, [(factory, b) for b in per_process], events, "writer", at_start)


def _timed_processes(
    target: Callable[..., None],
    args: list[tuple[Any, ...]],
    events: int,
    what: str,
    at_start: Callable[[], object] | None = None,
) -> tuple[float, float]:
    """Fork one process per ``args`` entry (``target(*entry, start_barrier, done_queue)``), start them
    together; (events per wall second until the last one is done, events per CPU second they spent
    from the start to their end: all their threads, not their set-up before the clock)."""
    ctx = mp.get_context("fork")
    start = ctx.Barrier(len(args) + 1)
    done = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*entry, start, done)) for entry in args]
    for p in procs:
        p.start()
    start.wait()
    began = time.perf_counter()
    if at_start is not None:
        at_start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a {what} process failed (exit code {p.exitcode})")
    ends, cpus = zip(*[done.get(timeout=10) for _ in procs], strict=True)
    return events / (max(ends) - began), events / max(sum(cpus), 1e-9)


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


# -- the store's writers against a bare COPY of the same rows ---------------------------------------


def copy_rows(batches: list[list[RunWrite]]) -> list[tuple[list[tuple], list[tuple], list[tuple]]]:
    """Per batch: (span rows, run rows, event rows) as the tables hold them, built independently of
    the store (seqs numbered per thread over all batches, in batch order)."""
    import orjson

    from otel_runjournal.stores.codec import RUN_FIELDS

    def js(value: object) -> str:
        return orjson.dumps(value).decode()

    last: dict[str, int] = {}
    out = []
    for batch in batches:
        spans, runs, events = [], [], []
        for unit in batch:
            for s in unit.spans:
                spans.append(
                    (s.trace_id, s.span_id, s.parent_span_id, s.run_id, s.name, s.kind, s.start_time,
                     s.end_time, s.duration_ms, s.status_code, s.status_message, js(s.attributes),
                     js(s.events), js(s.resource))
                )  # fmt: skip
            r = unit.run
            runs.append(
                tuple(js(r.usage_by_caller) if f == "usage_by_caller" else getattr(r, f) for f in RUN_FIELDS)
            )
            for e in unit.events:
                seq = last[e.thread_id] = last.get(e.thread_id, 0) + 1
                events.append(
                    (e.thread_id, e.run_id, seq, e.event_type, e.category, e.content, js(e.metadata),
                     e.created_at, e.trace_id, e.span_id)
                )  # fmt: skip
        out.append((spans, runs, events))
    return out


_COPY_TABLES = (
    ("spans", "trace_id, span_id, parent_span_id, run_id, name, kind, start_time, end_time, duration_ms, "
     "status_code, status_message, attributes, events, resource"),
    ("runs", None),
    ("run_events", "thread_id, run_id, seq, event_type, category, content, metadata, created_at, trace_id, "
     "span_id"),
)  # fmt: skip


_SPAN_COPY_TYPES = [*["text"] * 6, "timestamptz", "timestamptz", "float8", *["text"] * 5]
_EVENT_COPY_TYPES = ["text", "text", "int8", "text", "text", "text", "text", "timestamptz", "text", "text"]
_HERE = os.path.dirname(os.path.abspath(__file__))


def _copy_writer(url: str, rows: list, binary: bool, start: object, done: object) -> None:
    import psycopg

    from otel_runjournal.stores.codec import RUN_FIELDS

    columns = [c or ", ".join(RUN_FIELDS) for _, c in _COPY_TABLES]
    # binary: the column types' binary forms (JSON and the category enum: their text)
    types = [_SPAN_COPY_TYPES, [_run_type(f) for f in RUN_FIELDS], _EVENT_COPY_TYPES]
    with psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.commit()
        start.wait()  # type: ignore[attr-defined]
        cpu = time.process_time()
        with conn.cursor() as cur:
            for parts in rows:
                with conn.transaction():
                    for (table, _), cols, kinds, part in zip(
                        _COPY_TABLES, columns, types, parts, strict=True
                    ):
                        with cur.copy(
                            f"COPY {table} ({cols}) FROM STDIN{' (FORMAT BINARY)' * binary}"
                        ) as copy:
                            if binary:
                                copy.set_types(kinds)
                            for row in part:
                                copy.write_row(row)
    done.put((time.perf_counter(), time.process_time() - cpu))  # type: ignore[attr-defined]


def _run_type(name: str) -> str:
    from otel_runjournal.stores.codec import RUN_TOKEN_FIELDS

    if name in ("started_at", "ended_at"):
        return "timestamptz"
    if name in ("duration_ms", "cost_usd"):
        return "float8"
    if name in (*RUN_TOKEN_FIELDS, "message_count", "unpriced_call_count"):
        return "int8"
    return "bool" if name == "complete" else "text"


def parallel_copy(
    url: str,
    batches: list[list[RunWrite]],
    processes: int,
    binary: bool,
    at_start: Callable[[], object] | None = None,
) -> tuple[float, float]:
    """:func:`parallel_writes` for a bare ``COPY`` of the same rows (built before the clock starts),
    ``batches`` dealt to ``processes`` processes as ``bench_stores.split_batches`` deals them."""
    rows = copy_rows(batches)
    events = sum(len(u.events) for b in batches for u in b)
    args = [(url, rows[i::processes], binary) for i in range(processes)]
    return _timed_processes(_copy_writer, args, events, "COPY", at_start)


def one_case(case: str, server: str, events: int, processes: int) -> dict[str, float]:
    """One measurement in a fresh schema: ``store`` (``PostgresStore`` writers, whichever
    ``otel_runjournal`` is on the path) or ``copy``; events/s, writer and server CPU-s per event."""
    import gc

    from bench_stores import make_batches, split_batches

    from otel_runjournal.stores.postgres.store import PostgresStore

    url = schema_url(server)
    PostgresStore(url).close()  # schema + migrations, before the clock
    batches = make_batches(events, "w")
    cpu = server_cpu(server)
    # the server's CPU from the common start (the writers connected, and opened their stores, before
    # it: connecting is not what is compared) to the end
    server_start: list[float] = []

    def mark() -> None:
        server_start.append(cpu() if cpu else 0.0)

    gc.collect()
    gc.freeze()
    if case in ("copy", "copy-binary"):
        rate, cpu_rate = parallel_copy(url, batches, processes, case == "copy-binary", mark)
    else:
        writers = split_batches(batches, processes)
        rate, cpu_rate = parallel_writes(lambda: PostgresStore(url), writers, mark)
    server_s = (cpu() - server_start[0]) if cpu else float("nan")
    _check_rows(url, events)
    return {"rate": rate, "writer_us": 1e6 / cpu_rate, "server_us": 1e6 * server_s / events}


def _check_rows(url: str, events: int) -> None:
    """Both cases wrote the same number of rows into the same tables."""
    import psycopg

    with psycopg.connect(url) as conn:
        (n,) = conn.execute("SELECT count(*) FROM run_events").fetchone() or (0,)
    if n != events:
        raise RuntimeError(f"{n} events stored, {events} written")


def one_counted(case: str, server: str, batches: int, built: int) -> None:
    """The writer's side of ``case`` for ``batches`` exporter-sized batches in one process (counted by
    callgrind from outside): the store writes them, or a bare COPY writes their prebuilt rows. ``built``
    batches are made (and their COPY rows) whatever ``batches`` is, so that making them cancels."""
    import gc

    import psycopg
    from bench_stores import make_batches

    from otel_runjournal.stores.codec import RUN_FIELDS
    from otel_runjournal.stores.postgres.store import PostgresStore

    url = schema_url(server)
    PostgresStore(url).close()
    made = make_batches(built * 51 * 25, "i")
    data, rows = made[:batches], copy_rows(made)[:batches]
    gc.collect()
    gc.freeze()
    if case == "store":
        # one connection, made before the batches: a pool that may grow when a request races its
        # first connection would count a connection set-up in one run and not in the other
        store = PostgresStore(url, pool_size=1)
        store.schema_versions()
        for batch in data:
            store.write(batch)
        store.close()
        return
    binary = case == "copy-binary"
    columns = [c or ", ".join(RUN_FIELDS) for _, c in _COPY_TABLES]
    types = [_SPAN_COPY_TYPES, [_run_type(f) for f in RUN_FIELDS], _EVENT_COPY_TYPES]
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for parts in rows:
            with conn.transaction():
                for (table, _), cols, kinds, part in zip(_COPY_TABLES, columns, types, parts, strict=True):
                    with cur.copy(f"COPY {table} ({cols}) FROM STDIN{' (FORMAT BINARY)' * binary}") as copy:
                        if binary:
                            copy.set_types(kinds)
                        for row in part:
                            copy.write_row(row)


# numpy (imported with the bench's other stores) starts OpenBLAS threads that spin: their instructions
# would be counted, a different number in each run
_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def instructions(args: argparse.Namespace, trees: dict[str, str]) -> None:
    """Writer-side instructions per event: (I(hi batches) - I(lo batches)) / events between, so start-up,
    imports and building the test data cancel; the server's work is not counted (another process)."""
    import re
    import subprocess
    import sys
    import tempfile

    totals = re.compile(rb"^(?:totals|summary):\s*(\d+)", re.MULTILINE)
    lo, hi = args.instructions
    print(f"# writer instructions per event, {lo} and {hi} batches of 1,275 events, one process")
    for name, tree in trees.items():
        counts = []
        for batches in (lo, hi):
            with tempfile.TemporaryDirectory(prefix="rj-instr-") as tmp:
                out = f"{tmp}/callgrind.out"
                env = dict(
                    os.environ, PYTHONHASHSEED="0", PYTHONPATH=os.pathsep.join([tree, _HERE]), **_ONE_THREAD
                )
                case = name.removeprefix("baseline ")
                cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-line=no",
                       "--dump-instr=no", sys.executable, __file__, "--counted", case, str(batches),
                       str(hi), "--postgres", args.postgres]  # fmt: skip
                subprocess.run(cmd, env=env, check=True, capture_output=True)
                with open(out, "rb") as handle:
                    found = totals.search(handle.read())
                assert found is not None
                counts.append(int(found.group(1)))
        per = (counts[1] - counts[0]) / ((hi - lo) * 51 * 25)
        print(f"{name:<16} {per:>10,.0f} instructions per event", flush=True)
        drop_schemas(args.postgres)


def main(argv: list[str] | None = None) -> int:
    """Rounds of: the store's writers (this tree, and ``--baseline``'s tree when given) and a bare
    COPY of the same rows, each in its own process and a fresh schema, order rotating per round."""
    import json
    import statistics
    import subprocess
    import sys
    from pathlib import Path

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--postgres", default=os.environ.get("OTEL_RUNJOURNAL_TEST_POSTGRES"))
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", help="a source tree of otel_runjournal to compare (its store case)")
    parser.add_argument(
        "--instructions", nargs=2, type=int, metavar=("LO", "HI"),
        help="instead: writer-side instructions per event (callgrind), LO and HI batches (e.g. 1 3)",
    )  # fmt: skip
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--counted", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.postgres:
        parser.error("no server: --postgres URL or OTEL_RUNJOURNAL_TEST_POSTGRES")
    if args.case:
        print(json.dumps(one_case(args.case, args.postgres, args.events, args.processes)))
        return 0
    if args.counted:
        one_counted(args.counted[0], args.postgres, int(args.counted[1]), int(args.counted[2]))
        return 0
    here = Path(__file__).resolve().parent
    trees = {"store": str(here.parent), "copy": str(here.parent), "copy-binary": str(here.parent)}
    if args.baseline:
        trees["baseline store"] = str(Path(args.baseline).resolve())
    if args.instructions:
        instructions(args, trees)
        return 0
    results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    print(f"# {args.processes} processes, {args.events:,} events, load average {os.getloadavg()}")
    try:
        for r in range(args.rounds):
            names = list(trees)
            names = names[r % len(names) :] + names[: r % len(names)]
            for name in names:
                env = dict(os.environ, PYTHONPATH=os.pathsep.join([trees[name], str(here)]))
                case = name.removeprefix("baseline ")
                argv2 = [sys.executable, __file__, "--case", case, "--postgres", args.postgres,
                         "--events", str(args.events), "--processes", str(args.processes)]  # fmt: skip
                out = subprocess.run(argv2, env=env, check=True, capture_output=True, text=True).stdout
                results[name].append(json.loads(out.splitlines()[-1]))
                drop_schemas(args.postgres)
            line = ", ".join(f"{n} {results[n][-1]['rate']:,.0f}" for n in trees)
            print(f"round {r + 1}: events/s {line}; load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        drop_schemas(args.postgres)
    best = [max(c["rate"], b["rate"]) for c, b in zip(results["copy"], results["copy-binary"], strict=True)]
    print(
        f"{'case':<16} {'events/s median [range]':>26} {'x COPY text':>18} {'x best COPY':>18} "
        f"{'writer us/ev':>13} {'server us/ev':>13}"
    )
    for name, rows in results.items():
        rates = [row["rate"] for row in rows]
        text = [row["rate"] / c["rate"] for row, c in zip(rows, results["copy"], strict=True)]
        top = [row["rate"] / b for row, b in zip(rows, best, strict=True)]
        print(
            f"{name:<16} {statistics.median(rates):>10,.0f} [{min(rates):,.0f}-{max(rates):,.0f}]"
            f"{statistics.median(text):>7.2f} [{min(text):.2f}-{max(text):.2f}]"
            f"{statistics.median(top):>7.2f} [{min(top):.2f}-{max(top):.2f}]"
            f"{statistics.median(r['writer_us'] for r in rows):>13.1f}"
            f"{statistics.median([u for r in rows if (u := r['server_us']) == u] or [0]):>13.1f}"
        )
    print(f"# load average at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
