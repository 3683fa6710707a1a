"""Row <-> plain-value conversion, page selection and batch de-duplication shared by the stores."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from ..records import TOKEN_FIELDS, RunEvent, RunRecord, RunWrite, SpanRecord, TokenUsage

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

RUN_TOKEN_FIELDS = TOKEN_FIELDS

RUN_FIELDS: tuple[str, ...] = (
    "run_id",
    "thread_id",
    "trace_id",
    "name",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    *RUN_TOKEN_FIELDS,
    "message_count",
    "first_human_message",
    "last_ai_message",
    "error",
    "usage_by_caller",
    "service_name",
    "cost_usd",
    "unpriced_call_count",
    "complete",
)


def _default(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_default).encode

try:  # orjson encodes 5-10x faster; the stdlib covers what it refuses (ints beyond 64 bits, ...)
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _orjson = None  # type: ignore[assignment]
_ORJSON_OPTIONS = 0 if _orjson is None else _orjson.OPT_NON_STR_KEYS | _orjson.OPT_NAIVE_UTC
_STR_KEY_OPTIONS = 0 if _orjson is None else _orjson.OPT_NAIVE_UTC


def dumpb(value: Any) -> bytes:
    """Compact UTF-8 JSON that never fails: unknown objects become their ``str``, NaN becomes null."""
    if _orjson is not None:
        try:
            return _orjson.dumps(value, default=str, option=_ORJSON_OPTIONS)
        except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
            pass
    return _ENCODE(_finite(value)).encode("utf-8", "replace")  # lone surrogates become "?"


_LINE_BREAK = None if _orjson is None else _orjson.Fragment(b"\n")
_RECORD_GAP = None if _orjson is None else _orjson.Fragment(b"\0" * 16)
_RECORD_SPLIT = b",%s," % (b"\0" * 16)


def dumpb_all(values: Iterable[Any]) -> list[bytes]:
    """:func:`dumpb` of each value, in one orjson call (see :func:`jsonl_groups` for the trick)."""
    values = list(values)
    if values and _orjson is not None:
        items: list[Any] = [_LINE_BREAK] * (2 * len(values) - 1)
        items[0::2] = values
        try:
            encoded = _orjson.dumps(items, default=str, option=_ORJSON_OPTIONS)
        except (TypeError, ValueError):
            pass
        else:
            return [piece.strip(b",") for piece in encoded[1:-1].split(b"\n")]
    return [dumpb(v) for v in values]


def _dumpb_str_keys(value: Any) -> bytes | None:
    """orjson's encoding of ``value`` as :func:`dumpb` writes it, or ``None`` if orjson refuses it.

    Tried first without ``OPT_NON_STR_KEYS`` (a third faster; the same text when every key is a
    string), then with it.
    """
    for option in (_STR_KEY_OPTIONS, _ORJSON_OPTIONS):
        try:
            return _orjson.dumps(value, default=str, option=option)
        except (TypeError, ValueError):  # a non-str key; an int beyond 64 bits (the stdlib takes it)
            continue
    return None


def jsonl_groups(groups: Sequence[Sequence[Any]]) -> list[bytes]:
    """JSON Lines text (each line newline-terminated) for each group of records, in one orjson call.

    All records are encoded as one array with a raw run of NUL bytes between them. Compact JSON
    never contains a raw NUL (in strings it is escaped), so splitting at ``,<NULs>,`` yields exactly
    the records. The run is long so that the byte search skips ahead: with a short separator (a
    newline) the search is 2-3x slower and the split costs as much as half the encoding.
    """
    if _orjson is not None and groups and all(groups):
        records = [record for group in groups for record in group]
        items: list[Any] = [_RECORD_GAP] * (2 * len(records) - 1)
        items[0::2] = records
        encoded = _dumpb_str_keys(items)
        if encoded is not None:
            lines = encoded.split(_RECORD_SPLIT)
            lines[0] = lines[0][1:]  # the array's brackets
            lines[-1] = lines[-1][:-1]
            out, start = [], 0
            for group in groups:
                end = start + len(group)
                lines[end - 1] += b"\n"
                out.append(b"\n".join(lines[start:end]))
                start = end
            return out
    return [b"".join([dumpb(record) + b"\n" for record in group]) for group in groups]


def loads(line: bytes | str) -> Any:
    """Parse one JSON document (orjson, else the stdlib, which also takes NaN from older files)."""
    if _orjson is not None:
        try:
            return _orjson.loads(line)
        except ValueError:
            pass
    return json.loads(line)


def dumps(value: Any) -> str:
    """:func:`dumpb` as text."""
    return dumpb(value).decode()


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats as ``None`` (JSON has no NaN; DuckDB's JSON type rejects it)."""
    if isinstance(value, float):
        return value if value - value == 0 else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def to_us(value: datetime | None) -> int | None:
    """Microseconds since the epoch (naive datetimes are taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int | None) -> datetime | None:
    """The UTC datetime of an epoch-microsecond count."""
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC (naive datetimes are taken as UTC), so JSON text always ends in +00:00."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    if value.tzinfo is timezone.utc:
        return value
    return value.astimezone(timezone.utc)


def run_to_dict(run: RunRecord) -> dict[str, Any]:
    """A run summary as JSON-ready values (timestamps as UTC datetimes; :func:`jsonl` writes ISO-8601)."""
    row = {name: getattr(run, name) for name in RUN_FIELDS}
    row["started_at"] = utc(run.started_at)
    row["ended_at"] = utc(run.ended_at)
    return row


def run_from_dict(row: Mapping[str, Any]) -> RunRecord:
    """Inverse of :func:`run_to_dict` (unknown keys ignored)."""
    values: dict[str, Any] = {name: row.get(name) for name in RUN_FIELDS if name in row}
    for name in ("started_at", "ended_at"):
        if isinstance(values.get(name), str):
            values[name] = datetime.fromisoformat(values[name])
    for name in (*RUN_TOKEN_FIELDS, "message_count", "unpriced_call_count"):
        values[name] = int(values.get(name) or 0)
    cost = values.get("cost_usd")
    values["cost_usd"] = None if cost is None else float(cost)
    values["usage_by_caller"] = dict(values.get("usage_by_caller") or {})
    return RunRecord(**values)


def event_from_values(
    thread_id: str,
    run_id: str,
    seq: int,
    event_type: str,
    category: str,
    content: str | None,
    metadata: Any,
    created_at: datetime,
    trace_id: str | None,
    span_id: str | None,
) -> RunEvent:
    """A RunEvent from stored values (``metadata`` as JSON text or already decoded)."""
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return RunEvent(
        thread_id=thread_id,
        run_id=run_id,
        event_type=event_type,
        category=category,
        created_at=created_at,
        content=content,
        metadata=metadata if isinstance(metadata, dict) else {},
        trace_id=trace_id,
        span_id=span_id,
        seq=seq,
    )


def span_to_dict(span: SpanRecord) -> dict[str, Any]:
    """A span row as JSON-ready values (timestamps as UTC datetimes)."""
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "run_id": span.run_id,
        "name": span.name,
        "kind": span.kind,
        "start_time": utc(span.start_time),
        "end_time": utc(span.end_time),
        "duration_ms": span.duration_ms,
        "status_code": span.status_code,
        "status_message": span.status_message,
        "attributes": span.attributes,
        "events": span.events,
        "resource": span.resource,
    }


def latest_runs(runs: Iterable[RunRecord]) -> list[RunRecord]:
    """One record per ``run_id``, the last one given winning (first-seen order kept)."""
    latest: dict[str, RunRecord] = {}
    for run in runs:
        latest[run.run_id] = run
    return list(latest.values())


def assign_seqs(events: Sequence[RunEvent], last_seq: Mapping[str, int]) -> tuple[list[int], dict[str, int]]:
    """Seqs for ``events`` in list order after each thread's ``last_seq``; returns (seqs, new last)."""
    new_last = dict(last_seq)
    seqs = []
    for event in events:
        seq = new_last.get(event.thread_id, 0) + 1
        new_last[event.thread_id] = seq
        seqs.append(seq)
    return seqs, {thread: new_last[thread] for thread in {e.thread_id for e in events}}


def select_page(seqs: Sequence[int], after_seq: int | None, before_seq: int | None, limit: int) -> list[int]:
    """The seqs of one page from ascending ``seqs``, per the cursor rules in ``stores._base``.

    ``after_seq`` (with or without ``before_seq``): the first ``limit`` in the open interval;
    only ``before_seq``: the last ``limit`` below it; neither: the first ``limit``.
    """
    chosen = [
        s for s in seqs if (after_seq is None or s > after_seq) and (before_seq is None or s < before_seq)
    ]
    if before_seq is not None and after_seq is None:
        return chosen[-limit:]
    return chosen[:limit]


def merge_usage(usage: TokenUsage, run: RunRecord) -> None:
    """Add one run's totals and caller split into ``usage``."""
    usage.run_count += 1
    for name in RUN_TOKEN_FIELDS:
        setattr(usage, name, getattr(usage, name) + int(getattr(run, name) or 0))
    for caller, tokens in run.usage_by_caller.items():
        usage.by_caller[caller] = usage.by_caller.get(caller, 0) + int(tokens or 0)
    usage.unpriced_call_count += int(run.unpriced_call_count or 0)
    if run.cost_usd is not None:
        usage.cost_usd = run.cost_usd if usage.cost_usd is None else usage.cost_usd + run.cost_usd


def span_from_dict(row: Mapping[str, Any]) -> SpanRecord:
    """Inverse of :func:`span_to_dict` (timestamps as ISO-8601 text or datetimes)."""
    start: Any = row.get("start_time")
    end: Any = row.get("end_time")
    start_time = datetime.fromisoformat(start) if isinstance(start, str) else start
    end_time = datetime.fromisoformat(end) if isinstance(end, str) else end
    return SpanRecord(
        trace_id=str(row.get("trace_id") or ""),
        span_id=str(row.get("span_id") or ""),
        parent_span_id=row.get("parent_span_id"),
        run_id=str(row.get("run_id") or ""),
        name=str(row.get("name") or ""),
        kind=str(row.get("kind") or ""),
        start_time=start_time,
        end_time=end_time,
        duration_ms=float(row.get("duration_ms") or 0.0),
        status_code=str(row.get("status_code") or ""),
        status_message=row.get("status_message"),
        attributes=dict(row.get("attributes") or {}),
        events=list(row.get("events") or []),
        resource=dict(row.get("resource") or {}),
    )


def span_key(trace_id: str | None, span_id: str | None) -> tuple[str | None, str | None]:
    """What identifies a span (and the events made from it) across deliveries."""
    return trace_id, span_id


def drop_written(
    batch: Sequence[RunWrite], written: Iterable[tuple[str | None, str | None]]
) -> list[RunWrite]:
    """``batch`` without what a store already holds (DESIGN.md "Writes are idempotent per span").

    ``written``: span keys (:func:`span_key`) already stored. A unit whose spans are all stored (or
    appear earlier in the batch) is dropped whole, its run summary too (it is no newer than the
    one stored); otherwise its stored spans and their events are dropped. Units without spans (a
    summary-only update, such as marking a run abandoned) are always kept.
    """
    seen = set(written)
    out: list[RunWrite] = []
    for unit in batch:
        keys = {span_key(s.trace_id, s.span_id) for s in unit.spans}
        old = keys & seen
        if not old:
            out.append(unit)
        elif old != keys:
            out.append(
                RunWrite(
                    run=unit.run,
                    events=[e for e in unit.events if span_key(e.trace_id, e.span_id) not in old],
                    spans=[s for s in unit.spans if span_key(s.trace_id, s.span_id) not in old],
                )
            )
        seen |= keys
    return out
