"""Pure mapping: finished spans → RunEvent / SpanRecord rows and a run's :class:`RunWrite`.

:func:`map_span` turns one span into its rows once (content is rendered here, on the exporter's
thread); :func:`build_write` turns the mapped spans of one run into a :class:`RunWrite` whose events
are in time order with deterministic tie-breaks:

- ``run_start`` first and ``human_message`` right after it; ``run_end`` / ``run_error`` /
  ``run_interrupted`` last;
- then by time; at equal times span ends come before span starts (a tool starts after the model
  call that asked for it ends), except that a span's own start always precedes its end;
- ``ai_message`` right after its ``llm_end``, ``summary`` right after its ``summarization`` event.

Spans of other instrumentations (no ``runjournal.*`` attributes) are read the same way, from the
GenAI conventions' attributes; their caller is ``lead_agent``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from . import _content
from . import _semconv as sc
from ._records import RunEvent, RunRecord, RunWrite, SpanRecord

PREVIEW_CHARS = 500
"""Length of ``input_preview`` (the run's input as recorded in ``run_start`` metadata)."""

_ROLLUP_KEYS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "llm_call_count",
    "lead_agent_tokens",
    "subagent_tokens",
    "middleware_tokens",
)
_LLM_OPS = frozenset({sc.OP_CHAT, sc.OP_TEXT_COMPLETION})
_ROOT_OPS = frozenset({sc.OP_INVOKE_AGENT, sc.OP_INVOKE_WORKFLOW})
_KNOWN_OPS = (
    sc.OP_CHAT,
    sc.OP_TEXT_COMPLETION,
    sc.OP_EMBEDDINGS,
    sc.OP_RETRIEVAL,
    sc.OP_EXECUTE_TOOL,
    sc.OP_INVOKE_AGENT,
    sc.OP_INVOKE_WORKFLOW,
)
_RUN_TYPE_OPS = {"llm": sc.OP_TEXT_COMPLETION, "chat_model": sc.OP_CHAT, "tool": sc.OP_EXECUTE_TOOL}
_RUN_TYPE_OPS["retriever"] = sc.OP_RETRIEVAL
_FOREIGN_KIND_OPS = {  # OpenLLMetry's markers → GenAI operations
    "tool": sc.OP_EXECUTE_TOOL,
    "workflow": sc.OP_INVOKE_WORKFLOW,
    "agent": sc.OP_INVOKE_AGENT,
    "chat": sc.OP_CHAT,
    "completion": sc.OP_TEXT_COMPLETION,
    "embedding": sc.OP_EMBEDDINGS,
}
_USAGE_ATTRS = (
    sc.GEN_AI_USAGE_INPUT_TOKENS,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    *sc.LEGACY_INPUT_TOKENS_ATTRIBUTES,
    *sc.LEGACY_OUTPUT_TOKENS_ATTRIBUTES,
)

# sort-key groups and ranks (see the module docstring)
_G_FIRST, _G_BODY, _G_LAST = 0, 1, 2
_R_END, _R_START, _R_POINT = 0, 1, 2

SortKey = tuple[int, int, int, int, str, int]
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


@dataclass(slots=True)
class MappedSpan:
    """One span's contribution to its run: rows, usage and (for possible roots) root facts."""

    record: SpanRecord
    start_ns: int = 0
    end_ns: int = 0
    events: list[Keyed] = field(default_factory=list)
    caller: str = sc.CALLER_LEAD_AGENT
    usage: Usage | None = None  # set on model-call spans (also failed ones: they count as calls)
    root: RootInfo | None = None  # set on handler roots and on agent / workflow spans
    is_root: bool = False  # the handler marked it as its run's root


# --- small readers ---------------------------------------------------------------------------------
def hex_trace_id(trace_id: int) -> str:
    return format(trace_id, "032x")


def hex_span_id(span_id: int) -> str:
    return format(span_id, "016x")


def span_ids(span: ReadableSpan) -> tuple[str, str]:
    """(trace id, span id) of a span as lowercase hex."""
    ctx = span.get_span_context()
    if ctx is None:
        return hex_trace_id(0), hex_span_id(0)
    return hex_trace_id(ctx.trace_id), hex_span_id(ctx.span_id)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def utc(ns: int) -> datetime:
    """Nanoseconds since the epoch → aware UTC datetime (microsecond precision, exact)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


_resource_memo: tuple[Any, dict[str, Any]] = (None, {})


def _resource(span: ReadableSpan) -> dict[str, Any]:
    """The span's resource as a dict, converted once per resource object (all spans share one)."""
    global _resource_memo
    resource = span.resource
    if _resource_memo[0] is not resource:
        _resource_memo = (resource, {k: _jsonable(v) for k, v in resource.attributes.items()})
    return dict(_resource_memo[1])


def _attrs(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def _int(attrs: Mapping[str, Any], names: Iterable[str]) -> int:
    for name in names:
        value = attrs.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return 0


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def operation(span: ReadableSpan, attrs: Mapping[str, Any] | None = None) -> str | None:
    """The GenAI operation of a span: attribute, else its name's first word, else its run type."""
    attrs = _attrs(span) if attrs is None else attrs
    op = attrs.get(sc.GEN_AI_OPERATION_NAME)
    if isinstance(op, str) and op:
        return op
    first = span.name.split(" ", 1)[0]
    if first in _KNOWN_OPS and " " in span.name:
        return first
    run_type = attrs.get(sc.RJ_RUN_TYPE)
    if isinstance(run_type, str) and run_type in _RUN_TYPE_OPS:
        return _RUN_TYPE_OPS[run_type]
    for marker in (sc.LLM_REQUEST_TYPE, sc.TRACELOOP_SPAN_KIND):
        value = attrs.get(marker)
        if isinstance(value, str) and value in _FOREIGN_KIND_OPS:
            return _FOREIGN_KIND_OPS[value]
    if any(name in attrs for name in _USAGE_ATTRS):
        return sc.OP_CHAT
    return None


def is_genai(span: ReadableSpan) -> bool:
    """Whether the journal records this span: ours, or one following the GenAI conventions."""
    attrs = _attrs(span)
    if sc.RJ_RUN_ID in attrs or operation(span) is not None:
        return True
    return sc.GEN_AI_PROVIDER_NAME in attrs or any(a in attrs for a in sc.LEGACY_PROVIDER_ATTRIBUTES)


def is_local_root(span: ReadableSpan) -> bool:
    """No parent, or a parent in another process: this span ends its trace's local part."""
    return span.parent is None or span.parent.is_remote


def _caller(attrs: Mapping[str, Any]) -> str:
    caller = attrs.get(sc.RJ_CALLER)
    return caller if isinstance(caller, str) and caller else sc.CALLER_LEAD_AGENT


def caller_bucket(caller: str) -> str:
    """Which roll-up column a caller's tokens go to."""
    if caller.startswith(sc.CALLER_SUBAGENT_PREFIX):
        return "subagent_tokens"
    if caller.startswith(sc.CALLER_MIDDLEWARE_PREFIX):
        return "middleware_tokens"
    return "lead_agent_tokens"


def _usage(attrs: Mapping[str, Any]) -> Usage:
    return Usage(
        input_tokens=_int(attrs, (sc.GEN_AI_USAGE_INPUT_TOKENS, *sc.LEGACY_INPUT_TOKENS_ATTRIBUTES)),
        output_tokens=_int(attrs, (sc.GEN_AI_USAGE_OUTPUT_TOKENS, *sc.LEGACY_OUTPUT_TOKENS_ATTRIBUTES)),
        cached_input_tokens=_int(
            attrs, (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, *sc.LEGACY_CACHE_READ_ATTRIBUTES)
        ),
        cache_write_input_tokens=_int(
            attrs, (sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, *sc.LEGACY_CACHE_WRITE_ATTRIBUTES)
        ),
        reasoning_tokens=_int(attrs, (sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,)),
    )


class _Content:
    """Reads a span's content: the side channel first, then the gen_ai.* content attributes."""

    def __init__(self, span: ReadableSpan, enabled: bool, attrs: Mapping[str, Any]) -> None:
        self.enabled = enabled
        self._side = (_content.read(span) or {}) if enabled else {}
        self._attrs = attrs if enabled else {}

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


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _messages(text: str | None) -> list[dict[str, Any]]:
    data = _json(text)
    if isinstance(data, dict):
        data = [data]
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []


def _message_text(message: Mapping[str, Any]) -> str:
    parts = message.get("parts")
    if isinstance(parts, list):
        texts = [
            p["content"]
            for p in parts
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("content"), str)
        ]
        return "".join(texts)
    content = message.get("content")  # older / foreign formats
    return content if isinstance(content, str) else ""


def human_text(input_content: str | None) -> str | None:
    """Text of the first user message of a GenAI input-messages JSON (or the plain text itself)."""
    if input_content is None:
        return None
    messages = _messages(input_content)
    if not messages and _json(input_content) is None:
        return input_content
    for message in messages:
        if message.get("role") in ("user", "human"):
            return _message_text(message)
    return None


def _output(text: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Response text and tool calls from GenAI output-messages JSON (or plain text)."""
    if text is None:
        return "", []
    messages = _messages(text)
    if not messages:
        return (text if _json(text) is None else ""), []
    out: list[str] = []
    calls: list[dict[str, Any]] = []
    for message in messages:
        out.append(_message_text(message))
        for part in message.get("parts") or ():
            if isinstance(part, dict) and part.get("type") == "tool_call":
                calls.append({"id": part.get("id"), "name": part.get("name"), "args": part.get("arguments")})
    return "".join(out), calls


def _error(span: ReadableSpan, attrs: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(message, type) of a failed span."""
    message: Any = span.status.description
    error_type: Any = attrs.get(sc.ERROR_TYPE)
    for event in span.events:
        if event.name == sc.EVENT_EXCEPTION:
            ev_attrs = event.attributes or {}
            message = message or ev_attrs.get("exception.message")
            error_type = error_type or ev_attrs.get("exception.type")
    return (
        str(message) if message is not None else None,
        str(error_type) if error_type is not None else None,
    )


def _failed(span: ReadableSpan) -> bool:
    return span.status.status_code is StatusCode.ERROR


def _run_name(span: ReadableSpan, attrs: Mapping[str, Any]) -> str:
    agent = attrs.get(sc.GEN_AI_AGENT_NAME)
    if isinstance(agent, str) and agent:
        return agent
    first, _, rest = span.name.partition(" ")
    return rest if first in _KNOWN_OPS and rest else span.name


# --- one span ---------------------------------------------------------------------------------------
def span_record(span: ReadableSpan, run_id: str, *, with_content: bool = True) -> SpanRecord:
    """The ``spans`` row of a span (content attributes dropped when the journal records no content)."""
    return _span_record(span, run_id, with_content, {k: _jsonable(v) for k, v in _attrs(span).items()})


def _span_record(
    span: ReadableSpan,
    run_id: str,
    with_content: bool,
    attrs: dict[str, Any],
    ids: tuple[str, str] | None = None,
) -> SpanRecord:
    trace_id, span_id = ids or span_ids(span)
    start = span.start_time or 0
    end = span.end_time or start
    if not with_content:
        for key in sc.CONTENT_ATTRIBUTES:
            attrs.pop(key, None)
    events = [
        {
            "name": e.name,
            "time_unix_nano": e.timestamp,
            "attributes": {k: _jsonable(v) for k, v in (e.attributes or {}).items()},
        }
        for e in span.events
    ]
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=hex_span_id(span.parent.span_id) if span.parent is not None else None,
        run_id=run_id,
        name=span.name,
        kind=span.kind.name,
        start_time=utc(start),
        end_time=utc(end),
        duration_ms=(end - start) / 1e6,
        status_code=span.status.status_code.name,
        status_message=span.status.description,
        attributes=attrs,
        events=events,
        resource=_resource(span),
    )


def root_info(
    span: ReadableSpan, *, with_content: bool = True, attrs: Mapping[str, Any] | None = None
) -> RootInfo:
    """Root facts of a span that (may) start a run."""
    attrs = _attrs(span) if attrs is None else attrs
    content = _Content(span, with_content, attrs)
    trace_id, span_id = span_ids(span)
    if attrs.get(sc.RJ_ABANDONED):
        status = "abandoned"
    elif attrs.get(sc.RJ_INTERRUPTED):
        status = "interrupted"
    elif _failed(span):
        status = "error"
    else:
        status = "success"
    message, error_type = _error(span, attrs) if status == "error" else (None, None)
    input_text = content.get(sc.GEN_AI_INPUT_MESSAGES)
    return RootInfo(
        name=_run_name(span, attrs),
        trace_id=trace_id,
        span_id=span_id,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or span.start_time or 0,
        status=status,
        error_message=message,
        error_type=error_type,
        input_text=input_text,
        human_text=human_text(input_text),
        interrupt_value=content.get(_content.KEY_INTERRUPT_VALUE),
    )


def map_span(
    span: ReadableSpan, run_id: str, thread_id: str, *, with_content: bool = True, candidate: bool = False
) -> MappedSpan:
    """Map one finished span to its rows: the span row and its trace / message events.

    ``candidate``: also compute :class:`RootInfo` (for foreign spans, any of which may turn out to be
    the top of its group); handler roots and agent / workflow spans always get one.
    """
    attrs = {k: _jsonable(v) for k, v in _attrs(span).items()}  # one plain copy: fast lookups
    trace_id, span_id = span_ids(span)
    start = span.start_time or 0
    end = max(span.end_time or start, start)
    content = _Content(span, with_content, attrs)
    op = operation(span, attrs)
    mapped = MappedSpan(
        record=_span_record(
            span, run_id, with_content, attrs if with_content else dict(attrs), (trace_id, span_id)
        ),
        start_ns=start,
        end_ns=end,
        caller=_caller(attrs),
        is_root=bool(attrs.get(sc.RJ_IS_ROOT)),
    )
    if candidate or mapped.is_root or op in _ROOT_OPS:
        mapped.root = root_info(span, with_content=with_content, attrs=attrs)

    def event(key: SortKey, event_type: str, category: str, text: str | None, meta: dict[str, Any]) -> None:
        ev = RunEvent(
            thread_id=thread_id,
            run_id=run_id,
            event_type=event_type,
            category=category,
            created_at=utc(key[1]),
            content=text,
            metadata=meta,
            trace_id=trace_id,
            span_id=span_id,
        )
        mapped.events.append((key, ev))

    start_key: SortKey = (_G_BODY, start, _R_START, start, span_id, 0)
    # the end sorts before starts at the same instant, but never before its own start
    end_key: SortKey = (
        (_G_BODY, end, _R_END, start, span_id, 0) if end > start else (*start_key[:5], 1_000_000)
    )
    latency_ms = (end - start) / 1e6
    failed = _failed(span)
    error_message, error_type = _error(span, attrs) if failed else (None, None)
    caller = mapped.caller

    if op in _LLM_OPS:
        model = attrs.get(sc.GEN_AI_REQUEST_MODEL) or attrs.get(sc.GEN_AI_RESPONSE_MODEL)
        mapped.usage = _usage(attrs)
        event(start_key, "llm_start", "trace", None, {"model_name": model, "caller": caller})
        if failed:
            meta = {"error_type": error_type, "caller": caller, "model_name": model, "latency_ms": latency_ms}
            event(end_key, "llm_error", "trace", error_message, meta)
        else:
            text, calls = _output(content.get(sc.GEN_AI_OUTPUT_MESSAGES))
            if not text:
                text = content.get("gen_ai.completion.0.content") or ""  # OpenLLMetry-style spans
            finish = attrs.get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
            meta = {
                "model": attrs.get(sc.GEN_AI_RESPONSE_MODEL) or model,
                "model_name": model,
                "caller": caller,
                "usage": mapped.usage.as_dict(),
                "latency_ms": latency_ms,
                "finish_reasons": list(finish) if isinstance(finish, (tuple, list)) else [],
                "tool_calls": calls,
            }
            ttfc = attrs.get(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
            if ttfc is not None:
                meta["time_to_first_chunk"] = ttfc
            event(end_key, "llm_end", "trace", text or None, meta)
            if text and caller == sc.CALLER_LEAD_AGENT:
                event(
                    (*end_key[:5], end_key[5] + 1),
                    "ai_message",
                    "message",
                    text,
                    {
                        "model_name": model,
                        "tool_calls": calls,
                    },
                )
    elif op == sc.OP_EXECUTE_TOOL:
        name = attrs.get(sc.GEN_AI_TOOL_NAME) or _run_name(span, attrs)
        call_id = attrs.get(sc.GEN_AI_TOOL_CALL_ID)
        args_text = content.get(sc.GEN_AI_TOOL_CALL_ARGUMENTS)
        args = _json(args_text) if args_text is not None else None
        event(
            start_key,
            "tool_start",
            "trace",
            None,
            {
                "tool_name": name,
                "tool_call_id": call_id,
                "args": args if args is not None else args_text,
                "caller": caller,
            },
        )
        if failed:
            meta = {"tool_name": name, "tool_call_id": call_id, "error_type": error_type}
            meta["latency_ms"] = latency_ms
            event(end_key, "tool_error", "trace", error_message, meta)
        else:
            meta = {"tool_name": name, "tool_call_id": call_id, "status": "success", "latency_ms": latency_ms}
            event(end_key, "tool_end", "trace", content.get(sc.GEN_AI_TOOL_CALL_RESULT), meta)
    elif op == sc.OP_RETRIEVAL:
        name = _run_name(span, attrs)
        count = attrs.get(sc.RJ_RETRIEVER_DOCUMENT_COUNT)
        event(
            start_key,
            "retriever_start",
            "trace",
            content.get(_content.KEY_RETRIEVAL_QUERY),
            {
                "retriever_name": name,
                "caller": caller,
            },
        )
        if failed:
            meta = {"retriever_name": name, "error_type": error_type, "latency_ms": latency_ms}
            event(end_key, "retriever_error", "trace", error_message, meta)
        else:
            meta = {"retriever_name": name, "document_count": count, "latency_ms": latency_ms}
            event(end_key, "retriever_end", "trace", content.get(_content.KEY_RETRIEVAL_DOCUMENTS), meta)

    for key, name, data in _custom_events(span, content, end_key):
        summary = data.get("summary") if isinstance(data, dict) else None
        summary_text = summary if isinstance(summary, str) else None
        meta = data if isinstance(data, dict) else ({} if data is None else {"data": data})
        event(key, name, "trace", summary_text, meta)
        if name == "summarization" and summary_text is not None:
            replaced = meta.get("replaced_count")
            event((*key[:5], key[5] + 1), "summary", "message", summary_text, {"replaced_count": replaced})
    return mapped


def _custom_events(span: ReadableSpan, content: _Content, end_key: SortKey) -> list[tuple[SortKey, str, Any]]:
    """(sort key, name, data) of the span's ``runjournal.custom.<name>`` events."""
    if not span.events:
        return []
    side = content.raw(_content.KEY_CUSTOM_EVENTS)
    pool: list[tuple[str, int, Any]] = list(side) if isinstance(side, (list, tuple)) else []
    start = span.start_time or 0
    span_id = span_ids(span)[1]
    out: list[tuple[SortKey, str, Any]] = []
    for index, ev in enumerate(span.events):
        if not ev.name.startswith(sc.EVENT_CUSTOM_PREFIX):
            continue
        name = ev.name[len(sc.EVENT_CUSTOM_PREFIX) :]
        raw = (ev.attributes or {}).get(sc.RJ_CUSTOM_DATA) if content.enabled else None
        for i, entry in enumerate(pool):  # the side-channel entry of this event: same name, nearest time
            if entry[0] == name:
                raw = raw if raw is not None else _content.render(entry[2])
                del pool[i]
                break
        data = _json(raw) if isinstance(raw, str) else raw
        if data is None and isinstance(raw, str):
            data = raw
        ts = max(ev.timestamp or start, start)
        # a point event sorts after its span's start and before its span's end
        key: SortKey = (_G_BODY, ts, _R_POINT, start, span_id, 2 * index)
        if ts >= end_key[1]:
            key = (*end_key[:5], end_key[5] - 1000 + 2 * index)
        out.append((key, name, data))
    return out


# --- one run ------------------------------------------------------------------------------------------
def merge_roots(roots: Sequence[RootInfo], trace_id: str, start_ns: int, end_ns: int) -> RootInfo:
    """One root for a group with several top-level spans (foreign spans without a common root)."""
    if len(roots) == 1:
        return roots[0]
    failed = next((r for r in roots if r.status == "error"), None)
    human = next((r.human_text for r in sorted(roots, key=lambda r: r.start_ns) if r.human_text), None)
    return RootInfo(
        name=roots[0].name if roots else None,
        trace_id=trace_id,
        span_id=None,
        start_ns=start_ns,
        end_ns=end_ns,
        status="error" if failed else "success",
        error_message=failed.error_message if failed else None,
        error_type=failed.error_type if failed else None,
        human_text=human,
    )


def _lifecycle(run: RunRecord, root: RootInfo, rollup: dict[str, Any]) -> list[Keyed]:
    def ev(key: SortKey, event_type: str, category: str, text: str | None, meta: dict[str, Any]) -> Keyed:
        return key, RunEvent(
            thread_id=run.thread_id,
            run_id=run.run_id,
            event_type=event_type,
            category=category,
            created_at=utc(key[1]),
            content=text,
            metadata=meta,
            trace_id=root.trace_id,
            span_id=root.span_id,
        )

    preview_source = root.human_text if root.human_text is not None else root.input_text
    preview = preview_source[:PREVIEW_CHARS] if preview_source is not None else None
    out = [
        ev(
            (_G_FIRST, root.start_ns, 0, 0, "", 0),
            "run_start",
            "lifecycle",
            preview,
            {
                "name": root.name,
                "input_preview": preview,
            },
        )
    ]
    if root.human_text:
        out.append(
            ev((_G_FIRST, root.start_ns, 1, 0, "", 0), "human_message", "message", root.human_text, {})
        )
    end_key: SortKey = (_G_LAST, root.end_ns, 0, 0, "", 0)
    meta: dict[str, Any] = {"status": root.status, "duration_ms": run.duration_ms, **rollup}
    if root.status == "error":
        meta["error_type"] = root.error_type
        out.append(ev(end_key, "run_error", "lifecycle", root.error_message, meta))
    elif root.status == "interrupted":
        out.append(ev(end_key, "run_interrupted", "lifecycle", root.interrupt_value, meta))
    else:
        out.append(ev(end_key, "run_end", "lifecycle", None, meta))
    return out


def rollup(run: RunRecord) -> dict[str, Any]:
    """The token roll-up of a run as recorded in ``run_end`` metadata."""
    out: dict[str, Any] = {key: getattr(run, key) for key in _ROLLUP_KEYS}
    out["by_caller"] = dict(run.usage_by_caller)
    return out


def build_write(
    run_id: str,
    thread_id: str,
    spans: Sequence[MappedSpan],
    *,
    root: RootInfo | None,
    status: str,
    prior: RunRecord | None = None,
) -> RunWrite:
    """The :class:`RunWrite` for a run's mapped spans: events in time order and a summary that agrees.

    ``prior`` is the summary already written for this run (a run written in parts): its totals are
    carried forward and the new row replaces it. ``status`` applies when there is no ``root``.
    """
    run = (
        replace(prior, usage_by_caller=dict(prior.usage_by_caller)) if prior else RunRecord(run_id, thread_id)
    )
    keyed: list[Keyed] = [k for span in spans for k in span.events]
    for span in spans:
        if span.usage is None:
            continue
        usage = span.usage
        run.input_tokens += usage.input_tokens
        run.output_tokens += usage.output_tokens
        run.total_tokens += usage.total_tokens
        run.cached_input_tokens += usage.cached_input_tokens
        run.reasoning_tokens += usage.reasoning_tokens
        run.llm_call_count += 1
        bucket = caller_bucket(span.caller)
        setattr(run, bucket, getattr(run, bucket) + usage.total_tokens)
        run.usage_by_caller[span.caller] = run.usage_by_caller.get(span.caller, 0) + usage.total_tokens
    if spans and run.trace_id is None:
        run.trace_id = spans[0].record.trace_id
    if spans:
        first = min(s.record.start_time for s in spans)
        run.started_at = first if run.started_at is None else min(run.started_at, first)
    if root is not None:
        run.trace_id = root.trace_id
        run.name = root.name
        run.status = root.status
        run.started_at = utc(root.start_ns)
        run.ended_at = utc(root.end_ns)
        run.duration_ms = (root.end_ns - root.start_ns) / 1e6
        run.error = root.error_message if root.status == "error" else None
        if root.human_text and run.first_human_message is None:
            run.first_human_message = root.human_text
        keyed.extend(_lifecycle(run, root, {}))  # placeholder roll-up, fixed below
    else:
        run.status = status
    keyed.sort(key=lambda k: k[0])
    events = [ev for _, ev in keyed]
    for ev in events:
        if ev.category == "message":
            run.message_count += 1
            if ev.event_type == "ai_message":
                run.last_ai_message = ev.content
    if root is not None and events:
        events[-1].metadata.update(rollup(run))
    return RunWrite(run=run, events=events, spans=[s.record for s in spans])
