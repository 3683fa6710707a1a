"""PostgresStore writes values exactly (binary COPY, runs as one JSON parameter): unicode, NUL, huge text,
nested JSON, timestamps in other zones, non-finite floats; each checked against values computed here."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from pg_server import Schema
from store_batches import make_run

from otel_runjournal.records import RunEvent, RunRecord, RunWrite, SpanRecord
from otel_runjournal.stores import StoreError

pytest.importorskip("psycopg", reason="the PostgreSQL store needs the postgres extra")

from otel_runjournal.stores.postgres.store import PostgresStore

ODD_TEXT = [
    "plain",
    "",
    "tab\there, newline\nthere, cr\r, backslash \\ and \\N and \\t literally",
    "é à ñ 漢字 🚀 👩‍👩‍👧 \u0301 \u200f rtl \u05e9\u05dc\u05d5\u05dd",
    "quotes ' \" , ; | \x01 \x7f \x1b[31m",
    "\ufffd already a replacement character",
]
NESTED = {
    "deep": {"a": [1, 2, {"b": [None, True, False, {"c": "🚀\n\t\\\u0000x"}]}]},
    "floats": [0.1, 1e-300, 1.7976931348623157e308, -0.0, 2.5],
    "ints": [0, -1, 2**63 - 1, -(2**63)],
    "unicode keys 漢字": {"é": "ü", "": ""},
    "empty": [{}, [], ""],
}
UTC = timezone.utc
ZONE = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture
def store() -> Iterator[PostgresStore]:
    made = Schema()
    opened = PostgresStore(made.url)
    yield opened
    opened.close()
    made.drop()


def _stored(value: str | None) -> str | None:
    """What PostgreSQL text holds for ``value``: NUL cannot be stored and becomes U+FFFD."""
    return None if value is None else value.replace("\0", "\ufffd")


def _odd_run(run_id: str, thread_id: str, texts: list[str], big: str) -> RunWrite:
    at = datetime(2025, 6, 30, 23, 59, 59, 999_999, tzinfo=ZONE)
    trace = "a" * 32
    events = [
        RunEvent(thread_id, run_id, "ai_message", "message", at + timedelta(microseconds=i), content=text,
                 metadata={"i": i, "text": text, **NESTED}, trace_id=trace, span_id=f"{i:016x}")
        for i, text in enumerate([*texts, big, None])  # type: ignore[list-item]
    ]  # fmt: skip
    spans = [
        SpanRecord(trace, f"{i:016x}", None if i == 0 else f"{0:016x}", run_id, text, "CLIENT",
                   at.replace(tzinfo=None), at + timedelta(seconds=1.5), 1500.25, "ERROR", text,
                   {"text": text, **NESTED}, [{"name": text, "attributes": NESTED}], {"service.name": text})
        for i, text in enumerate(texts)
    ]  # fmt: skip
    run = RunRecord(run_id, thread_id, trace_id=trace, name=texts[3], status="error", started_at=at,
                    ended_at=at.replace(tzinfo=None), duration_ms=0.1 + 0.2, input_tokens=2**62,
                    first_human_message=big, last_ai_message=texts[2], error=texts[4],
                    usage_by_caller={"lead_agent": 2**62, "subagent:é 🚀": 1}, service_name=texts[3],
                    cost_usd=1e-12, unpriced_call_count=3, complete=False)  # fmt: skip
    return RunWrite(run=run, events=events, spans=spans)


def _check(store: PostgresStore, write: RunWrite) -> None:
    """Everything written reads back as computed here from the records themselves."""
    run_id = _stored(write.run.run_id)
    assert run_id is not None
    events = store.list_events(run_id, limit=1000)
    assert len(events) == len(write.events)
    for got, sent in zip(events, write.events, strict=True):
        assert (got.thread_id, got.run_id, got.span_id) == tuple(
            _stored(v) for v in (sent.thread_id, sent.run_id, sent.span_id)
        )
        assert got.content == _stored(sent.content)
        assert got.created_at == sent.created_at.astimezone(UTC)
        assert got.metadata == json.loads(json.dumps(sent.metadata))
    spans = sorted(store.list_spans(run_id), key=lambda s: s.span_id)
    assert len(spans) == len(write.spans)
    for got_span, sent_span in zip(spans, write.spans, strict=True):
        assert (got_span.name, got_span.status_message) == (
            _stored(sent_span.name),
            _stored(sent_span.status_message),
        )
        assert got_span.start_time == sent_span.start_time.replace(tzinfo=UTC)  # naive is UTC
        assert got_span.end_time == sent_span.end_time.astimezone(UTC)
        assert got_span.duration_ms == sent_span.duration_ms
        assert got_span.attributes == json.loads(json.dumps(sent_span.attributes))
        assert got_span.events == json.loads(json.dumps(sent_span.events))
        assert got_span.resource == json.loads(json.dumps(sent_span.resource))
    got_run, sent_run = store.get_run(run_id), write.run
    assert got_run is not None
    for name in ("thread_id", "name", "first_human_message", "last_ai_message", "error", "service_name"):
        assert getattr(got_run, name) == _stored(getattr(sent_run, name)), name
    assert got_run.started_at == sent_run.started_at.astimezone(UTC)  # type: ignore[union-attr]
    assert got_run.ended_at == sent_run.ended_at.replace(tzinfo=UTC)  # type: ignore[union-attr]
    for name in ("duration_ms", "input_tokens", "cost_usd", "unpriced_call_count", "complete", "status"):
        assert getattr(got_run, name) == getattr(sent_run, name), name
    assert got_run.usage_by_caller == sent_run.usage_by_caller


def test_odd_text_nested_json_and_zones_read_back_exactly(store: PostgresStore) -> None:
    """Control characters, backslashes, emoji, a 5 MB string, deep JSON and non-UTC times survive exactly."""
    big = "x\\\t🚀" * 1_250_000
    write = _odd_run("run-odd", "thread-odd", ODD_TEXT, big)
    store.write([write])
    _check(store, write)
    (text,) = store.sql("SELECT metadata::TEXT FROM run_events WHERE content = %s", [ODD_TEXT[3]])[0]
    assert json.loads(text) == json.loads(json.dumps(write.events[3].metadata))
    assert store.sql("SELECT length(content) FROM run_events WHERE seq = %s", [len(ODD_TEXT) + 1]) == [
        (len(big),)
    ]


@pytest.mark.parametrize("where", ["run_id", "thread_id", "content", "span", "run", "big"])
def test_nul_anywhere_is_stored_as_replacement(store: PostgresStore, where: str) -> None:
    """A NUL in any text value of a batch (ids, content, span and run fields) is stored as U+FFFD,
    everything else as given; the batch's other runs are written once, with seqs 1..n."""
    texts = list(ODD_TEXT)
    run_id, thread_id, big = "run-nul", "thread-nul", "big"
    if where == "run_id":
        run_id = "run\x00nul"
    elif where == "thread_id":
        thread_id = "thread\x00nul"
    elif where == "content":
        texts[1] = "a\x00b"
    elif where == "big":
        big = "\x00" + "y" * 100_000 + "\x00"
    write = _odd_run(run_id, thread_id, texts, big)
    if where == "span":
        write.spans[2].status_message = "span \x00 message"
        write.spans[3].resource = {"k\x00": "v\x00"}  # JSON escapes it: kept as written
    elif where == "run":
        write.run.error = "run \x00 error"
        write.run.usage_by_caller = {"caller\x00": 7}
    other = make_run("run-clean", "thread-other")
    store.write([write, other])
    _check(store, write)
    assert [e.seq for e in store.list_events(_stored(run_id) or "")] == list(range(1, len(write.events) + 1))
    assert [e.seq for e in write.events] == list(range(1, len(write.events) + 1))  # given back
    assert [e.seq for e in store.list_events("run-clean")] == list(range(1, len(other.events) + 1))
    if where == "span":
        assert next(
            s for s in store.list_spans(_stored(run_id) or "") if s.span_id == f"{3:016x}"
        ).resource == {"k\x00": "v\x00"}


def test_nul_only_in_a_run_callers_key_is_kept(store: PostgresStore) -> None:
    """A NUL only inside a run's callers (JSON, which PostgreSQL's JSON functions refuse to unescape):
    the batch is written, the key read back as given, the other run of the batch too."""
    write, other = make_run("run-u", "thread-u"), make_run("run-v", "thread-u", start=1)
    write.run.usage_by_caller = {"lead_agent": 3, "caller\x00": 7}
    store.write([write, other])
    for sent in (write, other):
        got = store.get_run(sent.run.run_id)
        assert got is not None and got.usage_by_caller == sent.run.usage_by_caller
    seqs = [e.seq for w in (write, other) for e in store.list_events(w.run.run_id, limit=100)]
    assert seqs == list(range(1, len(write.events) + len(other.events) + 1))


def test_nul_batch_after_some_spans_were_stored(store: PostgresStore) -> None:
    """A batch holding a run already stored and a new run with NUL: the stored one is skipped, the new one
    written with U+FFFD, seqs continue without gaps."""
    first = make_run("run-a", "thread-x")
    store.write([first])
    again = make_run("run-a", "thread-x")
    fresh = make_run("run-b\x00", "thread-x", start=1)
    store.write([again, fresh])
    seqs = [e.seq for e in store.list_messages("thread-x", limit=100)]
    assert seqs == sorted(seqs) and len(seqs) == 4
    assert len(store.list_events("run-a", limit=100)) == len(first.events)
    got = store.list_events("run-b\ufffd", limit=100)
    assert [e.seq for e in got] == list(
        range(len(first.events) + 1, len(first.events) + len(fresh.events) + 1)
    )
    assert [e.seq for e in again.events] == [0] * len(again.events)  # not written: no seq given


def test_run_rewritten_takes_every_new_value(store: PostgresStore) -> None:
    """A run written again replaces its summary, NULLs, non-finite floats and a NUL included."""
    write = _odd_run("run-re", "thread-re", ODD_TEXT, "big")
    store.write([write])
    later = RunRecord("run-re", "thread-re", status="success", duration_ms=math.inf, cost_usd=None,
                      error="e\x00", complete=None, usage_by_caller={})  # fmt: skip
    store.write([RunWrite(run=later, events=[], spans=[])])
    got = store.get_run("run-re")
    assert got is not None
    assert (got.status, got.duration_ms, got.cost_usd, got.error, got.complete) == (
        "success",
        math.inf,
        None,
        "e\ufffd",
        None,
    )
    assert (got.name, got.started_at, got.input_tokens, got.usage_by_caller) == (None, None, 0, {})
    store.write([RunWrite(run=RunRecord("run-re", "thread-re", duration_ms=math.nan), events=[], spans=[])])
    again = store.get_run("run-re")
    assert again is not None and again.duration_ms is not None and math.isnan(again.duration_ms)


def test_value_the_driver_cannot_encode_writes_nothing(store: PostgresStore) -> None:
    """A lone surrogate (not UTF-8) fails the whole batch with a StoreError; nothing of it is stored."""
    good, bad = make_run("run-g", "thread-g"), make_run("run-s", "thread-g")
    bad.events[1].content = "lone \ud800"
    with pytest.raises(StoreError, match="cannot write"):
        store.write([good, bad])
    assert store.list_runs() == [] and store.list_events("run-g") == []
    store.write([good])
    assert [e.seq for e in store.list_events("run-g")] == list(range(1, len(good.events) + 1))


def test_naive_datetimes_are_taken_as_utc(store: PostgresStore) -> None:
    """Naive event, span and run times (refused by the binary COPY) are stored as UTC, the rest as given."""
    write = make_run("run-naive", "thread-naive")
    aware = write.events[1].created_at.astimezone(ZONE)
    write.events[1].created_at = aware
    write.events[2].created_at = naive = datetime(2025, 1, 2, 3, 4, 5, 678_901)
    write.spans[0].end_time = naive
    write.run.started_at = naive
    store.write([write])
    events = store.list_events("run-naive")
    assert events[1].created_at == aware and events[2].created_at == naive.replace(tzinfo=UTC)
    assert {s.end_time for s in store.list_spans("run-naive") if s.span_id == write.spans[0].span_id} == {
        naive.replace(tzinfo=UTC)
    }
    run = store.get_run("run-naive")
    assert run is not None and run.started_at == naive.replace(tzinfo=UTC)


def test_values_beyond_the_fast_encoder_read_back_exactly(store: PostgresStore) -> None:
    """Ints beyond 64 bits and non-string keys in metadata, span attributes and a run's callers (the
    JSON of a batch then encoded value by value), next to plain runs, read back as the JSON says."""
    odd = make_run("run-wide", "thread-wide")
    odd.events[1].metadata = {"big": 2**70, "neg": -(2**80), 3: "int key"}
    odd.spans[0].attributes = {"gen_ai.usage.input_tokens": 2**65, 1.5: "float key"}
    odd.run.usage_by_caller = {"lead_agent": 2**66}
    plain = make_run("run-plain", "thread-wide", start=1)
    store.write([odd, plain])
    for write in (odd, plain):
        events = store.list_events(write.run.run_id, limit=100)
        assert [e.metadata for e in events] == [json.loads(json.dumps(e.metadata)) for e in write.events]
        assert [e.seq for e in write.events] == [e.seq for e in events]
        spans = {s.span_id: s.attributes for s in store.list_spans(write.run.run_id)}
        assert spans == {s.span_id: json.loads(json.dumps(s.attributes)) for s in write.spans}
        got = store.get_run(write.run.run_id)
        assert got is not None and got.usage_by_caller == write.run.usage_by_caller
    seqs = sorted(e.seq for w in (odd, plain) for e in store.list_events(w.run.run_id, limit=100))
    assert seqs == list(range(1, 1 + len(odd.events) + len(plain.events)))  # one thread, no gap


def test_non_finite_run_floats_next_to_finite_ones(store: PostgresStore) -> None:
    """A batch whose runs mix NaN, infinities and plain floats stores each run's own values."""
    values = [math.nan, math.inf, -math.inf, 2.5, None]
    writes = [make_run(f"run-f{i}", "thread-f", start=i) for i in range(len(values))]
    for write, value in zip(writes, values, strict=True):
        write.run.duration_ms, write.run.cost_usd = value, 0.25
    store.write(writes)
    for write, value in zip(writes, values, strict=True):
        got = store.get_run(write.run.run_id)
        assert got is not None and got.cost_usd == 0.25
        if value is not None and math.isnan(value):
            assert got.duration_ms is not None and math.isnan(got.duration_ms)
        else:
            assert got.duration_ms == value


def test_runs_and_thread_advance_in_one_statement(store: PostgresStore) -> None:
    """Runs upserted in the statement that advances the threads: a run twice in a batch ends with the
    later summary, a run without events is stored, seqs follow batch order per thread, across a
    runs-only batch, a NaN duration (the field-by-field runs JSON) and the whole batch sent again."""
    first = make_run("run-m", "thread-m")
    later = make_run("run-m", "thread-m", start=3, status="error", tokens=(30, 7))
    later.spans = []  # the same spans as ``first``: a re-send, not this test's case
    quiet = RunWrite(RunRecord("run-q", "thread-q", status="running", input_tokens=4), events=[], spans=[])
    other = make_run("run-o", "thread-o", start=1)
    batch = [first, quiet, other, later]
    store.write(batch)
    got = store.get_run("run-m")
    assert got is not None and (got.status, got.input_tokens, got.output_tokens) == ("error", 30, 7)
    got_quiet = store.get_run("run-q")
    assert got_quiet is not None and (got_quiet.status, got_quiet.input_tokens) == ("running", 4)
    expected_m = [e.content for e in first.events] + [e.content for e in later.events]
    events_m = store.list_events("run-m", limit=100)
    assert [e.content for e in events_m] == expected_m
    assert [e.seq for e in events_m] == list(range(1, len(expected_m) + 1))
    assert [e.seq for e in store.list_events("run-o", limit=100)] == list(range(1, len(other.events) + 1))
    store.write([other, quiet])  # sent again: nothing stored twice, no seq taken
    assert len(store.list_events("run-o", limit=100)) == len(other.events)
    store.write([RunWrite(run=RunRecord("run-q", "thread-q", status="success"), events=[], spans=[])])
    odd = make_run("run-n", "thread-m", start=5)
    odd.run.duration_ms = math.nan
    store.write([odd, make_run("run-q", "thread-q", start=6)])
    got_odd = store.get_run("run-n")
    assert got_odd is not None and got_odd.duration_ms is not None and math.isnan(got_odd.duration_ms)
    seqs_n = [e.seq for e in store.list_events("run-n", limit=100)]
    assert seqs_n == list(range(len(expected_m) + 1, len(expected_m) + len(odd.events) + 1))
    events_q = store.list_events("run-q", limit=100)
    got_q = store.get_run("run-q")
    assert got_q is not None and got_q.status == "success"
    assert [e.seq for e in events_q] == list(range(1, len(events_q) + 1)) and events_q


def test_odd_thread_ids_get_their_own_seqs(store: PostgresStore) -> None:
    """Thread ids that JSON escapes (quotes, backslash, control characters, emoji, NUL) each get their
    own seqs from 1, in batch order, and continue from there in the next batch."""
    threads = [*ODD_TEXT, "\u2028 line separator", "nul\x00inside", "a" * 3000]
    first = [make_run(f"run-{i}", thread, start=i) for i, thread in enumerate(threads)]
    store.write(first)
    second = [make_run(f"run-again-{i}", thread, start=20 + i) for i, thread in enumerate(threads)]
    store.write(second)
    for i, thread in enumerate(threads):
        stored = _stored(thread)
        assert stored is not None
        got = store.list_events(f"run-{i}", limit=100)
        assert [e.seq for e in got] == list(range(1, len(first[i].events) + 1))
        assert {e.thread_id for e in got} == {stored}
        again = store.list_events(f"run-again-{i}", limit=100)
        start = len(first[i].events)
        assert [e.seq for e in again] == list(range(start + 1, start + len(second[i].events) + 1))


def _json_text(value: object) -> str:
    """The compact JSON text of ``value`` as the stdlib writes it (keys in their own order)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_span_json_shared_by_spans_reads_back_exactly(store: PostgresStore) -> None:
    """Spans sharing one resource object, or each with an empty events list, or with equal resources in
    other key orders, keep each span's own JSON text: one batch per case, read back through the store
    and as the text PostgreSQL holds."""
    shared = {"service.name": "svc é 🚀", "telemetry.sdk.version": "1.2", "big": 2**63 - 1, "nested": NESTED}
    cases: dict[str, list[tuple[dict[str, object], list[dict[str, object]]]]] = {
        "one-object": [(shared, []) for _ in range(4)],
        "equal-other-order": [({"b": 1, "a": "x"}, []), ({"a": "x", "b": 1}, []), ({"b": 1, "a": "x"}, [])],
        "empty-and-not": [({}, []), ({}, [{"name": "exception", "attributes": {"k": "é"}}]), ({}, [])],
        "shared-int-key": [({1: "int key", "k": 2**70}, [])] * 3,  # beyond orjson: the stdlib's JSON
        "empty-dicts": [({}, []), ({}, [])],
        "mixed-empty": [({}, []), ([], {}), ({}, [])],  # type: ignore[list-item]  # [] is not {}
    }
    writes = []
    for n, (case, spans) in enumerate(cases.items()):
        write = make_run(f"run-{case}", "thread-json", start=n)
        write.spans = [
            SpanRecord(write.run.trace_id or "", f"{i:016x}", None, write.run.run_id, "s", "CLIENT",
                       datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC), 1000.0,
                       "OK", resource=resource, events=events)  # type: ignore[arg-type]
            for i, (resource, events) in enumerate(spans)
        ]  # fmt: skip
        writes.append(write)
        store.write([write])
    for write in writes:
        got = sorted(store.list_spans(write.run.run_id), key=lambda s: s.span_id)
        assert [(s.resource, s.events) for s in got] == [
            (json.loads(_json_text(s.resource)), json.loads(_json_text(s.events))) for s in write.spans
        ]
        texts = store.sql(
            "SELECT resource::TEXT, events::TEXT FROM spans WHERE run_id = %s ORDER BY span_id",
            [write.run.run_id],
        )
        if "int-key" not in write.run.run_id:  # (the stdlib and orjson agree on everything else)
            assert texts == [(_json_text(s.resource), _json_text(s.events)) for s in write.spans]
        else:
            assert [json.loads(r) for r, _ in texts] == [{"1": "int key", "k": 2**70}] * 3


def test_every_run_field_lands_in_its_own_column(store: PostgresStore) -> None:
    """A run whose every field holds a different value (texts, counts, a huge count, aware and naive
    times, float, bool) reads back field for field, through the store and as plain SQL by column name."""
    from dataclasses import fields

    at = datetime(2025, 3, 4, 5, 6, 7, 890_123, tzinfo=ZONE)
    values: dict[str, object] = {}
    for i, field in enumerate(fields(RunRecord)):
        if field.name == "started_at":
            values[field.name] = at + timedelta(seconds=i)
        elif field.name == "ended_at":
            values[field.name] = datetime(2025, 3, 5)  # naive: taken as UTC
        elif field.name in ("duration_ms", "cost_usd"):
            values[field.name] = i + 0.125
        elif field.name == "complete":
            values[field.name] = True
        elif field.name == "usage_by_caller":
            values[field.name] = {"lead_agent": 7, "subagent:é": 2**62}
        elif field.type in ("int", int):
            values[field.name] = 1000 + i if field.name != "input_tokens" else 2**63 - 1
        else:
            values[field.name] = f"{field.name} é 🚀 {i}"
    run = RunRecord(**values)  # type: ignore[arg-type]
    events = [RunEvent(str(values["thread_id"]), str(values["run_id"]), "run_start", "lifecycle", at)]
    store.write([RunWrite(run=run, events=events)])
    got = store.get_run(str(values["run_id"]))
    assert got is not None
    for name, sent in values.items():
        if isinstance(sent, datetime):
            sent = sent if sent.tzinfo else sent.replace(tzinfo=UTC)  # naive is UTC
        assert getattr(got, name) == sent, name
    columns = [f.name for f in fields(RunRecord) if f.name != "usage_by_caller"]
    (row,) = store.sql(f"SELECT {', '.join(columns)}, usage_by_caller::TEXT FROM runs")
    for name, value in zip(columns, row, strict=False):
        sent = values[name]
        if isinstance(sent, datetime) and sent.tzinfo is None:
            sent = sent.replace(tzinfo=UTC)
        assert value == sent, name
    assert json.loads(row[-1]) == values["usage_by_caller"]
