"""What one finished span says, read from its attributes: its GenAI operation, token usage, error and
run name. Pure functions over ``ReadableSpan`` / attribute mappings; the rows are made in :mod:`.mapping`.
Spans of other instrumentations are read too (older attribute names, OpenLLMetry's markers)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from .. import semconv as sc
from .spanread import attributes_of

LLM_OPS = frozenset({sc.OP_CHAT, sc.OP_TEXT_COMPLETION})
ROOT_OPS = frozenset({sc.OP_INVOKE_AGENT, sc.OP_INVOKE_WORKFLOW})
EVENT_OPS = frozenset({*LLM_OPS, sc.OP_EXECUTE_TOOL, sc.OP_RETRIEVAL})  # operations with events
KNOWN_OPS = sc.KNOWN_OPERATIONS
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
_MARKERS = (sc.LLM_REQUEST_TYPE, sc.TRACELOOP_SPAN_KIND)
_MARKERS_AND_USAGE = frozenset({*_MARKERS, *_USAGE_ATTRS})  # what operation_named reads after the run type


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
    resumed: bool = False  # the run resumes an interrupted one: ``input_text`` is the resume value
    start_at: datetime | None = None  # utc(start_ns) / utc(end_ns), when already made
    end_at: datetime | None = None
    span_count: int | None = None  # spans the run made, as the root announces (runjournal.span_count)


def _int(attrs: Mapping[str, Any], names: Iterable[str]) -> int:
    for name in names:
        value = attrs.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return 0


def operation(span: ReadableSpan, attrs: Mapping[str, Any] | None = None) -> str | None:
    """The GenAI operation of a span: attribute, name's first word, run type, foreign markers, usage."""
    return operation_named(span.name, attributes_of(span) if attrs is None else attrs)


def operation_named(name: str, attrs: Mapping[str, Any]) -> str | None:
    """:func:`operation` of a span named ``name``."""
    get = attrs.get
    op = get(sc.GEN_AI_OPERATION_NAME)
    if isinstance(op, str) and op:
        return op
    first, space, _ = name.partition(" ")
    if space and first in KNOWN_OPS:
        return first
    run_type = get(sc.RJ_RUN_TYPE)
    if isinstance(run_type, str) and run_type in _RUN_TYPE_OPS:
        return _RUN_TYPE_OPS[run_type]
    if _MARKERS_AND_USAGE.isdisjoint(attrs):  # the common case (chains, graph nodes): one look-up per name
        return None
    for marker in _MARKERS:
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


_INPUT_NAMES = (sc.GEN_AI_USAGE_INPUT_TOKENS, *sc.LEGACY_INPUT_TOKENS_ATTRIBUTES)
_OUTPUT_NAMES = (sc.GEN_AI_USAGE_OUTPUT_TOKENS, *sc.LEGACY_OUTPUT_TOKENS_ATTRIBUTES)
_CACHE_READ_NAMES = (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, *sc.LEGACY_CACHE_READ_ATTRIBUTES)
_CACHE_WRITE_NAMES = (sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, *sc.LEGACY_CACHE_WRITE_ATTRIBUTES)
_REASONING_NAMES = (sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,)


_LEGACY_USAGE = frozenset(
    {*_INPUT_NAMES[1:], *_OUTPUT_NAMES[1:], *_CACHE_READ_NAMES[1:], *_CACHE_WRITE_NAMES[1:]}
)


def usage_of(attrs: Mapping[str, Any]) -> Usage:
    get = attrs.get
    i, o = get(sc.GEN_AI_USAGE_INPUT_TOKENS), get(sc.GEN_AI_USAGE_OUTPUT_TOKENS)
    cr, cw = get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS), get(sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS)
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


def error_of(
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


def announced_span_count(attrs: Mapping[str, Any]) -> int | None:
    """The spans a handler root says its run made (``runjournal.span_count``), ``None`` when absent."""
    count = attrs.get(sc.RJ_SPAN_COUNT)
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def run_name(span: ReadableSpan, attrs: Mapping[str, Any]) -> str:
    agent = attrs.get(sc.GEN_AI_AGENT_NAME)
    if isinstance(agent, str) and agent:
        return agent
    first, _, rest = span.name.partition(" ")
    return rest if first in KNOWN_OPS and rest else span.name
