"""PostgresStore's pooled connections on a real server: a write takes its connection without the
pool's check (one round trip less, seen in libpq's trace) and, when that connection is dead, is
written again whole on a new one; reads still take checked connections."""

from __future__ import annotations

import re
import tempfile
import uuid
from pathlib import Path

import pytest
from pg_server import Schema
from store_batches import make_run

pytest.importorskip("psycopg", reason="the PostgreSQL store needs the postgres extra")

import psycopg
from psycopg import pq

from otel_runjournal.stores.postgres.store import PostgresStore


def _named(url: str) -> tuple[str, str]:
    """``url`` with an application name of its own (to find the store's backends), and the name."""
    name = f"rj-pool-{uuid.uuid4().hex[:8]}"
    return f"{url}&application_name={name}", name


def _terminate(server: str, name: str) -> int:
    """Ends every backend of application ``name`` (as a server restart or a network cut would)."""
    with psycopg.connect(server, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()
    return len(rows)


def test_write_skips_the_pool_check(schema: Schema) -> None:
    """The messages a write sends, from libpq's trace of the pooled connection: BEGIN first, no empty
    query (the pool's check) before it; a read on the same connection is still checked first."""
    url, _ = _named(schema.url)
    with PostgresStore(url, pool_size=1) as store, tempfile.TemporaryDirectory() as tmp:
        store.write([make_run("run-0", "thread-a")])
        trace = Path(tmp) / "trace"
        with open(trace, "w") as out:
            with store._connection("trace") as conn:  # the pool's one connection, traced from now on
                conn.pgconn.trace(out.fileno())
                conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            store.write([make_run("run-1", "thread-a", start=1)])
            written = trace.read_text()
            store.list_runs()
            with store._connection("untrace") as conn:
                conn.pgconn.untrace()
        read = trace.read_text()[len(written) :]
    sent = re.findall(r'^F\t\d+\t(?:Query|Parse)\t(?: "[^"]*")?\s*"([^"]*)"', written, re.MULTILINE)
    assert sent[0] == "BEGIN" and "" not in sent and sent[-1] == "COMMIT"
    assert re.findall(r'^F\t\d+\tQuery\t "([^"]*)"', read, re.MULTILINE)[0] == ""  # the check


def test_write_on_a_dead_connection_is_written_again(schema: Schema) -> None:
    """The store's backend is terminated between two writes: the second write still succeeds (on a
    new connection), whole and once, its events numbered after the first write's on the thread; a
    read after another termination succeeds too (its connection is checked and replaced)."""
    url, name = _named(schema.url)
    with PostgresStore(url, pool_size=1) as store:
        first = make_run("run-0", "thread-a", messages=3)
        store.write([first])
        assert _terminate(schema.server, name) >= 1
        second = make_run("run-1", "thread-a", start=1, messages=3)
        store.write([second])
        expected = len(first.events) + len(second.events)
        assert [e.seq for e in second.events] == list(range(len(first.events) + 1, expected + 1))
        assert _terminate(schema.server, name) >= 1
        runs = store.list_runs(thread_id="thread-a")
        assert sorted(r.run_id for r in runs) == ["run-0", "run-1"]
        stored = store.list_events("run-1", limit=1000)
        assert [(e.event_type, e.seq) for e in stored] == [(e.event_type, e.seq) for e in second.events]
        assert len(store.list_spans("run-1")) == len(second.spans)
