"""What letting go of the DuckDB file after every batch costs the writer, in CPU per batch.

    python bench/duckdb_release.py [--batches 30] [--rounds 2] [--into BIG.duckdb]

The store closes its connection ``linger`` (1 s) after the last operation and a busy writer every
``MAX_HOLD`` (2 s), so other processes get their turn; closing checkpoints, and the next write
reopens the file. An exporter whose batches come less often than that (the SDK's schedule delay is
5 s) pays a release per batch; the instruction counts of ``bench/README.md`` hold the file
(``linger=inf``) and do not see it. This writes the same batches (the exporter's 2,048 spans of the
offline agent, every batch with fresh run, thread and span ids) three ways, alternating:

- ``hold``: one connection for all of them, one checkpoint at the end (counted);
- ``release``: a release (checkpoint + close) after every batch, as at low rates;
- ``no-checkpoint``: the same without the checkpoint (``PRAGMA disable_checkpoint_on_shutdown``):
  the WAL grows and every open replays it.

``--into`` starts from a copy of an existing journal (e.g. ``bench_stores.py``'s 10M-event file).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

MODES = ("hold", "release", "no-checkpoint")


def _batches(count: int) -> list[list[Any]]:
    import bench_serve

    from otel_runjournal.journal.assembler import Assembler
    from otel_runjournal.serve.otlp_spans import spans_of
    from otel_runjournal.serve.writer import read_body

    bodies = bench_serve.build_requests(2048 * min(count, 4), 512, True, seed=7)
    spans = [s for b in bodies for s in spans_of(read_body(b)).spans]  # type: ignore[arg-type]
    assembler = Assembler(max_pending_spans=100_000)
    writes = [assembler.add(spans[i : i + 2048]) for i in range(0, len(spans), 2048)]
    out = []
    for n in range(count):
        batch = []
        for w in writes[n % len(writes)]:
            rid = f"{w.run.run_id}-{n}"
            batch.append(
                dataclasses.replace(
                    w,
                    run=dataclasses.replace(w.run, run_id=rid, thread_id=rid),
                    events=[dataclasses.replace(e, run_id=rid, thread_id=rid) for e in w.events],
                    spans=[
                        dataclasses.replace(s, run_id=rid, span_id=f"{n:04x}{s.span_id[4:]}") for s in w.spans
                    ],
                )
            )
        out.append(batch)
    return out


def once(mode: str, batches: list[list[Any]], into: Path | None) -> tuple[float, float]:
    """(CPU ms per batch, file MB) of writing ``batches`` after a first one, the close included."""
    from otel_runjournal.stores.duckdb import store as duckdb_store

    duckdb_store.MAX_HOLD = math.inf
    directory = tempfile.mkdtemp(prefix="bench-release-")
    path = os.path.join(directory, "journal.duckdb")
    if into is not None:
        shutil.copy(into, path)
    store = duckdb_store.DuckDBStore(path, linger=math.inf)
    if mode == "no-checkpoint":
        connect = store._connect

        def _connect() -> Any:
            con = connect()
            con.execute("PRAGMA disable_checkpoint_on_shutdown")
            return con

        store._connect = _connect  # type: ignore[method-assign]
    try:
        store.write(batches[0])
        store._release_now()
        cpu = time.process_time()
        for batch in batches[1:]:
            store.write(batch)
            if mode != "hold":
                store._release_now()
        store._release_now()  # hold: its one checkpoint
        cpu = time.process_time() - cpu
        wal = path + ".wal"
        size = os.path.getsize(path) + (os.path.getsize(wal) if os.path.exists(wal) else 0)
    finally:
        store.close()
        shutil.rmtree(directory, ignore_errors=True)
    return cpu / (len(batches) - 1) * 1e3, size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--into", type=Path, default=None)
    args = parser.parse_args()
    batches = _batches(args.batches + 1)
    results: dict[str, list[float]] = {m: [] for m in MODES}
    sizes: dict[str, float] = {}
    for r in range(args.rounds):
        for mode in MODES if r % 2 == 0 else reversed(MODES):
            ms, sizes[mode] = once(mode, batches, args.into)
            results[mode].append(ms)
            print(f"round {r + 1} {mode:14s} {ms:7.1f} ms CPU per batch", flush=True)
    hold = statistics.median(results["hold"])
    print(f"### {args.batches} batches of 2,048 spans, medians of {args.rounds} rounds")
    for mode in MODES:
        ms = statistics.median(results[mode])
        print(f"{mode:14s} {ms:7.1f} ms CPU per batch  {ms / hold:5.2f}x hold  file {sizes[mode]:6.1f} MB")


if __name__ == "__main__":
    main()
