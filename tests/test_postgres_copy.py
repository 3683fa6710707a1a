"""PostgresStore's COPYs into a real server: a batch bigger than COPY's insert groups (1,000 rows) is
stored whole, through COPYs that insert row at a time (what the server sees, from libpq's trace)."""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pg_server import Schema
from store_batches import make_run

pytest.importorskip("psycopg", reason="the PostgreSQL store needs the postgres extra")

import psycopg
from psycopg import pq

from otel_runjournal.records import RunWrite
from otel_runjournal.stores.postgres import write as pg_write
from otel_runjournal.stores.postgres.store import PostgresStore


@pytest.fixture
def schema() -> Iterator[Schema]:
    made = Schema()
    PostgresStore(made.url).close()  # the tables
    yield made
    made.drop()


def _traced_write(url: str, batch: list[RunWrite], trace: Path) -> None:
    """``batch`` written as the store writes it, on one connection whose protocol libpq traces."""
    with psycopg.connect(url) as conn, open(trace, "w") as out:
        pg_write.prepare(conn)
        conn.execute("SET TimeZone = 'UTC'")
        conn.commit()
        conn.pgconn.trace(out.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        PostgresStore._write(conn, batch)
        conn.pgconn.untrace()


def _copies(trace: Path) -> list[str]:
    """The COPY statements the client sent (``F ... Query "COPY ..."`` lines of the trace)."""
    return re.findall(r'^F\t\d+\tQuery\t "(COPY [^"]*)"$', trace.read_text(), re.MULTILINE)


def test_big_batch_goes_in_through_row_at_a_time_copies(schema: Schema) -> None:
    """1,500+ events and 1,000+ spans in one batch: every COPY the server gets carries a condition (so
    it inserts row by row instead of buffering up to 1,000 rows, whose bookkeeping grows with the
    square of the rows on PostgreSQL <= 16), the staging COPY of a re-sent batch too; every row is
    stored once, seqs 1..n per thread in batch order."""
    batch = [make_run(f"run-{i}", f"thread-{i % 3}", start=i, messages=4, tool_calls=8) for i in range(40)]
    for unit in batch:  # more spans per run than the three it has
        unit.spans += [replace(unit.spans[-1], span_id=f"{n:016x}") for n in range(25)]
    events = [e for unit in batch for e in unit.events]
    spans = [s for unit in batch for s in unit.spans]
    assert len(events) > 1000 and len(spans) > 1000  # beyond one group of COPY's multi-insert
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace"
        _traced_write(schema.url, batch, trace)
        first = _copies(trace)
        _traced_write(schema.url, batch, trace)  # sent again: spans through the staging table
        again = _copies(trace)
    assert {c.split(" (")[0] for c in first} == {"COPY spans", "COPY run_events"}
    # refused (every span stored), then through the staging table; nothing new, so no events' COPY
    assert [c.split(" (")[0] for c in again] == ["COPY spans", "COPY _rj_spans_in"]
    assert all(" WHERE " in c.split("FROM STDIN", 1)[1] for c in first + again)
    with PostgresStore(schema.url, read_only=True) as store:
        per_thread: Counter[str] = Counter()
        for unit in batch:
            got = store.list_events(unit.run.run_id, limit=1000)
            assert [e.content for e in got] == [e.content for e in unit.events]
            start = per_thread[unit.run.thread_id]
            assert [e.seq for e in got] == list(range(start + 1, start + len(unit.events) + 1))
            per_thread[unit.run.thread_id] += len(unit.events)
            assert len(store.list_spans(unit.run.run_id)) == len(unit.spans)
        (count,) = store.sql("SELECT count(*) FROM spans")[0]
        assert count == len(spans)
