"""Stores shared by processes: a reader during writes, concurrent writers, a writer killed mid-write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from otel_runjournal.stores import open_store

TESTS_DIR = str(Path(__file__).parent)


@pytest.fixture(params=["duckdb", "jsonl"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "j.duckdb") if request.param == "duckdb" else f"jsonl://{tmp_path}/j"


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": TESTS_DIR + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


WRITER = """
    import sys, time
    from store_batches import make_run
    from otel_runjournal.stores import open_store
    location, name, runs, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    pause = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    store = open_store(location)
    for i in range(runs):
        store.write([make_run(f"{name}-{i}", f"thread-{i % threads}", start=i)])
        print(f"committed {name}-{i}", flush=True)
        time.sleep(pause)
    store.close()
"""


def _finish(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def _check_threads(location: str, run_ids: list[str], threads: int) -> None:
    """Every run whole; per thread, seqs unique and each run's events contiguous and increasing."""
    with open_store(location) as store:  # type: ignore[attr-defined]
        seen: dict[str, list[int]] = {}
        for run_id in run_ids:
            events = store.list_events(run_id, limit=1000)
            assert events[0].event_type == "run_start", run_id
            assert len(events) == 8 and events[-1].event_type == "run_end", run_id
            assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + 8))
            seen.setdefault(events[0].thread_id, []).extend(e.seq for e in events)
            assert store.get_run(run_id) is not None
        assert len(seen) == threads
        for seqs in seen.values():
            assert len(seqs) == len(set(seqs))


def test_three_writer_processes_lose_nothing(location: str) -> None:
    """3 processes writing the same threads concurrently: every event present, seq unique per thread."""
    open_store(location).close()  # create the schema once
    procs = [_spawn(WRITER, location, f"w{n}", "40", "5") for n in range(3)]
    for proc in procs:
        _finish(proc)
    _check_threads(location, [f"w{n}-{i}" for n in range(3) for i in range(40)], threads=5)
    with open_store(location) as store:  # type: ignore[attr-defined]
        assert store.token_usage().run_count == 120


READER = """
    import sys, time
    from otel_runjournal.stores import open_store, StoreLockedError
    location, seconds = sys.argv[1], float(sys.argv[2])
    reads = locked = 0
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open_store(location) as store:
                seen.add(len(store.list_runs(limit=1000)))
                store.list_messages("thread-0", before_seq=10**12, limit=50)
                reads += 1
        except StoreLockedError as exc:
            locked += 1
            print("LOCKED", exc, flush=True)
    print(f"reads={reads} locked={locked} seen={sorted(seen)}", flush=True)
"""


def test_reader_process_while_writer_writes(location: str) -> None:
    """A process polling queries while another writes: reads succeed, the writer loses nothing."""
    open_store(location).close()
    writer = _spawn(WRITER, location, "w", "60", "3", "0.03")  # an exporter writing every 30 ms
    reader = _spawn(READER, location, "4")
    _finish(writer)
    out = _finish(reader)
    assert "LOCKED" not in out, out
    seen = [int(n) for n in out.split("seen=[")[1].split("]")[0].split(",")]
    assert any(0 < n < 60 for n in seen), out  # it read while the writer was writing
    _check_threads(location, [f"w-{i}" for i in range(60)], threads=3)


def test_lock_held_longer_than_timeout_raises_store_locked_error(tmp_path: Path) -> None:
    """A DuckDB file held by another process beyond the timeout: StoreLockedError saying what to do."""
    from otel_runjournal.stores import DuckDBStore, StoreLockedError

    path = tmp_path / "held.duckdb"
    DuckDBStore(path).close()
    holder = _spawn(
        """
        import sys, time, duckdb
        con = duckdb.connect(sys.argv[1])
        print("held", flush=True)
        time.sleep(30)
        """,
        str(path),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreLockedError, match="held by another process"):
            DuckDBStore(path, timeout=0.3)
    finally:
        holder.kill()
        holder.wait()
    DuckDBStore(path, timeout=5).close()  # usable again once released


KILLED_WRITER = """
    import sys, time
    from store_batches import make_run
    from otel_runjournal.stores import open_store
    location = sys.argv[1]
    store = open_store(location)

    def batch(i):
        return [make_run(f"k-{i}-{j}", f"thread-{j % 4}", content="z" * 2000) for j in range(50)]

    for i in range(5):
        store.write(batch(i))
        print(f"committed {i}", flush=True)
    # a barrier inside the next write: after part of the batch is in (DuckDB: its events and thread
    # counters inserted in the open transaction; JSONL: the intent logged and one file appended), say so
    # and wait for the SIGKILL
    if location.startswith("jsonl"):
        import otel_runjournal.stores.jsonl.store as module
        name, stop_at = "_write_all", 3  # 1: the intent in the commit log, 2: the first file, 3: the next
    else:
        import otel_runjournal.stores.duckdb.insert as module
        name, stop_at = "runs", 1  # after events and thread_seq, before runs, spans and COMMIT
    original, calls = getattr(module, name), []

    def inside_the_write(*args, **kwargs):
        calls.append(1)
        if len(calls) == stop_at:
            print("inside write", flush=True)
            time.sleep(600)
        return original(*args, **kwargs)

    setattr(module, name, inside_the_write)
    store.write(batch(5))
    print("the write finished: the barrier was never reached", flush=True)
"""


def _unfinished_intent(location: str) -> dict[str, Any]:
    """The JSONL commit log's last record: the killed batch's intent (file sizes before it), no ``ok``."""
    log = Path(location.removeprefix("jsonl://")) / "commits.jsonl"
    last = json.loads(log.read_bytes().splitlines()[-1])
    assert "files" in last and len(last["files"]) > 2, last  # the kill came after the intent was logged
    sizes = {f: (log.parent / f).stat().st_size for f in last["files"]}
    assert sizes != last["files"], "nothing of the batch was appended yet: not inside the write"
    return last  # type: ignore[no-any-return]


def test_writer_killed_mid_write_leaves_only_whole_runs(location: str) -> None:
    """SIGKILL inside a write (a barrier in the child's write path), then reopen: every committed batch
    is whole, the interrupted one is all out, and the next write continues the threads' seqs."""
    open_store(location).close()
    proc = _spawn(KILLED_WRITER, location)
    assert proc.stdout is not None
    lines = [proc.stdout.readline().strip() for _ in range(6)]
    try:
        assert lines == [*(f"committed {i}" for i in range(5)), "inside write"], lines
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    intent = _unfinished_intent(location) if location.startswith("jsonl") else None
    with open_store(location) as store:  # type: ignore[attr-defined]
        if intent is not None:  # opening rolled the interrupted batch back: every file as before it
            directory = Path(location.removeprefix("jsonl://"))
            assert {f: (directory / f).stat().st_size for f in intent["files"]} == intent["files"]
        runs = store.list_runs(limit=1000)
        ids = {r.run_id for r in runs}
        assert ids == {f"k-{i}-{j}" for i in range(5) for j in range(50)}  # batch 5: nothing of it
        assert all(store.list_events(f"k-5-{j}") == [] for j in range(50))
        for run in runs:
            events = store.list_events(run.run_id)
            assert (
                len(events) == 8
                and events[0].event_type == "run_start"
                and events[-1].event_type == "run_end"
            )
        last_seq = max(e.seq for r in runs for e in store.list_events(r.run_id) if e.thread_id == "thread-0")
        after = __import__("store_batches").make_run("after", "thread-0")
        store.write([after])
        assert after.events[0].seq > last_seq
        assert len(store.list_events("after")) == 8


HOLDER = """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1])  # another process holding the file, as DuckDB allows one
    print("held", flush=True)
    sys.stdin.readline()  # until the test says so
    con.close()
    print("released", flush=True)
    sys.stdin.readline()
"""


def _hold(path: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def _release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"


def test_exporter_keeps_and_retries_a_batch_while_another_process_holds_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The file held by another process past the store's timeout: export() returns FAILURE (never
    raises), keeps the batch, and writes it with the next export once the file is free."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult
    from spanfactory import SpanFactory, handler_run

    from otel_runjournal.journal.exporter import RunJournalExporter
    from otel_runjournal.stores import DuckDBStore

    path = tmp_path / "turns.duckdb"
    store = DuckDBStore(path, timeout=0.3, linger=0)  # lets go after every operation
    exporter = RunJournalExporter(store)
    provider = TracerProvider()
    f = SpanFactory(provider)
    first, second = handler_run(f, "run-a"), handler_run(f, "run-b", t=200)
    holder = _hold(path)
    try:
        assert exporter.export(first) is SpanExportResult.FAILURE
        assert "StoreLockedError" in caplog.text
        stats = exporter.stats
        assert (stats.retry_spans, stats.failed_writes, stats.written_runs) == (len(first), 1, 0)
        _release(holder)
        assert exporter.export(second) is SpanExportResult.SUCCESS  # the kept batch first, then this
    finally:
        holder.kill()
        holder.wait()
    stats = exporter.stats
    assert (stats.retry_spans, stats.written_runs, stats.dropped_spans) == (0, 2, 0)
    assert sorted(r.run_id for r in store.list_runs(limit=10)) == ["run-a", "run-b"]
    exporter.shutdown()
    provider.shutdown()
    store.close()


BUSY_WRITER = """
    import sys, time
    from store_batches import make_run
    from otel_runjournal.stores import DuckDBStore
    store = DuckDBStore(sys.argv[1])  # the default linger: never idle that long while busy
    deadline, i = time.monotonic() + float(sys.argv[2]), 0
    while time.monotonic() < deadline:
        store.write([make_run(f"busy-{i}", "t")])
        if i == 0:
            print("writing", flush=True)
        i += 1
        time.sleep(0.02)
    store.close()
    print(i, flush=True)
"""


def test_a_busy_writer_lets_go_of_the_file_within_max_hold(tmp_path: Path) -> None:
    """A process writing every 20 ms (never idle for the linger) still lets go of the DuckDB file at
    least every MAX_HOLD seconds: another process opens it within a timeout of a few MAX_HOLDs."""
    from otel_runjournal.stores import DuckDBStore
    from otel_runjournal.stores.duckdb.store import DEFAULT_LINGER, MAX_HOLD

    assert DEFAULT_LINGER > 0.02 * 5  # the writer is never idle long enough to let go by the linger
    path = tmp_path / "busy.duckdb"
    DuckDBStore(path).close()
    writer = _spawn(BUSY_WRITER, str(path), str(6 * MAX_HOLD))
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    seen = []
    for _ in range(3):
        with DuckDBStore(path, read_only=True, timeout=3 * MAX_HOLD) as reader:  # raises if never let go
            seen.append(reader.token_usage().run_count)
    written = int(_finish(writer))
    assert seen[0] > 0 and seen == sorted(seen) and seen[-1] < written  # read while the writer wrote
    with DuckDBStore(path, read_only=True) as reader:
        assert reader.token_usage().run_count == written


def test_configure_waits_its_turn_for_a_file_another_process_holds(tmp_path: Path) -> None:
    """configure() on a DuckDB file another process holds waits for it; once let go, runs are
    journaled. Held past the store's timeout, configure() raises StoreLockedError saying what to do."""
    import threading

    from otel_runjournal.demo.agent import build_agent
    from otel_runjournal.stores import DuckDBStore, StoreLockedError
    from otel_runjournal.stores.duckdb.store import DEFAULT_TIMEOUT
    from otel_runjournal.wiring import configure

    path = tmp_path / "held.duckdb"
    DuckDBStore(path).close()
    holder = _hold(path)
    try:
        with pytest.raises(StoreLockedError, match="held by another process"):
            configure(str(path), set_global=False)  # waits DEFAULT_TIMEOUT, then says so
        outcome: list[Any] = []
        waiting = threading.Thread(target=lambda: outcome.append(configure(str(path), set_global=False)))
        waiting.start()
        waiting.join(DEFAULT_TIMEOUT / 4)
        assert outcome == []  # still waiting for its turn
        _release(holder)
        waiting.join(DEFAULT_TIMEOUT)
    finally:
        holder.kill()
        holder.wait()
    [wired] = outcome
    build_agent().invoke({"messages": [("user", "hi")]}, {"callbacks": [wired.handler]})
    wired.shutdown()
    with DuckDBStore(path, read_only=True) as store:
        assert [r.status for r in store.list_runs(limit=10)] == ["success"]
