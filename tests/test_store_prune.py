"""Pruning while a writer process writes (every store), and compacting a DuckDB journal."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pg_server import Schema
from store_batches import T0, make_run

from otel_runjournal.stores import DuckDBStore, open_store

TESTS_DIR = str(Path(__file__).parent)
T = TypeVar("T")
OLD_RUNS = 1200  # more than two prune chunks (stores/retention.py PRUNE_CHUNK = 500)
THREADS = 4


@pytest.fixture(params=["duckdb", "jsonl", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        schema = Schema()
        yield schema.url
        schema.drop()
    elif request.param == "duckdb":
        yield str(tmp_path / "j.duckdb")
    else:
        yield f"jsonl://{tmp_path}/j"


WRITER = """
    import os, sys
    from store_batches import make_run
    from otel_runjournal.stores import open_store
    location, stop, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_store(location)
    i = 0
    while not os.path.exists(stop) or i < 5:
        store.write([make_run(f"new-{i}", f"thread-{i % threads}", start=100_000 + i)])
        print(i, flush=True)
        i += 1
    store.close()
"""


def run_writer_during(location: str, tmp_path: Path, action: Callable[[], T]) -> tuple[T, int]:
    """Start a writer process (:data:`WRITER`), do ``action`` once it has committed its first run, stop
    it; ``action``'s result and how many runs the writer wrote."""
    stop = tmp_path / "stop"
    env = {**os.environ, "PYTHONPATH": TESTS_DIR + os.pathsep + os.environ.get("PYTHONPATH", "")}
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), location, str(stop), str(THREADS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert writer.stdout is not None
        writer.stdout.readline()  # the writer has committed its first run
        result = action()
        stop.touch()
        # read through the same buffered file as readline() above: communicate() reads the raw pipe
        # and would miss lines readline() already buffered
        out = writer.stdout.read()
        err = writer.stderr.read() if writer.stderr is not None else ""
        writer.wait(timeout=120)
    finally:
        stop.touch()
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, err
    return result, 1 + len(out.split())


def written_runs(store: Any, written: int) -> list[Any]:
    """Every run the writer reported, fetched one by one (under load it writes more than one page of
    ``list_runs``); none missing, none extra."""
    assert store.count_runs() == written
    runs = [store.get_run(f"new-{i}") for i in range(written)]
    assert all(run is not None for run in runs)
    return runs


def test_prune_while_a_writer_process_writes_loses_nothing(location: str, tmp_path: Path) -> None:
    """A writer process writes new runs before, during and after a prune: each is whole, seq unique."""
    old = [make_run(f"old-{i}", f"thread-{i % THREADS}", start=i) for i in range(OLD_RUNS)]
    with open_store(location) as store:  # type: ignore[attr-defined]
        store.write(old)
    last_old = {f"thread-{t}": max(e.seq for u in old for e in u.events if e.thread_id == f"thread-{t}")
                for t in range(THREADS)}  # fmt: skip

    def prune() -> Any:
        with open_store(location) as store:  # type: ignore[attr-defined]
            return store.prune(older_than=T0 + timedelta(minutes=OLD_RUNS))

    result, written = run_writer_during(location, tmp_path, prune)
    events_per_run, spans_per_run = len(old[0].events), len(old[0].spans)
    assert (result.runs, result.events, result.spans) == (
        OLD_RUNS,
        OLD_RUNS * events_per_run,
        OLD_RUNS * spans_per_run,
    )
    with open_store(location, read_only=True) as store:  # type: ignore[attr-defined]
        seqs: dict[str, list[int]] = {}
        for run in written_runs(store, written):
            events = store.list_events(run.run_id, limit=1000)
            assert [e.event_type for e in events][:: len(events) - 1] == ["run_start", "run_end"]
            assert len(events) == events_per_run and len(store.list_spans(run.run_id)) == spans_per_run
            seqs.setdefault(run.thread_id, []).extend(e.seq for e in events)
    for thread, values in seqs.items():
        assert len(values) == len(set(values)) and min(values) > last_old[thread]


def test_compact_shrinks_a_pruned_duckdb_file_and_keeps_the_journal(tmp_path: Path) -> None:
    """compact() rewrites a pruned DuckDB file to under half its size: same journal, seq goes on."""
    path = tmp_path / "j.duckdb"
    # incompressible content, so the sizes show the rows and not DuckDB's per-table minimum
    units = [make_run(f"r{i}", f"t{i % 3}", start=i, content=os.urandom(10_000).hex()) for i in range(300)]
    with DuckDBStore(path) as store:
        for start in range(0, len(units), 100):
            store.write(units[start : start + 100])
        result = store.prune(older_than=T0 + timedelta(minutes=250))
        assert result.runs == 250 and result.size_before is not None and result.size_after is not None
        kept = {r.run_id: (r, store.list_events(r.run_id, limit=1000)) for r in store.list_runs(limit=1000)}
        before, after = store.compact()
        assert before == result.size_after and after < before / 2
        assert {
            r.run_id: (r, store.list_events(r.run_id, limit=1000)) for r in store.list_runs(limit=1000)
        } == kept
        assert store.sql("SELECT count(*) FROM messages")[0][0] == sum(
            1 for u in units[250:] for e in u.events if e.category == "message"
        )
        more = make_run("more", "t0", start=2000)
        store.write([more])
        assert more.events[0].seq == max(e.seq for u in units for e in u.events if e.thread_id == "t0") + 1
    assert os.listdir(tmp_path) == ["j.duckdb"]


def test_a_jsonl_reader_open_across_a_prune_reads_the_new_files(tmp_path: Path) -> None:
    """A JSONL store opened before a prune (read-only or not) lists exactly the runs left after it,
    also when later writes made runs.jsonl longer again than it was before the prune."""
    from otel_runjournal.stores import JsonlStore

    directory = tmp_path / "j"
    writer = JsonlStore(directory)
    writer.write([make_run(f"old{i}", "t", start=i) for i in range(5)] + [make_run("keep", "t", start=100)])
    readers = [JsonlStore(directory, read_only=True), JsonlStore(directory)]
    for reader in readers:
        assert len(reader.list_runs()) == 6
    assert writer.prune(older_than=T0 + timedelta(minutes=50)).runs == 5
    later = [make_run(f"new{i}", "t", start=200 + i) for i in range(8)]
    writer.write(later)
    expected = sorted(["keep", *(u.run.run_id for u in later)])
    for reader in readers:
        assert sorted(r.run_id for r in reader.list_runs()) == expected
        assert reader.get_run("old0") is None
        reader.close()
    writer.close()


def test_compact_while_a_writer_process_writes_loses_nothing(tmp_path: Path) -> None:
    """A writer process writes runs before, during and after compact(): all of them are in the new file."""
    path = str(tmp_path / "j.duckdb")
    with DuckDBStore(path) as store:
        store.write([make_run(f"old-{i}", f"thread-{i % THREADS}", start=i) for i in range(600)])
        store.prune(older_than=T0 + timedelta(minutes=600))

    def compact() -> None:
        with DuckDBStore(path) as store:
            store.compact()

    _, written = run_writer_during(path, tmp_path, compact)
    with DuckDBStore(path, read_only=True) as store:
        assert all(len(store.list_events(r.run_id)) == 8 for r in written_runs(store, written))
    assert os.listdir(tmp_path) == ["stop", "j.duckdb"] or sorted(os.listdir(tmp_path)) == [
        "j.duckdb",
        "stop",
    ]
