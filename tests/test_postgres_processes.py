"""PostgresStore under many writers: processes sharing threads, a killed writer, a restarted server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import Schema
from store_batches import make_run

pytest.importorskip("psycopg", reason="the PostgreSQL store needs the postgres extra")

from otel_runjournal.stores import StoreError
from otel_runjournal.stores.postgres.store import PostgresStore

TESTS_DIR = str(Path(__file__).parent)
SERVER_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "postgres_server.sh"
EVENTS_PER_RUN = 8  # make_run's default shape


def _child(code: str, **env: str) -> subprocess.Popen[str]:
    path = TESTS_DIR + os.pathsep + os.environ.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "PYTHONPATH": path, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check_journal(store: PostgresStore) -> dict[str, int]:
    """Every run whole and in order, every thread's seqs unique and gap-free; returns events per run."""
    rows = store.sql("SELECT thread_id, run_id, seq, event_type FROM run_events ORDER BY thread_id, seq")
    by_thread: dict[str, list[int]] = defaultdict(list)
    by_run: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for thread, run, seq, event_type in rows:
        by_thread[thread].append(seq)
        by_run[run].append((seq, event_type))
    for thread, seqs in by_thread.items():
        assert seqs == list(range(1, len(seqs) + 1)), thread  # unique, increasing, never reused
    for run, events in by_run.items():
        assert len(events) == EVENTS_PER_RUN, run
        seqs = [s for s, _ in events]
        assert seqs == list(range(seqs[0], seqs[0] + EVENTS_PER_RUN)), run  # one block per run
        assert events[0][1] == "run_start" and events[-1][1] == "run_end", run
    assert {r for (r,) in store.sql("SELECT run_id FROM runs")} == set(by_run)
    return {run: len(events) for run, events in by_run.items()}


def test_four_processes_share_twenty_threads(schema: Schema) -> None:
    """4 writer processes x 500 runs on 20 shared threads: every run whole, seqs unique per thread."""
    writer = """
        import os, sys
        from store_batches import make_run
        from otel_runjournal.stores import open_store
        name = os.environ["WRITER"]
        store = open_store(os.environ["URL"])
        for start in range(0, 500, 10):
            runs = range(start, start + 10)
            store.write([make_run(f"{name}-{i}", f"thread-{i % 20}", start=i) for i in runs])
        store.close()
        print("done", name)
    """
    with PostgresStore(schema.url) as store:  # migrate once, before the writers race
        children = [_child(writer, WRITER=f"w{n}", URL=schema.url) for n in range(4)]
        for child in children:
            out, err = child.communicate(timeout=240)
            assert child.returncode == 0 and "done" in out, err[-3000:]
        counts = _check_journal(store)
        assert len(counts) == 2000
        assert store.token_usage().run_count == 2000
        assert len(store.sql("SELECT 1 FROM spans")) == 2000 * 3


def test_same_batches_from_two_processes_at_once_are_written_once(schema: Schema) -> None:
    """Two processes delivering the same batches at the same time (a resend racing the original):
    every run's events, spans and totals are there exactly once."""
    writer = """
        import os
        from store_batches import make_run
        from otel_runjournal.stores import open_store
        store = open_store(os.environ["URL"])
        for b in range(30):
            store.write([make_run(f"dup-{b}-{j}", f"thread-{j % 5}") for j in range(10)])
        print("done", flush=True)
    """
    with PostgresStore(schema.url) as store:
        children = [_child(writer, URL=schema.url) for _ in range(2)]
        for child in children:
            out, err = child.communicate(timeout=240)
            assert child.returncode == 0 and "done" in out, err[-3000:]
        counts = _check_journal(store)
        assert len(counts) == 300
        assert store.sql("SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM spans") == [(900, 900)]
        assert store.token_usage().total_tokens == 300 * 15


def test_writer_killed_mid_write_leaves_whole_runs(schema: Schema) -> None:
    """A writer SIGKILLed inside a write (a barrier in its write path, its threads' counters locked):
    its committed runs are whole, nothing of the interrupted batch is kept, the other writer goes on."""
    looping = """
        import os, time
        from store_batches import make_run
        from otel_runjournal.stores import open_store
        import otel_runjournal.stores.postgres.write as write_path
        store = open_store(os.environ["URL"])

        def batch(b):
            return [make_run(f"k-{b}-{j}", f"thread-{j % 4}", content="z" * 5000) for j in range(50)]

        for b in range(3):
            store.write(batch(b))
            print("committed", b, flush=True)
        copy = write_path._copy

        def barrier(cur, table, columns, rows):  # spans and runs in, thread counters locked: events next
            if table == "run_events":
                print("inside write", flush=True)
                time.sleep(600)
            copy(cur, table, columns, rows)

        write_path._copy = barrier
        store.write(batch(3))
        print("the write finished: the barrier was never reached", flush=True)
    """
    steady = """
        import os
        from store_batches import make_run
        from otel_runjournal.stores import open_store
        store = open_store(os.environ["URL"])
        for b in range(40):
            store.write([make_run(f"s-{b}-{j}", f"thread-{j % 4}") for j in range(5)])
        print("done", flush=True)
    """
    with PostgresStore(schema.url) as store:
        victim = _child(looping, URL=schema.url)
        assert victim.stdout is not None
        try:
            lines = [victim.stdout.readline().strip() for _ in range(4)]
            assert lines == ["committed 0", "committed 1", "committed 2", "inside write"], (
                lines,
                victim.stderr.read() if victim.stderr and victim.poll() is not None else "",
            )
            other = _child(steady, URL=schema.url)  # same threads: waits on the victim's locks
        finally:
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
        out, err = other.communicate(timeout=120)
        assert other.returncode == 0 and "done" in out, err[-3000:]
        counts = _check_journal(store)
        assert {run for run in counts if run.startswith("k-")} == {
            f"k-{b}-{j}" for b in range(3) for j in range(50)
        }
        assert sum(1 for run in counts if run.startswith("s-")) == 200
        assert store.sql("SELECT count(*) FROM spans") == [((150 + 200) * 3,)]  # none of batch 3's spans


def _server(command: str, directory: str, **env: str) -> str:
    out = subprocess.run(
        ["bash", str(SERVER_SCRIPT), command, directory],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    if out.returncode != 0:
        pytest.skip(f"cannot run a private PostgreSQL server: {out.stderr.strip()[-500:]}")
    return out.stdout.strip()


@pytest.fixture
def private_server() -> Iterator[tuple[str, str]]:
    """A server of this test's own (it is stopped and restarted), via scripts/postgres_server.sh."""
    from pg_server import server_url

    server_url()  # skip unless PostgreSQL tests are enabled
    directory = tempfile.mkdtemp(prefix="rj-pg-restart-")
    os.chmod(directory, 0o755)
    try:
        url = _server("start", directory)
        yield url, directory
    finally:
        subprocess.run(["bash", str(SERVER_SCRIPT), "stop", directory], capture_output=True)
        subprocess.run(["rm", "-rf", directory])


def test_server_restart_loses_nothing(private_server: tuple[str, str]) -> None:
    """The server stops mid-stream and comes back: exports fail meanwhile, are retried, nothing is lost."""
    from otel_runjournal.demo.agent import build_agent
    from otel_runjournal.wiring import configure

    url, directory = private_server
    store = PostgresStore(url, connect_timeout=1)
    wired = configure(store, set_global=False)
    agent = build_agent(subagent=False, failing_tool=False, middleware=False)
    try:
        for i in range(12):
            if i == 4:
                _server("stop", directory)
            agent.invoke(
                {"messages": [("user", f"weather in Paris? {i}")]},
                {"callbacks": [wired.handler], "configurable": {"thread_id": "restart"}},
            )
            wired.force_flush()  # never raises: the exporter returns FAILURE and keeps the spans
            if i == 5:
                _server("start", directory)
                time.sleep(0.5)
        assert wired.force_flush()
        stats = wired.exporter.stats
        runs = store.list_runs(thread_id="restart")
        assert len(runs) == 12 and all(r.status == "success" and r.llm_call_count == 3 for r in runs)
        for run in runs:  # the writes that failed while the server was down were retried whole
            types = [e.event_type for e in store.list_events(run.run_id, limit=1000)]
            assert types[0] == "run_start" and types[-1] == "run_end"
            assert types.count("llm_end") == 3
        assert stats.failed_writes >= 2 and stats.dropped_spans == 0 and stats.retry_spans == 0
    finally:
        wired.shutdown()
        store.close()


def test_writer_opens_while_the_server_is_down(private_server: tuple[str, str]) -> None:
    """A writer opened while the server is down does not fail the app; writes work once it is back."""
    url, directory = private_server
    _server("stop", directory)
    store = PostgresStore(url, connect_timeout=1)
    try:
        with pytest.raises(StoreError, match="cannot write to run journal"):
            store.write([make_run("r1", "t1")])
        _server("start", directory)
        write = make_run("r1", "t1")
        store.write([write])  # the schema is created now
        assert [e.seq for e in store.list_events("r1")] == [e.seq for e in write.events] == list(range(1, 9))
    finally:
        store.close()
