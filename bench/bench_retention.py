"""Retention and export benchmark: prune and Parquet export of a journal of N events (default 1M).

    python bench/bench_retention.py                      # DuckDB, 1M events (~1-2 min on 2 cores)
    python bench/bench_retention.py --stores duckdb,jsonl,postgres --events 1000000
    python bench/bench_retention.py --quick              # 50k events, every store available (smoke)

Per store: the journal is written through the store's own write path in exporter-shaped batches
(``bench_stores.make_batches``: runs of 25 events and 10 spans, one second apart); then

- **export**: ``stores.export.export`` of every day to Parquet — time, and the Parquet bytes next to
  the journal's bytes on disk (DuckDB: the file; JSONL: the directory; PostgreSQL: the three tables
  with indexes and TOAST);
- **prune** of the older half of the runs (``RunStore.prune``) — time, journal bytes before and
  after; for DuckDB also ``compact()`` (copy and swap) — time and bytes after.

PostgreSQL needs a server (``--postgres URL``, default the tests' ``OTEL_RUNJOURNAL_TEST_POSTGRES``);
each run writes into a fresh schema, dropped at the end. Times are wall-clock on whatever else the
machine runs: compare rows of one run, not runs of different days.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench_postgres import drop_schemas, schema_url
from bench_stores import EVENTS_PER_RUN, T0, make_batches

from otel_runjournal.stores import DuckDBStore, JsonlStore, RunStore
from otel_runjournal.stores.export import export
from otel_runjournal.stores.jsonl.prune import directory_size


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:,.1f} MB"


def _size(kind: str, store: RunStore, where: str) -> int:
    if kind == "duckdb":
        return sum(os.path.getsize(p) for p in (where, where + ".wal") if os.path.exists(p))
    if kind == "jsonl":
        return directory_size(where)
    from otel_runjournal.stores.postgres.prune import TABLES

    return int(store.sql("SELECT " + " + ".join(f"pg_total_relation_size('{t}')" for t in TABLES))[0][0])  # type: ignore[attr-defined]


def _open(kind: str, where: str) -> RunStore:
    if kind == "duckdb":
        return DuckDBStore(where)
    if kind == "jsonl":
        return JsonlStore(where)
    from otel_runjournal.stores.postgres.store import PostgresStore

    return PostgresStore(where)


def bench_store(kind: str, where: str, events: int, scratch: Path) -> list[str]:
    batches = make_batches(events, kind)
    runs = sum(len(b) for b in batches)
    store = _open(kind, where)
    t = time.perf_counter()
    for batch in batches:
        store.write(batch)
    write_s = time.perf_counter() - t
    store.close()
    del batches
    store = _open(kind, where)
    size = _size(kind, store, where)
    lines = [f"{kind}: wrote {events:,} events / {runs:,} runs in {write_s:.1f} s; journal {_mb(size)}"]

    out = scratch / f"export-{kind}"
    t = time.perf_counter()
    days = export(store, str(out))
    export_s = time.perf_counter() - t
    parquet = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    exported = sum(d.rows["run_events"] for d in days)
    lines.append(
        f"  export: {exported:,} events in {len(days)} day folder(s) in {export_s:.1f} s "
        f"({exported / export_s:,.0f} events/s); Parquet {_mb(parquet)} = {parquet / size:.0%} of the journal"
    )

    cut = T0 + timedelta(seconds=runs // 2)  # make_batches starts a run every second
    dry = store.prune(older_than=cut, dry_run=True)
    t = time.perf_counter()
    result = store.prune(older_than=cut)
    prune_s = time.perf_counter() - t
    assert (result.runs, result.events) == (dry.runs, dry.events) == (runs // 2, runs // 2 * EVENTS_PER_RUN)
    deleted = f"{result.runs:,} runs / {result.events:,} events / {result.spans:,} spans"
    lines.append(
        f"  prune: {deleted} in {prune_s:.1f} s ({result.events / prune_s:,.0f} events/s); "
        f"journal {_mb(result.size_before)} → {_mb(result.size_after)}"
        + (f"; rows {_mb(result.bytes)}" if result.bytes is not None else "")
    )
    if isinstance(store, DuckDBStore):
        t = time.perf_counter()
        before, after = store.compact()
        lines.append(f"  compact: {_mb(before)} → {_mb(after)} in {time.perf_counter() - t:.1f} s")
    store.close()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--stores", default="duckdb")
    parser.add_argument("--postgres", default=os.environ.get("OTEL_RUNJOURNAL_TEST_POSTGRES"))
    parser.add_argument("--quick", action="store_true", help="50k events on every store available")
    args = parser.parse_args(argv)
    kinds = args.stores.split(",")
    if args.quick:
        args.events = 50_000
        kinds = ["duckdb", "jsonl"] + (["postgres"] if args.postgres else [])
    scratch = Path(tempfile.mkdtemp(prefix="rj-bench-retention-"))
    try:
        for kind in kinds:
            if kind == "postgres":
                if not args.postgres:
                    print("postgres: skipped (give --postgres URL)")
                    continue
                where = schema_url(args.postgres)
            else:
                where = str(scratch / ("j.duckdb" if kind == "duckdb" else "j"))
            try:
                for line in bench_store(kind, where, args.events, scratch):
                    print(line, flush=True)
            finally:
                if kind == "postgres":
                    drop_schemas(args.postgres)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
