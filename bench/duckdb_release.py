"""What letting go of the DuckDB file after every batch costs the writer, in CPU per batch.

    python bench/duckdb_release.py [--batches 30] [--rounds 2] [--into BIG.duckdb] [--baseline TREE]
                                   [--modes hold,release] [--no-arrow]

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
``--baseline TREE`` measures another copy of the code (e.g. a ``git archive`` of an older commit) in
the same run: every round runs it and this tree in child processes, alternating, on the same batches.
``--tree TREE`` imports ``otel_runjournal`` from ``TREE`` (what ``--baseline`` runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
if "--tree" in sys.argv:  # before anything imports otel_runjournal
    sys.path.insert(0, str(Path(sys.argv[sys.argv.index("--tree") + 1]).resolve()))

MODES = ("hold", "release", "no-checkpoint")
ARROW = "--no-arrow" not in sys.argv
"""The insert path: pyarrow when installed, unless ``--no-arrow`` (the default install's json path)."""


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
    store = duckdb_store.DuckDBStore(path, linger=math.inf, arrow=None if ARROW else False)
    connect = store._connect

    def _connect() -> Any:
        con = connect()
        # a global setting: a writer instance that lives as long as the process keeps it between modes
        con.execute(f"PRAGMA {'disable' if mode == 'no-checkpoint' else 'enable'}_checkpoint_on_shutdown")
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


def _child(
    tree: Path | None, args: argparse.Namespace, batches_file: str, modes: list[str]
) -> dict[str, Any]:
    """One round of ``modes`` in a child process importing ``otel_runjournal`` from ``tree`` (None:
    this checkout)."""
    command = [sys.executable, __file__, "--child", batches_file, "--modes", ",".join(modes)]
    if tree is not None:
        command += ["--tree", str(tree)]
    if args.into is not None:
        command += ["--into", str(args.into)]
    if args.no_arrow:
        command.append("--no-arrow")
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--into", type=Path, default=None)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated, of " + ", ".join(MODES))
    parser.add_argument("--no-arrow", action="store_true", help="the json insert path even with pyarrow")
    parser.add_argument("--baseline", type=Path, default=None, help="another tree, measured alternating")
    parser.add_argument("--tree", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if args.child is not None:  # one round on pickled batches, a JSON line for the parent
        with open(args.child, "rb") as f:
            batches = pickle.load(f)
        print(json.dumps({m: once(m, batches, args.into) for m in modes}))
        return
    batches = _batches(args.batches + 1)
    trees: list[Path | None] = [None] if args.baseline is None else [args.baseline, None]
    results: dict[tuple[str, str], list[float]] = {}
    sizes: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-release-") as directory:
        batches_file = os.path.join(directory, "batches.pickle")
        with open(batches_file, "wb") as f:
            pickle.dump(batches, f)
        for r in range(args.rounds):
            order = modes if r % 2 == 0 else modes[::-1]
            for tree in trees if r % 2 == 0 else trees[::-1]:
                label = "this tree" if tree is None else f"baseline {tree}"
                if tree is None and args.baseline is None:
                    got = {m: once(m, batches, args.into) for m in order}
                else:
                    got = _child(tree, args, batches_file, order)
                for mode in order:
                    ms, size = got[mode]
                    results.setdefault((label, mode), []).append(ms)
                    sizes[label, mode] = size
                    print(f"round {r + 1} {label:30s} {mode:14s} {ms:7.1f} ms CPU per batch", flush=True)
    print(f"### {args.batches} batches of 2,048 spans, medians of {args.rounds} rounds")
    for label in dict.fromkeys(label for label, _ in results):
        hold = statistics.median(results[label, "hold"]) if (label, "hold") in results else math.nan
        print(f"# {label}")
        for mode in modes:
            ms, size = statistics.median(results[label, mode]), sizes[label, mode]
            print(f"{mode:14s} {ms:7.1f} ms CPU per batch  {ms / hold:5.2f}x hold  file {size:6.1f} MB")


if __name__ == "__main__":
    main()
