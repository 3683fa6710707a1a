"""One write = one PostgreSQL transaction, in bulk: COPY for rows, one statement per upsert.

Order inside the transaction, and why:

1. spans: binary COPY straight into ``spans``. If a span is already stored (the batch is a retry
   whose first commit did succeed, or an OTLP resend) the primary key refuses the COPY and the
   transaction is rolled back (nothing else was done in it yet); the store writes the batch again
   with ``stored``: the spans go into a per-session staging table and ``INSERT ... ON CONFLICT DO
   NOTHING RETURNING`` tells which were new, and :func:`codec.drop_written` drops the others and the
   events made from them (DESIGN.md "Writes are idempotent per span"). Two writers racing with the
   same span: the second waits on the first's unique-index entry, then takes the second path.
2. runs: binary COPY straight into ``runs`` (in run id order). A run already stored (written in
   parts, or the batch is a re-send) makes the primary key refuse it: the transaction is rolled back
   and written again with the runs upserted from one JSON array (``json_to_recordset``; a run written
   in parts ends with the latest summary). The upsert costs the server ~4,000 instructions per event
   more than the COPY (its JSON parsing builds a hash table per run, then the conflict checks), and
   a run comes whole in one write far more often than in parts.
3. ``thread_seq``: ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` advances every thread of the
   batch by its number of new events (sent as one JSON object, ``{thread: count}``, encoded by orjson
   in C: psycopg's list dumpers call Python per item), in thread order. Every writer takes its runs'
   keys first, then its threads' rows, each in one order, so writers cannot deadlock on them. The
   row locks are held until commit, so another writer of the same thread, on any host, gets the
   seqs after ours and commits after us: seq is unique and increasing in commit order. This is the
   last step but one, so writers sharing threads wait on each other only for the events' COPY and
   the commit.
4. events: binary COPY straight into ``run_events`` with the seqs just allocated.

Nothing is checked value by value in Python: a NUL (which PostgreSQL text cannot hold) or a naive
datetime makes the server or the driver refuse the batch, and the store writes it again with NUL as
U+FFFD and naive datetimes as UTC. The rows are built with as few Python steps per value as can be
(this is most of a writer's own CPU): one orjson call per batch for each kind of JSON column, the
seqs counted out in C, a row read from its record in one comprehension.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from itertools import chain, count, repeat
from operator import attrgetter, is_
from typing import Any

import orjson
import psycopg
import psycopg.errors
from psycopg.types.string import BytesBinaryDumper

from ...records import RunEvent, RunRecord, RunWrite, SpanRecord
from .. import codec as _codec

_SPAN_HEAD = ("trace_id", "span_id", "parent_span_id", "run_id", "name", "kind", "start_time", "end_time",
              "duration_ms", "status_code", "status_message")  # fmt: skip
_SPAN_JSON = ("attributes", "events", "resource")
_SPAN_COLUMNS = ", ".join((*_SPAN_HEAD, *_SPAN_JSON))
_EVENT_HEAD = (
    "thread_id",
    "run_id",
    "event_type",
    "category",
    "content",
    "created_at",
    "trace_id",
    "span_id",
)
_EVENT_COLUMNS = ", ".join((*_EVENT_HEAD, "metadata", "seq"))
# Binary COPY: each value goes in the column type's binary form, which the server reads without
# parsing text (timestamps, numbers) and psycopg writes in C. The binary form of a JSON column, and
# of the category enum, is its text: "text" picks the dumper of a str, "bytea" the one of bytes (JSON
# already encoded, sent as it is; :func:`prepare` makes it psycopg's C dumper).
_SPAN_TYPES = (*["text"] * 6, "timestamptz", "timestamptz", "float8", "text", "text", *["bytea"] * 3)
_EVENT_TYPES = (*["text"] * 5, "timestamptz", "text", "text", "bytea", "int8")
_run_floats = attrgetter("duration_ms", "cost_usd")

_RUN_COLUMNS = ", ".join(_codec.RUN_FIELDS)
_RUN_UPDATE = ", ".join(f"{name} = excluded.{name}" for name in _codec.RUN_FIELDS if name != "run_id")

STAGING = (  # per session, made when first needed: COPY cannot skip rows already stored, so a batch
    # with such spans COPYs them here, then inserts them with ON CONFLICT DO NOTHING
    "CREATE TEMP TABLE IF NOT EXISTS _rj_spans_in (trace_id TEXT, span_id TEXT, parent_span_id TEXT, "
    "run_id TEXT, name TEXT, kind TEXT, start_time TIMESTAMPTZ, end_time TIMESTAMPTZ, "
    "duration_ms DOUBLE PRECISION, status_code TEXT, status_message TEXT, attributes JSON, events JSON, "
    "resource JSON) ON COMMIT DELETE ROWS"
)
INSERT_SPANS = (
    f"INSERT INTO spans ({_SPAN_COLUMNS}) SELECT {_SPAN_COLUMNS} FROM _rj_spans_in "
    "ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING trace_id, span_id"
)
ADVANCE_THREADS = (
    "INSERT INTO thread_seq AS t (thread_id, last_seq) "
    "SELECT key, value::BIGINT FROM json_each_text(%s::JSON) ORDER BY key "
    "ON CONFLICT (thread_id) DO UPDATE SET last_seq = t.last_seq + excluded.last_seq "
    "RETURNING thread_id, last_seq"
)


def _run_type(name: str, usage: str) -> str:
    """The SQL type of a ``runs`` column as the runs' JSON carries it (``usage_by_caller``: ``usage``)."""
    if name in ("started_at", "ended_at"):
        return "TIMESTAMPTZ"
    if name in ("duration_ms", "cost_usd"):
        return "DOUBLE PRECISION"
    if name in (*_codec.RUN_TOKEN_FIELDS, "message_count", "unpriced_call_count"):
        return "BIGINT"
    if name == "usage_by_caller":
        return usage
    return "BOOLEAN" if name == "complete" else "TEXT"


def _upsert_runs(usage: str) -> str:
    """The runs as one JSON array (one parameter, encoded by orjson in C), no staging table."""
    return (
        f"INSERT INTO runs ({_RUN_COLUMNS}) SELECT "
        + ", ".join("usage_by_caller::JSON" if n == "usage_by_caller" else n for n in _codec.RUN_FIELDS)
        + " FROM json_to_recordset(%s::JSON) AS r ("
        + ", ".join(f"{n} {_run_type(n, usage)}" for n in _codec.RUN_FIELDS)
        + f") ON CONFLICT (run_id) DO UPDATE SET {_RUN_UPDATE}"
    )


UPSERT_RUNS = _upsert_runs("JSON")  # the records encoded whole: usage_by_caller nested
UPSERT_RUNS_TEXT = _upsert_runs("TEXT")  # usage_by_caller as a JSON string holding its JSON text


def text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: it is stored as U+FFFD (the only value that changes)."""
    if value is not None and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _clean(row: Sequence[Any]) -> tuple[Any, ...]:
    utc = _codec.utc
    return tuple(text(v) if isinstance(v, str) else utc(v) if isinstance(v, datetime) else v for v in row)


def _nul_inside(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_nul_inside(k) or _nul_inside(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(map(_nul_inside, value))
    return False


def unusual(batch: Sequence[RunWrite]) -> bool:
    """Whether ``batch`` holds a value the fast path leaves to the server and the driver, who refuse
    it: a text with NUL (stored as U+FFFD; in a run's JSON too, which the server's JSON functions
    refuse) or a naive datetime (taken as UTC)."""
    for unit in batch:
        records: list[RunRecord | SpanRecord | RunEvent] = [unit.run, *unit.spans, *unit.events]
        for record in records:
            for field in fields(record):
                value = getattr(record, field.name)
                if isinstance(value, str) and "\x00" in value:
                    return True
                if isinstance(value, datetime) and value.tzinfo is None:
                    return True
        if _nul_inside(unit.run.usage_by_caller):
            return True
    return False


# short: from 6 bytes on, CPython's bytes.split prepares a costlier search at every piece
_GAP = orjson.Fragment(b"\n")
_SPLIT = b",\n,"
_OPTIONS = (orjson.OPT_NAIVE_UTC, orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS)


def _json_each(values: list[Any]) -> list[bytes]:
    """:func:`codec.dumpb` of each value, in one orjson call: the values are encoded as one array
    with a raw newline between them (compact JSON never holds one) and split there again.
    Without ``OPT_NON_STR_KEYS`` first (faster; the same text when every key is a string)."""
    if not values:
        return []
    items: list[Any] = [_GAP] * (2 * len(values) - 1)
    items[0::2] = values
    for option in _OPTIONS:
        try:
            return orjson.dumps(items, default=str, option=option)[1:-1].split(_SPLIT)
        except (TypeError, ValueError):  # a non-str key, then an int beyond 64 bits: the stdlib's
            continue
    return [_codec.dumpb(v) for v in values]


def _span_rows(spans: Sequence[SpanRecord], clean: bool) -> list[tuple[Any, ...]]:
    attributes = _json_each([s.attributes for s in spans])
    events = _json_column([s.events for s in spans])
    resources = _json_column([s.resource for s in spans])
    rows = [
        (s.trace_id, s.span_id, s.parent_span_id, s.run_id, s.name, s.kind, s.start_time, s.end_time,
         s.duration_ms, s.status_code, s.status_message, a, e, r)
        for s, a, e, r in zip(spans, attributes, events, resources, strict=True)
    ]  # fmt: skip
    return [_clean(row) for row in rows] if clean else rows


_CONTAINERS = (dict, list)


def _json_column(values: list[Any]) -> list[bytes]:
    """:func:`_json_each`, encoded once when every value is one object (the spans of a process
    share their resource) or an empty dict or list each (most spans have no span events): a piece
    per value costs orjson, the split and a bytes object, the checks a C pass or two."""
    first = values[0] if values else None
    if type(first) in _CONTAINERS and (
        all(map(is_, values, repeat(first)))
        or (not any(values) and set(map(type, values)) == {type(first)})  # equal: the same JSON
    ):
        return _json_each([first]) * len(values)
    return _json_each(values)


def _event_rows(events: Sequence[RunEvent], seqs: list[int], clean: bool) -> list[tuple[Any, ...]]:
    metadata = _json_each([e.metadata for e in events])
    rows = [
        (e.thread_id, e.run_id, e.event_type, e.category, e.content, e.created_at, e.trace_id, e.span_id,
         m, seq)
        for e, m, seq in zip(events, metadata, seqs, strict=True)
    ]  # fmt: skip
    return [_clean(row) for row in rows] if clean else rows


_FLOAT_FIELDS = ("duration_ms", "cost_usd")
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _run_rows(runs: Sequence[RunRecord], clean: bool) -> list[tuple[Any, ...]]:
    """The runs' rows for their COPY (columns in ``_codec.RUN_FIELDS`` order), ``usage_by_caller`` as
    its JSON (:func:`_json_each`). Read field by field: a slot read costs the interpreter less than
    ``attrgetter``'s generic look-up of 26 names."""
    usage = _json_each([r.usage_by_caller for r in runs])
    rows = [
        (r.run_id, r.thread_id, r.trace_id, r.name, r.status, r.started_at, r.ended_at, r.duration_ms,
         r.input_tokens, r.output_tokens, r.total_tokens, r.cached_input_tokens, r.reasoning_tokens,
         r.llm_call_count, r.lead_agent_tokens, r.subagent_tokens, r.middleware_tokens, r.message_count,
         r.first_human_message, r.last_ai_message, r.error, u, r.service_name, r.cost_usd,
         r.unpriced_call_count, r.complete)
        for r, u in zip(runs, usage, strict=True)
    ]  # fmt: skip
    return [_clean(row) for row in rows] if clean else rows


def _runs_statement(runs: Sequence[RunRecord], clean: bool) -> tuple[str, str]:
    """The runs' upsert and its one parameter. Common case: the records encoded whole by orjson in
    one call. Else (JSON has no NaN or infinity, NUL to replace, a value orjson refuses): field by field
    (:func:`_runs_text`)."""
    if not clean:
        try:
            total = sum(filter(None, chain.from_iterable(map(_run_floats, runs))))
            finite = total - total == 0  # NaN and infinities make the sum one
        except TypeError:
            finite = False
        if finite:
            try:
                return UPSERT_RUNS, orjson.dumps(runs, default=str, option=_OPTIONS[1]).decode()
            except (TypeError, ValueError):
                pass
    return UPSERT_RUNS_TEXT, _runs_text(runs, clean)


def _runs_text(runs: Sequence[RunRecord], clean: bool) -> str:
    """The runs as a JSON array of objects, ``usage_by_caller`` as its JSON text: PostgreSQL's JSON
    functions refuse an escaped NUL (\\u0000) they unescape, even inside a nested JSON value. One
    per run id as stored (the last one winning: two ids can differ only by NUL and U+FFFD)."""
    rows: dict[Any, dict[str, Any]] = {}
    for r in runs:
        row = _codec.run_to_dict(r)
        row["usage_by_caller"] = _json(row["usage_by_caller"])
        for name in _FLOAT_FIELDS:  # JSON has no NaN or infinity: as text, which float8 reads
            value = row[name]
            if isinstance(value, float) and value - value != 0:
                row[name] = _NON_FINITE[str(value)]
        if clean:
            row = {k: text(v) if isinstance(v, str) else v for k, v in row.items()}
        rows[row["run_id"]] = row
    return _json(list(rows.values()))


def _json(value: Any) -> str:
    return _codec.dumpb(value).decode()


_BINARY_NAMES = {"TEXT": "text", "TIMESTAMPTZ": "timestamptz", "DOUBLE PRECISION": "float8", "BIGINT": "int8",
                 "BOOLEAN": "bool"}  # fmt: skip
_RUN_TYPES = tuple(
    _BINARY_NAMES[_run_type(n, "")] if n != "usage_by_caller" else "bytea" for n in _codec.RUN_FIELDS
)
_TYPES = {"spans": _SPAN_TYPES, "_rj_spans_in": _SPAN_TYPES, "run_events": _EVENT_TYPES, "runs": _RUN_TYPES}


def prepare(conn: psycopg.Connection[Any]) -> None:
    """Per connection: psycopg's C dumper of ``bytes`` for the COPYs' ``bytea`` columns (by oid, its
    default is the one of ``psycopg.Binary``, in Python); nothing else is dumped by oid."""
    conn.adapters.register_dumper(None, BytesBinaryDumper)


# Row at a time: with no condition, COPY inserts rows in groups of up to 1,000 (a binary COPY counts
# rows only), a tuple slot per buffered row, and the server (through 16 at least) registers each
# slot's tuple descriptor — the same one for all — in an array whose look-ups turn linear with
# duplicates: ~10,000 server instructions per event for a 1,275-event batch, 15% of the server's
# work (callgrind on the backend, bench/README.md "Fifth round"). A volatile WHERE (always true)
# makes COPY insert each row as it reads it; the row-by-row insert costs what the groups saved.
# COPY ... WHERE needs PostgreSQL 12.
ROW_AT_A_TIME = "WHERE random() IS NOT NULL"


def _copy(cur: psycopg.Cursor[Any], table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY) {ROW_AT_A_TIME}") as copy:
        copy.set_types(list(_TYPES[table]))
        for row in rows:
            copy.write_row(row)


def write(
    conn: psycopg.Connection[Any],
    batch: Sequence[RunWrite],
    *,
    clean: bool = False,
    stored: bool = False,
    upsert: bool = False,
) -> tuple[list[RunEvent], list[int]]:
    """Write ``batch`` in the connection's open transaction; return the events written and their seqs.

    The common batch pays for no check up front; the caller writes it again, in a new transaction,
    with ``stored`` on when the spans' COPY was refused for a span already stored
    (``UniqueViolation`` on ``spans``), with ``upsert`` on when the runs' COPY was refused for a run
    already stored (on ``runs``: a run written in parts), and with ``clean`` on (NUL in text values
    replaced by U+FFFD, naive datetimes taken as UTC) when the server or the driver refused a value
    and :func:`unusual` finds such a value. (Aware datetimes in any zone go as they are: the binary
    form is the instant.)"""
    with conn.cursor() as cur:
        spans = list(chain.from_iterable(map(_spans_of, batch)))
        kept = batch  # the common case, every span new: their COPY refuses a span stored or repeated
        if spans and not stored:
            _copy(cur, "spans", _SPAN_COLUMNS, _span_rows(spans, clean))
        elif spans:  # some were written before: keep only the others
            cur.execute(STAGING)
            _copy(cur, "_rj_spans_in", _SPAN_COLUMNS, _span_rows(spans, clean))
            cur.execute(INSERT_SPANS)
            new = set(cur.fetchall())
            as_stored = text if clean else _same
            keys = [(as_stored(s.trace_id), as_stored(s.span_id)) for s in spans]
            written = {  # the stored keys mapped back to the batch's
                _codec.span_key(s.trace_id, s.span_id)
                for s, k in zip(spans, keys, strict=True)
                if k not in new
            }
            kept = _codec.drop_written(batch, written)
        runs = sorted(_codec.latest_runs([unit.run for unit in kept]), key=_run_id)  # one order for all
        if runs and (upsert or stored):  # some may be stored: each takes the latest summary
            statement, runs_json = _runs_statement(runs, clean)
            cur.execute(statement, (runs_json,))
        elif runs:  # the common case, new runs: their COPY refuses a run already stored
            _copy(cur, "runs", _RUN_COLUMNS, _run_rows(runs, clean))
        events = list(chain.from_iterable(map(_events_of, kept)))
        seqs: list[int] = []
        if events:
            threads = [e.thread_id for e in events]
            if clean:
                threads = [t.replace("\x00", "\ufffd") for t in threads]  # as stored (see text)
            counts = Counter(threads)
            per_thread = orjson.dumps(counts).decode()  # {thread: new events}, one C call
            # the thread rows are locked from here until commit: other writers of them wait
            cur.execute(ADVANCE_THREADS, (per_thread,))
            after = {t: count(int(last) - counts[t] + 1) for t, last in cur.fetchall()}  # our first seqs
            seqs = list(map(next, map(after.__getitem__, threads)))
            _copy(cur, "run_events", _EVENT_COLUMNS, _event_rows(events, seqs, clean))
    return events, seqs


_run_id = attrgetter("run_id")
_spans_of = attrgetter("spans")
_events_of = attrgetter("events")


def _same(value: str | None) -> str | None:
    return value


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
