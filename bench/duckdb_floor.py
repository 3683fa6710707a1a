"""The DuckDB store's write against a bare insert of the same rows: what DuckDB itself costs.

    python bench/duckdb_floor.py                    # json path (default install) and arrow, ~6 min of CPU
    python bench/duckdb_floor.py --paths json --baseline /work/base-e4e8546

Target 2 of issue 23 asks for twice today's events per second at the exporter's batch size. This says
how much of a batch no change in our code can remove: the same exporter batches (2,048 spans of the
bench agent, ``bench/bench_exporter.py``'s ``agent`` workload mapped by the real ``Assembler``) are
written into a fresh file two ways, each counted by callgrind as ``(I(3 batches) - I(1 batch)) / 2``
after the same first batch (start-up, imports, the schema and the batches' making cancel; the close's
checkpoint is counted by its share, as in the other DuckDB counts of ``bench/README.md``):

- ``store``: ``DuckDBStore.write(batch)`` (``linger=inf``: one connection, one checkpoint at the end);
- ``bare``: the store's own statements over inputs made before counting starts — the very batch
  documents (json path: the files ``read_json`` reads; arrow path: the pyarrow tables) with the seqs
  already numbered — inside ``BEGIN`` … ``COMMIT``, then the same close. No look-up of stored runs, no
  ``thread_seq`` bookkeeping, no Python reading records: the analogue of ``bench_postgres.py``'s bare
  ``COPY``, i.e. what DuckDB spends to parse, insert, index, log and checkpoint these rows.

``--baseline TREE`` counts the ``store`` way with another tree's package in the same run.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_TOTALS = re.compile(rb"^(?:totals|summary):\s*(\d+)", re.MULTILINE)
INVOKES = 744  # four batches of the journal processor's 2,048 spans (11 spans per invoke)


def _batches(invokes: int = INVOKES) -> list[list[Any]]:
    sys.path.insert(0, str(HERE))
    import bench_exporter as be

    from otel_runjournal.journal.assembler import Assembler

    spans = be.agent_spans(invokes)
    be._hand_over("otel_runjournal", be._contents(spans))  # content as the journal takes it
    assembler = Assembler(max_pending_spans=100_000)
    batches = [assembler.add(spans[i : i + 2048]) for i in range(0, len(spans), 2048)]
    return [b for b in batches if b][:4]


def _has_arrow() -> bool:
    from otel_runjournal.stores.duckdb import insert

    return insert.pa is not None


def _bare_inputs(batch: list[Any], path: str, directory: Path, n: int) -> list[tuple[str, Any]]:
    """The statements of ``batch`` as the store runs them, over inputs made now (files or tables)."""
    from otel_runjournal.stores.duckdb import insert

    events = [e for w in batch for e in w.events]
    seqs: list[int] = []
    counters: dict[str, int] = {}
    for event in events:  # every batch's threads are new: each numbers from 1
        counters[event.thread_id] = seq = counters.get(event.thread_id, 0) + 1
        seqs.append(seq)
    spans = [s for w in batch for s in w.spans]
    runs = [w.run for w in batch]
    out: list[tuple[str, Any]] = []
    if path == "arrow":
        for table, rows, overrides in ((insert.EVENTS, events, {"seq": seqs}), (insert.SPANS, spans, {}),
                                       (insert.RUNS, runs, {})):  # fmt: skip
            sql = table.insert_sql("arrow").format(source="batch_table")
            out.append((sql, insert.arrow_table(table, rows, overrides)))
        return out
    for table, rows, overrides in ((insert.EVENTS, events, {"seq": seqs}), (insert.SPANS, spans, {})):
        payload, indexed = insert.json_payload(table, rows, overrides)
        data = insert._dumpb(payload)
        file = directory / f"{table.name}-{n}.json"
        file.write_bytes(data)
        source = table.source("json", insert._limit(data), tuple(indexed))
        out.append((table.insert_sql("json").format(source=source).replace(insert._FILE, f"'{file}'"), None))
    data = b"\n".join(map(insert._run_line, runs))
    file = directory / f"runs-{n}.json"
    file.write_bytes(data)
    sql = insert._runs_rows_sql(insert._limit(data)).replace(insert._FILE, f"'{file}'")
    out.append((sql, None))
    return out


def write(how: str, path: str, batches: list[list[Any]], file: str, tmp: Path, k: int) -> None:
    """Write the first ``k`` of ``batches`` into ``file`` the ``how`` way (``store`` or ``bare``; the
    bare inputs are made for all of them, so that work is the same whatever ``k``)."""
    import math

    from otel_runjournal.stores.duckdb import store as duckdb_store

    store = duckdb_store.DuckDBStore(file, linger=math.inf, arrow=path == "arrow")
    if how == "store":
        for batch in batches[:k]:
            store.write(batch)
        store.close()
        return
    store.close()  # the schema, made by the store; the bare writer reopens the file
    import duckdb

    inputs = [_bare_inputs(b, path, tmp, n) for n, b in enumerate(batches)]
    con = duckdb.connect(file)
    for statements in inputs[:k]:
        con.execute("BEGIN")
        for sql, batch_table in statements:  # noqa: B007 - DuckDB finds ``batch_table`` by name
            con.execute(sql)
        con.execute("COMMIT")
    con.close()


def child(how: str, path: str, batches_written: int, pickled: str) -> None:
    """Load the batches, then write the first and ``batches_written`` more."""
    import math

    from otel_runjournal.stores.duckdb import store as duckdb_store

    duckdb_store.MAX_HOLD = math.inf  # no wall-clock release inside the count (this process only)
    with open(pickled, "rb") as f:
        batches = pickle.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        write(how, path, batches, os.path.join(tmp, "journal.duckdb"), Path(tmp), batches_written + 1)


def verify(path: str, batches: list[list[Any]]) -> None:
    """Both ways into two files: every row of the three tables the same (``thread_seq`` aside)."""
    import duckdb

    with tempfile.TemporaryDirectory() as tmp:
        files = {how: os.path.join(tmp, f"{how}.duckdb") for how in ("store", "bare")}
        for how, file in files.items():
            write(how, path, batches, file, Path(tmp), len(batches))
        rows = {}
        for how, file in files.items():
            con = duckdb.connect(file, read_only=True)
            rows[how] = [
                con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
                for table in ("run_events", "spans", "runs")
            ]
            con.close()
        assert rows["store"] == rows["bare"], f"{path}: the bare insert wrote other rows than the store"
        print(f"{path}: same rows both ways ({', '.join(str(len(t)) for t in rows['store'])} "
              "events, spans, runs)")  # fmt: skip


def count(how: str, path: str, k: int, tree: str | None, pickled: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        env = dict(os.environ, PYTHONHASHSEED="0")
        if tree:
            env["PYTHONPATH"] = os.pathsep.join([tree, env.get("PYTHONPATH", "")])
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-line=no",
               "--dump-instr=no", sys.executable, __file__, "--child", how, path, str(k),
               pickled]  # fmt: skip
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        found = _TOTALS.search(out.read_bytes())
        assert found, "no totals in the callgrind output"
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--paths", default="json,arrow", help="json, arrow or both (default)")
    parser.add_argument("--baseline", help="another tree whose store is counted the same way")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if args.child:
        how, path, k, pickled = args.child
        child(how, path, int(k), pickled)
        return
    batches = _batches()
    for path in args.paths.split(","):
        verify(path, batches)
    pickled = tempfile.NamedTemporaryFile(suffix=".pickle", delete=False)  # noqa: SIM115
    with pickled:
        pickle.dump(batches, pickled)
    paths = args.paths.split(",")
    if "arrow" in paths and not _has_arrow():
        parser.error("the arrow path needs pyarrow (the fast extra); use --paths json")
    cases = [(how, path, None) for path in paths for how in ("store", "bare")]
    if args.baseline:
        cases += [("store", path, args.baseline) for path in args.paths.split(",")]
    jobs = [(how, path, tree, k) for how, path, tree in cases for k in (1, 3)]
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            counted = pool.map(lambda j: count(j[0], j[1], j[3], j[2], pickled.name), jobs)
            counts = dict(zip(jobs, counted, strict=True))
    finally:
        os.unlink(pickled.name)
    print("M instructions per 2,048-span exporter batch ((I(3) - I(1)) / 2, callgrind)")
    for path in args.paths.split(","):
        per = {}
        for how, p, tree in cases:
            if p != path:
                continue
            per[(how, tree)] = (counts[(how, p, tree, 3)] - counts[(how, p, tree, 1)]) / 2 / 1e6
        bare = per[("bare", None)]
        for (how, tree), value in per.items():
            label = how if tree is None else f"store ({tree})"
            print(f"{path:6} {label:40} {value:8.1f} M   {value / bare:5.2f}x bare")


if __name__ == "__main__":
    main()
