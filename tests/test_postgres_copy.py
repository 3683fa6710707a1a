"""PostgresStore's COPYs into a real server (what the server gets, from libpq's trace): a batch bigger
than COPY's insert groups (1,000 rows) is stored whole through COPYs that insert row at a time; new
runs go in by COPY, a run already stored by the upsert the refused COPY falls back to."""

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


def _statements(trace: Path) -> list[str]:
    """Every statement the client sent (simple ``Query`` or extended ``Parse``), in order."""
    found = re.findall(r'^F\t\d+\t(?:Query\t|Parse\t "[^"]*")\s*"([^"]*)"', trace.read_text(), re.MULTILINE)
    return [" ".join(statement.split()[:3]) for statement in found]


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
    assert [c.split(" (")[0] for c in first] == ["COPY spans", "COPY runs", "COPY run_events"]
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


def test_run_written_in_parts_goes_in_by_copy_then_upsert(schema: Schema) -> None:
    """A run's first part goes in by a plain COPY of the runs; its next part (the run already stored)
    has that COPY refused, is written again with the runs upserted, and ends with the later summary,
    every event once, seqs continuing on the thread."""
    first = make_run("run-p", "thread-p", messages=3)
    later = make_run("run-p", "thread-p", start=2, status="error", tokens=(40, 9), messages=2)
    later.spans = [replace(s, span_id=f"{i + 100:016x}") for i, s in enumerate(later.spans)]  # new spans
    for e in later.events:
        e.span_id = f"{100:016x}"
    other = make_run("run-x", "thread-p", start=1)
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace"
        _traced_write(schema.url, [first], trace)
        assert "COPY runs" in [c.split(" (")[0] for c in _copies(trace)]
        _traced_write(schema.url, [other, later], trace)
        sent = _statements(trace)
    runs_sent = [s for s in sent if " runs " in f"{s} "]
    assert runs_sent == ["COPY runs (run_id,", "INSERT INTO runs"]  # refused, then upserted
    with PostgresStore(schema.url, read_only=True) as store:
        got = store.get_run("run-p")
        assert got is not None and (got.status, got.input_tokens, got.output_tokens) == ("error", 40, 9)
        assert store.get_run("run-x") is not None
        events = store.list_events("run-p", limit=100)
        assert [e.content for e in events] == [e.content for e in first.events + later.events]
        n_first, n_other = len(first.events), len(other.events)
        assert [e.seq for e in events][:n_first] == list(range(1, n_first + 1))
        # the later batch: run-x's events, then run-p's, in batch order after the first part's
        assert [e.seq for e in store.list_events("run-x", limit=100)] == list(
            range(n_first + 1, n_first + n_other + 1)
        )
        assert [e.seq for e in events][n_first:] == list(
            range(n_first + n_other + 1, n_first + n_other + len(later.events) + 1)
        )
