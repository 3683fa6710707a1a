"""Pure mapping of ONE finished span to its rows: a ``spans`` row and its trace / message events.

Each event gets a sort key so that :mod:`._runwrite` can order a run's events by time with
deterministic tie-breaks (see :data:`SortKey`). Content is rendered here, on the exporter's thread,
from the handler's side channel or, failing that, from the ``gen_ai.*`` content attributes (which is
also how spans of other instrumentations are read; their caller is ``lead_agent``).

Cost: this runs on the ``BatchSpanProcessor``'s thread, competing for the GIL with the application,
for every span (``bench/bench_exporter.py`` measures it). So a span is read without copies
(:mod:`._spanread`): rows share the span's attribute dict and the converted resource, and must never
modify them. Datetimes are made once per span (shared by its row and its events); content is
rendered only where an event needs it (a chat span's output, a root's input, a tool's arguments and
result; an interrupt value only on an interrupted root) and each content JSON is parsed once. Spans
that are neither GenAI operations nor roots and have no events (chains, graph nodes) stop after
their row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, StatusCode

from .. import content as _content
from .. import genai_json as gj
from .. import semconv as sc
from ..pricing import Pricer
from ..records import UTC_FAST_US, SpanRecord, utc
from .emitter import Emitter, MappedSpan, SpanContent, end_at
from .span_events import custom_events, llm_events, retriever_events, tool_events
from .spanfacts import (
    EVENT_OPS,
    LLM_OPS,
    ROOT_OPS,
    RootInfo,
    announced_span_count,
    error_of,
    operation_named,
    run_name,
)
from .spanread import (
    KIND_NAMES,
    STATUS_NAMES,
    attributes_of,
    events_of,
    hex_span_id,
    hex_trace_id,
    plain,
    resource_of,
    trace_hex,
)

_CONTENT_KEYS = frozenset(sc.CONTENT_ATTRIBUTES)
_from_timestamp = datetime.fromtimestamp
_UTC = timezone.utc


def _row(
    span: ReadableSpan,
    run_id: str,
    with_content: bool,
    attrs: dict[str, Any],
    trace_id: str | None,
    ctx: SpanContext | None,
) -> tuple[SpanRecord, int, int, Sequence[Any]]:
    """The span's row, its start / end ns (the end never before the start) and its OTel events."""
    # public properties only (the SDK's private fields would save ~0.2 us per span, not worth
    # breaking on an SDK release that renames them); every one read once
    start = span.start_time or 0
    end = span.end_time or start
    if ctx is None:
        trace_text, span_text = hex_trace_id(0), hex_span_id(0)
    else:
        trace_text = trace_id if trace_id is not None else trace_hex(ctx.trace_id)
        span_text = ctx.span_id.to_bytes(8, "big").hex()  # hex_span_id, inline
    # records.utc, its fast path inline (this runs twice for every span)
    us = start // 1000
    start_at = _from_timestamp(us / 1e6, _UTC) if 0 <= us < UTC_FAST_US else utc(start)
    end_us = end // 1000
    if end_us == us:
        end_at = start_at
    else:
        end_at = _from_timestamp(end_us / 1e6, _UTC) if 0 <= end_us < UTC_FAST_US else utc(end)
    # the row shares the finished span's (immutable) attribute dict: nothing may modify it; tuple
    # values stay tuples (JSON arrays all the same)
    row = attrs
    if not with_content and not _CONTENT_KEYS.isdisjoint(attrs):
        row = {k: v for k, v in attrs.items() if k not in _CONTENT_KEYS}
    events = events_of(span)
    parent, kind, status = span.parent, span.kind, span.status
    code = status.status_code
    record = SpanRecord(
        trace_text,
        span_text,
        parent.span_id.to_bytes(8, "big").hex() if parent is not None else None,
        run_id,
        span.name,
        KIND_NAMES.get(id(kind)) or kind.name,
        start_at,
        end_at,
        (end - start) / 1e6,
        STATUS_NAMES.get(id(code)) or code.name,
        status.description,
        row,
        [{"name": e.name, "time_unix_nano": e.timestamp, "attributes": plain(e.attributes)} for e in events]
        if events
        else [],
        resource_of(span),
    )
    return record, start, end if end > start else start, events


def span_record(span: ReadableSpan, run_id: str, *, with_content: bool = True) -> SpanRecord:
    """The ``spans`` row of a span (content attributes dropped when the journal records no content)."""
    return _row(span, run_id, with_content, attributes_of(span), None, span.get_span_context())[0]


def _root_info(
    span: ReadableSpan,
    attrs: Mapping[str, Any],
    mapped: MappedSpan,
    events: Sequence[Any],
    content: SpanContent,
) -> RootInfo:
    if attrs.get(sc.RJ_ABANDONED):
        status = "abandoned"
    elif attrs.get(sc.RJ_INTERRUPTED):
        status = "interrupted"
    elif span.status.status_code is StatusCode.ERROR:
        status = "error"
    else:
        status = "success"
    message, error_type = error_of(span, attrs, events) if status == "error" else (None, None)
    resumed = bool(attrs.get(sc.RJ_RESUMED))
    if resumed:
        input_text, human = content.get(_content.KEY_RESUME_VALUE), None
    else:
        data, input_text = content.parsed(sc.GEN_AI_INPUT_MESSAGES)
        human = None if input_text is None else gj.human_text_of(input_text, data)
    record = mapped.record
    return RootInfo(
        name=run_name(span, attrs),
        trace_id=record.trace_id,
        span_id=record.span_id,
        start_ns=mapped.start_ns,
        end_ns=mapped.end_ns,
        status=status,
        error_message=message,
        error_type=error_type,
        input_text=input_text,
        human_text=human,
        interrupt_value=content.get(_content.KEY_INTERRUPT_VALUE) if status == "interrupted" else None,
        resumed=resumed,
        start_at=record.start_time,
        end_at=end_at(mapped),
        span_count=announced_span_count(attrs),
    )


def map_span(
    span: ReadableSpan,
    run_id: str,
    thread_id: str,
    *,
    with_content: bool = True,
    candidate: bool = False,
    trace_id: str | None = None,
    attrs: dict[str, Any] | None = None,
    pricer: Pricer | None = None,
) -> MappedSpan:
    """Map one finished span to its rows: the span row and its trace / message events.

    ``candidate``: also compute :class:`RootInfo` (for foreign spans, any of which may turn out to be
    the top of its group); handler roots always get one. ``trace_id`` / ``attrs``: the span's trace
    id as hex / :func:`attributes_of` the span, when the caller already has them. ``pricer``: prices
    model calls (``cost_usd`` / ``price_source`` in ``llm_end``); without one, calls are not priced.
    """
    if attrs is None:
        attrs = attributes_of(span)  # read-only
    return map_one(
        span, span.get_span_context(), attrs, trace_id, run_id, thread_id, with_content, candidate, pricer
    )


def map_one(
    span: ReadableSpan,
    ctx: SpanContext | None,
    attrs: dict[str, Any],
    trace_id: str | None,
    run_id: str,
    thread_id: str,
    with_content: bool,
    candidate: bool,
    pricer: Pricer | None,
) -> MappedSpan:
    """:func:`map_span` with the span's context and attributes already read, arguments positional
    (the assembler calls it for every span)."""
    record, start, end, events = _row(span, run_id, with_content, attrs, trace_id, ctx)
    get = attrs.get
    caller = get(sc.RJ_CALLER)
    is_root = bool(get(sc.RJ_IS_ROOT))
    mapped = MappedSpan(
        record,
        start,
        end,
        [],
        caller if isinstance(caller, str) and caller else sc.CALLER_LEAD_AGENT,
        None,
        None,
        is_root,
    )
    op = get(sc.GEN_AI_OPERATION_NAME)  # operation_named's first answer, inline
    if not (isinstance(op, str) and op):
        op = operation_named(record.name, attrs)
        if op is None and not events and not (candidate or is_root):
            return mapped  # a plain chain / graph node span: its row is all it contributes
    root_facts = candidate or is_root or (op in ROOT_OPS and sc.RJ_RUN_ID not in attrs)
    if not events and op not in EVENT_OPS:  # e.g. an agent / workflow span: no events of its own
        content = SpanContent(ctx, with_content, attrs)  # taken even if unread: nothing else drops it
        if root_facts:
            mapped.root = _root_info(span, attrs, mapped, events, content)
        return mapped  # its root facts are its events (made per run)
    out = Emitter(span, mapped, run_id, thread_id, attrs, events, ctx, with_content)  # also its content
    if root_facts:
        mapped.root = _root_info(span, attrs, mapped, events, out)
    if op in LLM_OPS:
        llm_events(out, attrs, out, pricer)
    elif op == sc.OP_EXECUTE_TOOL:
        tool_events(out, span, attrs, out)
    elif op == sc.OP_RETRIEVAL:
        retriever_events(out, span, attrs, out)
    if events:
        custom_events(out, out)
    if get(sc.RJ_ABANDONED) and not is_root:  # ended by the handler's TTL, not by LangChain
        for key, event in mapped.events:
            if key == out.end_key:
                event.metadata["abandoned"] = True
    return mapped


def as_duplicate(mapped: MappedSpan, run_id: str) -> MappedSpan:
    """Another instrumentation's GenAI span inside one of our runs' traces: it reports a model call our
    own span owns (e.g. the provider SDK's ``chat`` span below our ``chat`` span). It stays in the run's
    ``spans`` rows, marked ``runjournal.duplicate``, and adds no event, no tokens and no call."""
    record = mapped.record
    attributes = dict(record.attributes)  # the row shares the span's dict: never modify that one
    attributes[sc.RJ_DUPLICATE] = True
    row = replace(record, run_id=run_id, attributes=attributes)
    return MappedSpan(row, mapped.start_ns, mapped.end_ns, duplicate=True)


def map_duplicate(
    span: ReadableSpan, run_id: str, *, with_content: bool, trace_id: str, attrs: dict[str, Any]
) -> MappedSpan:
    """:func:`as_duplicate` of a span not mapped yet: its row only."""
    _content.take(span)  # nothing else would drop what a handler may have handed over for it
    record, start, end, _events = _row(span, run_id, with_content, attrs, trace_id, span.get_span_context())
    return as_duplicate(MappedSpan(record, start, end), run_id)
