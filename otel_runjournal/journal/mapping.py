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

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from .. import content as _content
from .. import semconv as sc
from ..records import RunEvent, SpanRecord
from . import genai_json as gj
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
    utc,
)

_LLM_OPS = frozenset({sc.OP_CHAT, sc.OP_TEXT_COMPLETION})
ROOT_OPS = frozenset({sc.OP_INVOKE_AGENT, sc.OP_INVOKE_WORKFLOW})
_EVENT_OPS = frozenset({*_LLM_OPS, sc.OP_EXECUTE_TOOL, sc.OP_RETRIEVAL})  # operations with events
_KNOWN_OPS = frozenset(
    {
        sc.OP_CHAT,
        sc.OP_TEXT_COMPLETION,
        sc.OP_EMBEDDINGS,
        sc.OP_RETRIEVAL,
        sc.OP_EXECUTE_TOOL,
        sc.OP_INVOKE_AGENT,
        sc.OP_INVOKE_WORKFLOW,
    }
)
_RUN_TYPE_OPS = {
    "llm": sc.OP_TEXT_COMPLETION,
    "chat_model": sc.OP_CHAT,
    "tool": sc.OP_EXECUTE_TOOL,
    "retriever": sc.OP_RETRIEVAL,
}
_FOREIGN_KIND_OPS = {  # OpenLLMetry's markers → GenAI operations
    "tool": sc.OP_EXECUTE_TOOL,
    "workflow": sc.OP_INVOKE_WORKFLOW,
    "agent": sc.OP_INVOKE_AGENT,
    "chat": sc.OP_CHAT,
    "completion": sc.OP_TEXT_COMPLETION,
    "embedding": sc.OP_EMBEDDINGS,
}
_USAGE_ATTRS = frozenset(
    {
        sc.GEN_AI_USAGE_INPUT_TOKENS,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        *sc.LEGACY_INPUT_TOKENS_ATTRIBUTES,
        *sc.LEGACY_OUTPUT_TOKENS_ATTRIBUTES,
    }
)

SortKey = tuple[int, int, int, int, str, int]
"""(group, time ns, rank, span start ns, span id, sub). Group: run_start / human_message first,
body, run end last. Rank at equal times: span ends before span starts (a tool starts after the model
call that asked for it), then point events; a span's own start always precedes its end (zero-length
spans put the end on the start's key with a large ``sub``); ``ai_message`` / ``summary`` take the key
of their ``llm_end`` / ``summarization`` event with ``sub + 1``."""
G_FIRST, G_BODY, G_LAST = 0, 1, 2
_R_END, _R_START, _R_POINT = 0, 1, 2
Keyed = tuple[SortKey, RunEvent]


@dataclass(slots=True)
class Usage:
    """Token counts of one model call."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_write_input_tokens": self.cache_write_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


@dataclass(slots=True)
class RootInfo:
    """What a run's root span says about the run (lifecycle events and the ``runs`` row)."""

    name: str | None
    trace_id: str
    span_id: str | None
    start_ns: int
    end_ns: int
    status: str  # success | error | interrupted | abandoned
    error_message: str | None = None
    error_type: str | None = None
    input_text: str | None = None  # raw input content (GenAI messages JSON or text)
    human_text: str | None = None  # first human message of the input
    interrupt_value: str | None = None
    start_at: datetime | None = None  # utc(start_ns) / utc(end_ns), when already made
    end_at: datetime | None = None


@dataclass(slots=True)
class MappedSpan:
    """One span's contribution to its run: rows, usage and (for possible roots) root facts."""

    record: SpanRecord
    start_ns: int = 0
    end_ns: int = 0
    events: list[Keyed] = field(default_factory=list)
    caller: str = sc.CALLER_LEAD_AGENT
    usage: Usage | None = None  # set on model-call spans (also failed ones: they count as calls)
    root: RootInfo | None = None  # set on handler roots, candidates and foreign agent / workflow spans
    is_root: bool = False  # the handler marked it as its run's root


def _int(attrs: Mapping[str, Any], names: Iterable[str]) -> int:
    for name in names:
        value = attrs.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return 0


def operation(span: ReadableSpan, attrs: Mapping[str, Any] | None = None) -> str | None:
    """The GenAI operation of a span: attribute, name's first word, run type, foreign markers, usage."""
    return _operation(span.name, attributes_of(span) if attrs is None else attrs)


def _operation(name: str, attrs: Mapping[str, Any]) -> str | None:
    """:func:`operation` of a span named ``name``."""
    get = attrs.get
    op = get(sc.GEN_AI_OPERATION_NAME)
    if isinstance(op, str) and op:
        return op
    first, space, _ = name.partition(" ")
    if space and first in _KNOWN_OPS:
        return first
    run_type = get(sc.RJ_RUN_TYPE)
    if isinstance(run_type, str) and run_type in _RUN_TYPE_OPS:
        return _RUN_TYPE_OPS[run_type]
    for marker in (sc.LLM_REQUEST_TYPE, sc.TRACELOOP_SPAN_KIND):
        value = get(marker)
        if isinstance(value, str) and value in _FOREIGN_KIND_OPS:
            return _FOREIGN_KIND_OPS[value]
    if not _USAGE_ATTRS.isdisjoint(attrs):
        return sc.OP_CHAT
    return None


def is_genai(span: ReadableSpan, attrs: Mapping[str, Any] | None = None) -> bool:
    """Whether the journal records this span: ours, or one following the GenAI conventions."""
    attrs = attributes_of(span) if attrs is None else attrs
    if sc.RJ_RUN_ID in attrs or operation(span, attrs) is not None:
        return True
    return sc.GEN_AI_PROVIDER_NAME in attrs or any(a in attrs for a in sc.LEGACY_PROVIDER_ATTRIBUTES)


def is_local_root(span: ReadableSpan) -> bool:
    """No parent, or a parent in another process: this span ends its trace's local part."""
    return span.parent is None or span.parent.is_remote


def caller_bucket(caller: str) -> str:
    """Which roll-up column a caller's tokens go to."""
    if caller.startswith(sc.CALLER_SUBAGENT_PREFIX):
        return "subagent_tokens"
    if caller.startswith(sc.CALLER_MIDDLEWARE_PREFIX):
        return "middleware_tokens"
    return "lead_agent_tokens"


_INPUT_NAMES = (sc.GEN_AI_USAGE_INPUT_TOKENS, *sc.LEGACY_INPUT_TOKENS_ATTRIBUTES)
_OUTPUT_NAMES = (sc.GEN_AI_USAGE_OUTPUT_TOKENS, *sc.LEGACY_OUTPUT_TOKENS_ATTRIBUTES)
_CACHE_READ_NAMES = (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, *sc.LEGACY_CACHE_READ_ATTRIBUTES)
_CACHE_WRITE_NAMES = (sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, *sc.LEGACY_CACHE_WRITE_ATTRIBUTES)
_REASONING_NAMES = (sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,)


_LEGACY_USAGE = frozenset(
    {*_INPUT_NAMES[1:], *_OUTPUT_NAMES[1:], *_CACHE_READ_NAMES[1:], *_CACHE_WRITE_NAMES[1:]}
)


def _usage(attrs: Mapping[str, Any]) -> Usage:
    get = attrs.get
    i, o = get(sc.GEN_AI_USAGE_INPUT_TOKENS), get(sc.GEN_AI_USAGE_OUTPUT_TOKENS)
    cr, cw = get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS), get(sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS)
    r = get(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS)
    if (  # the common case, spelled out (this runs for every model call): current names, ints or absent
        (i is None or type(i) is int)
        and (o is None or type(o) is int)
        and (cr is None or type(cr) is int)
        and (cw is None or type(cw) is int)
        and (r is None or type(r) is int)
        and _LEGACY_USAGE.isdisjoint(attrs)
    ):
        return Usage(i or 0, o or 0, cr or 0, cw or 0, r or 0)
    return Usage(
        input_tokens=_int(attrs, _INPUT_NAMES),
        output_tokens=_int(attrs, _OUTPUT_NAMES),
        cached_input_tokens=_int(attrs, _CACHE_READ_NAMES),
        cache_write_input_tokens=_int(attrs, _CACHE_WRITE_NAMES),
        reasoning_tokens=_int(attrs, _REASONING_NAMES),
    )


class _Content:
    """A span's content: the side channel first, then the gen_ai.* content attributes."""

    __slots__ = ("_attrs", "_side", "enabled")

    def __init__(self, span: ReadableSpan, enabled: bool, attrs: Mapping[str, Any]) -> None:
        self.enabled = enabled
        if enabled:
            side = getattr(getattr(span, "_attributes", None), _content.SIDE_CHANNEL_ATTR, None)
            self._side: Mapping[str, Any] = side if side is not None else (_content.read(span) or {})
            self._attrs: Mapping[str, Any] = attrs
        else:
            self._side = self._attrs = {}

    def get(self, key: str) -> str | None:
        if key in self._side:
            return _content.render(self._side[key])
        value = self._attrs.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, (tuple, list)):  # a foreign instrumentation's array attribute
            return json.dumps(list(value))
        return None

    def raw(self, key: str) -> Any:
        return self._side.get(key)


def _error(
    span: ReadableSpan, attrs: Mapping[str, Any], events: Sequence[Any] | None = None
) -> tuple[str | None, str | None]:
    """(message, type) of a failed span."""
    message: Any = span.status.description
    error_type: Any = attrs.get(sc.ERROR_TYPE)
    for event in span.events if events is None else events:
        if event.name == sc.EVENT_EXCEPTION:
            ev_attrs = event.attributes or {}
            message = message or ev_attrs.get("exception.message")
            error_type = error_type or ev_attrs.get("exception.type")
    return (
        str(message) if message is not None else None,
        str(error_type) if error_type is not None else None,
    )


def _run_name(span: ReadableSpan, attrs: Mapping[str, Any]) -> str:
    agent = attrs.get(sc.GEN_AI_AGENT_NAME)
    if isinstance(agent, str) and agent:
        return agent
    first, _, rest = span.name.partition(" ")
    return rest if first in _KNOWN_OPS and rest else span.name


# --- rows -------------------------------------------------------------------------------------------
_CONTENT_KEYS = frozenset(sc.CONTENT_ATTRIBUTES)


def _row(
    span: ReadableSpan, run_id: str, with_content: bool, attrs: dict[str, Any], trace_id: str | None
) -> tuple[SpanRecord, int, int, Sequence[Any]]:
    """The span's row, its start / end ns (the end never before the start) and its OTel events."""
    # public properties only (the SDK's private fields would save ~0.2 us per span, not worth
    # breaking on an SDK release that renames them)
    ctx, name, kind, parent, status = span.get_span_context(), span.name, span.kind, span.parent, span.status
    start, end = span.start_time or 0, span.end_time
    end = end or start
    if ctx is None:
        trace_text, span_text = hex_trace_id(0), hex_span_id(0)
    else:
        trace_text = trace_id if trace_id is not None else trace_hex(ctx.trace_id)
        span_text = hex_span_id(ctx.span_id)
    start_at = utc(start)
    end_at = start_at if end // 1000 == start // 1000 else utc(end)
    # the row shares the finished span's (immutable) attribute dict: nothing may modify it; tuple
    # values stay tuples (JSON arrays all the same)
    row = attrs
    if not with_content and not _CONTENT_KEYS.isdisjoint(attrs):
        row = {k: v for k, v in attrs.items() if k not in _CONTENT_KEYS}
    events = events_of(span)
    record = SpanRecord(
        trace_text,
        span_text,
        hex_span_id(parent.span_id) if parent is not None else None,
        run_id,
        name,
        KIND_NAMES.get(id(kind)) or kind.name,
        start_at,
        end_at,
        (end - start) / 1e6,
        STATUS_NAMES.get(id(status.status_code)) or status.status_code.name,
        status.description,
        row,
        [{"name": e.name, "time_unix_nano": e.timestamp, "attributes": plain(e.attributes)} for e in events]
        if events
        else [],
        resource_of(span),
    )
    return record, start, end if end > start else start, events


def _end_at(mapped: MappedSpan) -> datetime:
    """``utc(mapped.end_ns)``, taken from the row (whose end is the span's, even before its start)."""
    record = mapped.record
    return record.end_time if record.end_time > record.start_time else record.start_time


def span_record(span: ReadableSpan, run_id: str, *, with_content: bool = True) -> SpanRecord:
    """The ``spans`` row of a span (content attributes dropped when the journal records no content)."""
    return _row(span, run_id, with_content, attributes_of(span), None)[0]


def root_info(
    span: ReadableSpan, *, with_content: bool = True, attrs: Mapping[str, Any] | None = None
) -> RootInfo:
    """Root facts of a span that (may) start a run."""
    own = attributes_of(span)
    attrs = own if attrs is None else attrs
    record, start, end, events = _row(span, "", with_content, own, None)
    mapped = MappedSpan(record, start, end)
    return _root_info(span, attrs, mapped, events, _Content(span, with_content, attrs))


def _root_info(
    span: ReadableSpan, attrs: Mapping[str, Any], mapped: MappedSpan, events: Sequence[Any], content: _Content
) -> RootInfo:
    if attrs.get(sc.RJ_ABANDONED):
        status = "abandoned"
    elif attrs.get(sc.RJ_INTERRUPTED):
        status = "interrupted"
    elif span.status.status_code is StatusCode.ERROR:
        status = "error"
    else:
        status = "success"
    message, error_type = _error(span, attrs, events) if status == "error" else (None, None)
    input_text = content.get(sc.GEN_AI_INPUT_MESSAGES)
    record = mapped.record
    return RootInfo(
        name=_run_name(span, attrs),
        trace_id=record.trace_id,
        span_id=record.span_id,
        start_ns=mapped.start_ns,
        end_ns=mapped.end_ns,
        status=status,
        error_message=message,
        error_type=error_type,
        input_text=input_text,
        human_text=gj.human_text(input_text),
        interrupt_value=content.get(_content.KEY_INTERRUPT_VALUE) if status == "interrupted" else None,
        start_at=record.start_time,
        end_at=_end_at(mapped),
    )


class _Emitter:
    """Collects one span's keyed events; knows the span's start / end keys and its error."""

    __slots__ = (
        "end_at",
        "end_key",
        "error_message",
        "error_type",
        "events",
        "failed",
        "latency_ms",
        "mapped",
        "run_id",
        "span_id",
        "start_at",
        "start_key",
        "thread_id",
        "trace_id",
    )

    def __init__(
        self,
        span: ReadableSpan,
        mapped: MappedSpan,
        run_id: str,
        thread_id: str,
        attrs: Mapping[str, Any],
        events: Sequence[Any],
    ) -> None:
        self.mapped, self.run_id, self.thread_id, self.events = mapped, run_id, thread_id, events
        record = mapped.record
        self.trace_id = record.trace_id
        span_id = self.span_id = record.span_id
        self.start_at, self.end_at = record.start_time, _end_at(mapped)
        start, end = mapped.start_ns, mapped.end_ns
        self.start_key: SortKey = (G_BODY, start, _R_START, start, span_id, 0)
        # the end sorts before starts at the same instant, but never before its own start
        self.end_key: SortKey = (
            (G_BODY, end, _R_END, start, span_id, 0)
            if end > start
            else (G_BODY, start, _R_START, start, span_id, 1_000_000)
        )
        self.latency_ms = (end - start) / 1e6
        self.failed = record.status_code == "ERROR"  # the span's StatusCode.ERROR
        self.error_message, self.error_type = _error(span, attrs, events) if self.failed else (None, None)

    def emit(
        self, key: SortKey, event_type: str, category: str, text: str | None, meta: dict[str, Any]
    ) -> None:
        at = key[1]
        mapped = self.mapped
        if at == mapped.start_ns:
            created = self.start_at
        elif at == mapped.end_ns:
            created = self.end_at
        else:
            created = utc(at)
        event = RunEvent(
            self.thread_id,
            self.run_id,
            event_type,
            category,
            created,
            text,
            meta,
            self.trace_id,
            self.span_id,
        )
        mapped.events.append((key, event))


def map_span(
    span: ReadableSpan,
    run_id: str,
    thread_id: str,
    *,
    with_content: bool = True,
    candidate: bool = False,
    trace_id: str | None = None,
    attrs: dict[str, Any] | None = None,
) -> MappedSpan:
    """Map one finished span to its rows: the span row and its trace / message events.

    ``candidate``: also compute :class:`RootInfo` (for foreign spans, any of which may turn out to be
    the top of its group); handler roots always get one. ``trace_id`` / ``attrs``: the span's trace
    id as hex / :func:`attributes_of` the span, when the caller already has them.
    """
    if attrs is None:
        attrs = attributes_of(span)  # read-only
    record, start, end, events = _row(span, run_id, with_content, attrs, trace_id)
    caller = attrs.get(sc.RJ_CALLER)
    mapped = MappedSpan(
        record,
        start,
        end,
        [],
        caller if isinstance(caller, str) and caller else sc.CALLER_LEAD_AGENT,
        None,
        None,
        bool(attrs.get(sc.RJ_IS_ROOT)),
    )
    op = _operation(record.name, attrs)
    if op is None and not events and not (candidate or mapped.is_root):
        return mapped  # a plain chain / graph node span: its row is all it contributes
    content = _Content(span, with_content, attrs)
    if candidate or mapped.is_root or (op in ROOT_OPS and sc.RJ_RUN_ID not in attrs):
        mapped.root = _root_info(span, attrs, mapped, events, content)
    if not events and op not in _EVENT_OPS:
        return mapped  # e.g. an agent / workflow span: its root facts are its events (made per run)
    out = _Emitter(span, mapped, run_id, thread_id, attrs, events)
    if op in _LLM_OPS:
        _llm_events(out, attrs, content)
    elif op == sc.OP_EXECUTE_TOOL:
        _tool_events(out, span, attrs, content)
    elif op == sc.OP_RETRIEVAL:
        _retriever_events(out, span, attrs, content)
    if events:
        _custom_events(out, content)
    if attrs.get(sc.RJ_ABANDONED) and not mapped.is_root:  # ended by the handler's TTL, not by LangChain
        for key, event in mapped.events:
            if key == out.end_key:
                event.metadata["abandoned"] = True
    return mapped


def _llm_events(out: _Emitter, attrs: Mapping[str, Any], content: _Content) -> None:
    model = attrs.get(sc.GEN_AI_REQUEST_MODEL) or attrs.get(sc.GEN_AI_RESPONSE_MODEL)
    caller = out.mapped.caller
    usage = out.mapped.usage = _usage(attrs)
    out.emit(out.start_key, "llm_start", "trace", None, {"model_name": model, "caller": caller})
    if out.failed:
        failure = {"error_type": out.error_type, "caller": caller, "model_name": model}
        failure["latency_ms"] = out.latency_ms
        out.emit(out.end_key, "llm_error", "trace", out.error_message, failure)
        return
    text, calls = gj.output(content.get(sc.GEN_AI_OUTPUT_MESSAGES))
    text = text or content.get("gen_ai.completion.0.content") or ""  # OpenLLMetry-style spans
    finish = attrs.get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
    meta: dict[str, Any] = {
        "model": attrs.get(sc.GEN_AI_RESPONSE_MODEL) or model,
        "model_name": model,
        "caller": caller,
        "usage": usage.as_dict(),
        "latency_ms": out.latency_ms,
        "finish_reasons": list(finish) if isinstance(finish, (list, tuple)) else [],
        "tool_calls": calls,
    }
    if sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in attrs:
        meta["time_to_first_chunk"] = attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    out.emit(out.end_key, "llm_end", "trace", text or None, meta)
    if text and caller == sc.CALLER_LEAD_AGENT:
        key = out.end_key
        meta = {"model_name": model, "tool_calls": calls}
        out.emit((*key[:5], key[5] + 1), "ai_message", "message", text, meta)


def _tool_events(out: _Emitter, span: ReadableSpan, attrs: Mapping[str, Any], content: _Content) -> None:
    ids = {
        "tool_name": attrs.get(sc.GEN_AI_TOOL_NAME) or _run_name(span, attrs),
        "tool_call_id": attrs.get(sc.GEN_AI_TOOL_CALL_ID),
    }
    args_text = content.get(sc.GEN_AI_TOOL_CALL_ARGUMENTS)
    args = gj.parse(args_text)
    meta = {**ids, "args": args if args is not None else args_text, "caller": out.mapped.caller}
    out.emit(out.start_key, "tool_start", "trace", None, meta)
    if out.failed:
        meta = {**ids, "error_type": out.error_type, "latency_ms": out.latency_ms}
        out.emit(out.end_key, "tool_error", "trace", out.error_message, meta)
    else:
        meta = {**ids, "status": "success", "latency_ms": out.latency_ms}
        out.emit(out.end_key, "tool_end", "trace", content.get(sc.GEN_AI_TOOL_CALL_RESULT), meta)


def _retriever_events(out: _Emitter, span: ReadableSpan, attrs: Mapping[str, Any], content: _Content) -> None:
    name = _run_name(span, attrs)
    query = content.get(_content.KEY_RETRIEVAL_QUERY)
    out.emit(
        out.start_key,
        "retriever_start",
        "trace",
        query,
        {"retriever_name": name, "caller": out.mapped.caller},
    )
    if out.failed:
        meta = {"retriever_name": name, "error_type": out.error_type, "latency_ms": out.latency_ms}
        out.emit(out.end_key, "retriever_error", "trace", out.error_message, meta)
    else:
        count = attrs.get(sc.RJ_RETRIEVER_DOCUMENT_COUNT)
        meta = {"retriever_name": name, "document_count": count, "latency_ms": out.latency_ms}
        docs = content.get(_content.KEY_RETRIEVAL_DOCUMENTS)
        out.emit(out.end_key, "retriever_end", "trace", docs, meta)


def _custom_events(out: _Emitter, content: _Content) -> None:
    """``runjournal.custom.<name>`` span events → ``<name>`` trace events (+ ``summary`` messages)."""
    side = content.raw(_content.KEY_CUSTOM_EVENTS)
    pool: list[tuple[str, int, Any]] = list(side) if isinstance(side, (list, tuple)) else []
    start = out.mapped.start_ns
    for index, event in enumerate(out.events):
        if not event.name.startswith(sc.EVENT_CUSTOM_PREFIX):
            continue
        name = event.name[len(sc.EVENT_CUSTOM_PREFIX) :]
        raw = (event.attributes or {}).get(sc.RJ_CUSTOM_DATA) if content.enabled else None
        for i, entry in enumerate(pool):  # this event's side-channel entry: the next one of that name
            if entry[0] == name:
                raw = raw if raw is not None else _content.render(entry[2])
                del pool[i]
                break
        data = gj.parse(raw) if isinstance(raw, str) else raw
        if data is None and isinstance(raw, str):
            data = raw
        ts = max(event.timestamp or start, start)
        # a point event sorts after its span's start and before its span's end
        key: SortKey = (G_BODY, ts, _R_POINT, start, out.span_id, 2 * index)
        if ts >= out.end_key[1]:
            key = (*out.end_key[:5], out.end_key[5] - 1000 + 2 * index)
        summary = data.get("summary") if isinstance(data, dict) else None
        text = summary if isinstance(summary, str) else None
        meta = data if isinstance(data, dict) else ({} if data is None else {"data": data})
        out.emit(key, name, "trace", text, meta)
        if name == "summarization" and text is not None:
            replaced = {"replaced_count": meta.get("replaced_count")}
            out.emit((*key[:5], key[5] + 1), "summary", "message", text, replaced)
