"""One write = one PostgreSQL transaction, in bulk: COPY for rows, one statement per upsert.

Order inside the transaction, and why:

1. spans: COPY straight into ``spans`` (in a savepoint). If a span is already stored (the batch is a
   retry whose first commit did succeed, or an OTLP resend) the primary key refuses the COPY; then
   the spans go into a per-connection staging table and ``INSERT ... ON CONFLICT DO NOTHING
   RETURNING`` tells which were new, and :func:`codec.drop_written` drops the others and the events
   made from them (DESIGN.md "Writes are idempotent per span"). Two writers racing with the same
   span: the second waits on the first's unique-index entry, then takes the second path.
2. runs: COPY into staging, then one upsert (a run written in parts ends with the latest summary).
3. ``thread_seq``: one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` advances every thread of the
   batch by its number of new events, in thread order (so writers lock rows in one order and cannot
   deadlock on them). The row locks are held until commit, so another writer of the same thread, on
   any host, gets the seqs after ours and commits after us: seq is unique and increasing in commit
   order. This is the last step but one, so writers sharing threads wait on each other only for
   the events' COPY and the commit.
4. events: COPY straight into ``run_events`` with the seqs just allocated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
import psycopg.errors

from ...records import RunEvent, RunRecord, RunWrite, SpanRecord
from .. import codec as _codec

_SPAN_COLUMNS = (
    "trace_id, span_id, parent_span_id, run_id, name, kind, start_time, end_time, duration_ms, "
    "status_code, status_message, attributes, events, resource"
)
_EVENT_COLUMNS = (
    "thread_id, run_id, seq, event_type, category, content, metadata, created_at, trace_id, span_id"
)
_RUN_COLUMNS = ", ".join(_codec.RUN_FIELDS)
_RUN_UPDATE = ", ".join(f"{name} = excluded.{name}" for name in _codec.RUN_FIELDS if name != "run_id")

INSERT_SPANS = (
    f"INSERT INTO spans ({_SPAN_COLUMNS}) SELECT {_SPAN_COLUMNS} FROM _rj_spans_in "
    "ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING trace_id, span_id"
)
ADVANCE_THREADS = (
    "INSERT INTO thread_seq AS t (thread_id, last_seq) "
    "SELECT thread_id, n FROM unnest(%s::TEXT[], %s::BIGINT[]) AS b (thread_id, n) ORDER BY thread_id "
    "ON CONFLICT (thread_id) DO UPDATE SET last_seq = t.last_seq + excluded.last_seq "
    "RETURNING thread_id, last_seq"
)
UPSERT_RUNS = (
    f"INSERT INTO runs ({_RUN_COLUMNS}) SELECT {_RUN_COLUMNS} FROM _rj_runs_in "
    f"ON CONFLICT (run_id) DO UPDATE SET {_RUN_UPDATE}"
)


def text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: it is stored as U+FFFD (the only value that changes)."""
    if value is not None and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _json(value: Any) -> str:
    return _codec.dumpb(value).decode()


def _span_row(s: SpanRecord) -> tuple[Any, ...]:
    return (
        text(s.trace_id), text(s.span_id), text(s.parent_span_id), text(s.run_id), text(s.name),
        text(s.kind), _codec.utc(s.start_time), _codec.utc(s.end_time), s.duration_ms,
        text(s.status_code), text(s.status_message), _json(s.attributes), _json(s.events),
        _json(s.resource),
    )  # fmt: skip


def _event_row(e: RunEvent, seq: int, metadata: bytes) -> list[Any]:
    return [
        text(e.thread_id), text(e.run_id), seq, e.event_type, e.category, text(e.content),
        metadata.decode(), _codec.utc(e.created_at), text(e.trace_id), text(e.span_id),
    ]  # fmt: skip


def _run_row(r: RunRecord) -> tuple[Any, ...]:
    row = _codec.run_to_dict(r)
    values: list[Any] = []
    for name in _codec.RUN_FIELDS:
        value = row[name]
        if name == "usage_by_caller":
            value = _json(value)
        elif isinstance(value, str):
            value = text(value)
        values.append(value)
    return tuple(values)


def _copy(cur: psycopg.Cursor[Any], table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def write(conn: psycopg.Connection[Any], batch: Sequence[RunWrite]) -> tuple[list[RunEvent], list[int]]:
    """Write ``batch`` in the connection's open transaction; return the events written and their seqs."""
    with conn.cursor() as cur:
        spans = [s for unit in batch for s in unit.spans]
        written: set[tuple[str | None, str | None]] = set()
        if spans:
            span_rows = [_span_row(s) for s in spans]
            try:  # the common case, every span new: straight in
                with conn.transaction():  # a savepoint
                    _copy(cur, "spans", _SPAN_COLUMNS, span_rows)
                new = {(row[0], row[1]) for row in span_rows}
            except psycopg.errors.UniqueViolation:  # some were written before: keep only the others
                _copy(cur, "_rj_spans_in", _SPAN_COLUMNS, span_rows)
                cur.execute(INSERT_SPANS)
                new = set(cur.fetchall())
            written = {k for s in spans if (k := (text(s.trace_id), text(s.span_id))) not in new}
            if written:  # compare as stored (NUL-free), then map back to the batch's keys
                written = {
                    _codec.span_key(s.trace_id, s.span_id)
                    for s in spans
                    if (text(s.trace_id), text(s.span_id)) in written
                }
        kept = _codec.drop_written(batch, written)
        runs = _codec.latest_runs(unit.run for unit in kept)
        if runs:
            run_rows = {text(r.run_id): _run_row(r) for r in runs}  # one row per run id as stored
            _copy(cur, "_rj_runs_in", _RUN_COLUMNS, list(run_rows.values()))
            cur.execute(UPSERT_RUNS)
        events = [e for unit in kept for e in unit.events]
        seqs: list[int] = []
        if events:
            metadata = _codec.dumpb_all(e.metadata for e in events)
            event_rows = [_event_row(e, 0, m) for e, m in zip(events, metadata, strict=True)]
            counts: dict[str, int] = {}
            for row in event_rows:  # per thread id as stored (row[0])
                counts[row[0]] = counts.get(row[0], 0) + 1
            threads = sorted(counts)
            # the thread rows are locked from here until commit: other writers of them wait
            cur.execute(ADVANCE_THREADS, (threads, [counts[t] for t in threads]))
            previous = {t: int(last) - counts[t] for t, last in cur.fetchall()}  # the seq before ours
            for row in event_rows:
                seq = previous[row[0]] = previous[row[0]] + 1
                row[2] = seq
                seqs.append(seq)
            _copy(cur, "run_events", _EVENT_COLUMNS, event_rows)
    return events, seqs


def update_costs(
    conn: psycopg.Connection[Any], events: Sequence[RunEvent], runs: Sequence[RunRecord]
) -> None:
    """``reprice``'s writes (inside the caller's transaction): model-call events' metadata by
    ``run_id`` + ``seq``, and the runs' ``cost_usd`` / ``unpriced_call_count``."""
    with conn.cursor() as cur:
        if events:
            cur.executemany(
                "UPDATE run_events SET metadata = %s::JSON WHERE run_id = %s AND seq = %s",
                [(_codec.dumps(e.metadata), e.run_id, e.seq) for e in events],
            )
        if runs:
            cur.executemany(
                "UPDATE runs SET cost_usd = %s, unpriced_call_count = %s WHERE run_id = %s",
                [(r.cost_usd, r.unpriced_call_count, r.run_id) for r in runs],
            )
