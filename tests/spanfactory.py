"""Test helper: real SDK spans shaped like the handler's (or a foreign instrumentation's), at exact times."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_runjournal import content as _content
from otel_runjournal import semconv as sc

_KEEP: Any = object()
T0 = 1_700_000_000_000_000_000  # ns; 2023-11-14T22:13:20Z
MS = 1_000_000


def copy_of(
    span: ReadableSpan, *, trace_xor: int = 0, span_xor: int = 0, parent: Any = _KEEP, attributes: Any = _KEEP
) -> ReadableSpan:
    """A new finished span like ``span``: its trace / span id XORed with ``trace_xor`` / ``span_xor``,
    its parent and attributes kept unless given."""
    ctx = span.get_span_context()
    assert ctx is not None
    moved = trace.SpanContext(
        ctx.trace_id ^ trace_xor, ctx.span_id ^ span_xor, ctx.is_remote, ctx.trace_flags, ctx.trace_state
    )
    return ReadableSpan(
        name=span.name,
        context=moved,
        parent=span.parent if parent is _KEEP else parent,
        resource=span.resource,
        attributes=span.attributes if attributes is _KEEP else attributes,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def user_input(text: str) -> str:
    """GenAI input-messages JSON with one user message."""
    return json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])


def assistant_output(text: str = "", tool_calls: list[tuple[str, str, dict[str, Any]]] = ()) -> str:  # type: ignore[assignment]
    """GenAI output-messages JSON: optional text and ``(id, name, args)`` tool calls."""
    parts: list[dict[str, Any]] = []
    if text:
        parts.append({"type": "text", "content": text})
    for call_id, name, args in tool_calls:
        parts.append({"type": "tool_call", "id": call_id, "name": name, "arguments": args})
    reason = "tool_call" if tool_calls else "stop"
    return json.dumps([{"role": "assistant", "parts": parts, "finish_reason": reason}])


class SpanFactory:
    """Starts and ends real SDK spans with explicit times; ``start(...)`` then ``end(...)``."""

    def __init__(self, provider: TracerProvider) -> None:
        self.tracer = provider.get_tracer("tests.spanfactory")

    def start(
        self,
        name: str,
        at_ms: float,
        *,
        parent: Span | None = None,
        attrs: dict[str, Any] | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        remote_parent: bool = False,
    ) -> Span:
        context = None
        if parent is not None:
            parent_ctx = parent.get_span_context()
            if remote_parent:
                parent_ctx = trace.SpanContext(
                    parent_ctx.trace_id,
                    parent_ctx.span_id,
                    is_remote=True,
                    trace_flags=parent_ctx.trace_flags,
                )
            context = trace.set_span_in_context(trace.NonRecordingSpan(parent_ctx))
        span = self.tracer.start_span(
            name, context=context, kind=kind, attributes=attrs or {}, start_time=T0 + int(at_ms * MS)
        )
        assert isinstance(span, Span)
        return span

    def end(
        self,
        span: Span,
        at_ms: float,
        *,
        content: dict[str, Any] | None = None,
        error: BaseException | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> ReadableSpan:
        if attrs:
            span.set_attributes(attrs)
        if content:
            _content.put(span, content)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, str(error)))
            span.record_exception(error, timestamp=T0 + int(at_ms * MS))
            span.set_attribute(sc.ERROR_TYPE, type(error).__name__)
        span.end(end_time=T0 + int(at_ms * MS))
        return span


def common(
    run_id: str, thread_id: str | None = None, caller: str = "lead_agent", run_type: str = "chain"
) -> dict[str, Any]:
    """The attributes the handler sets on every span."""
    return {
        sc.RJ_RUN_ID: run_id,
        sc.RJ_THREAD_ID: thread_id or run_id,
        sc.RJ_CALLER: caller,
        sc.RJ_RUN_TYPE: run_type,
    }


def chat_attrs(model: str, inp: int, out: int, **extra: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
        sc.GEN_AI_PROVIDER_NAME: "scripted",
        sc.GEN_AI_REQUEST_MODEL: model,
        sc.GEN_AI_RESPONSE_MODEL: model,
        sc.GEN_AI_USAGE_INPUT_TOKENS: inp,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: out,
    }
    attrs.update(extra)
    return attrs


def handler_run(
    f: SpanFactory,
    run_id: str,
    *,
    thread_id: str | None = None,
    t: float = 0.0,
    question: str = "weather in Paris?",
    answer: str = "It is sunny.",
) -> list[ReadableSpan]:
    """A handler-shaped run, in end order: chat (asks for a tool) → tool → chat (answers) → root.

    Times (ms from ``t``): root 0-100, chat 10-20, tool 20-30 (starts exactly when the chat ends),
    chat 40-50. Tokens: 10+5 and 20+7.
    """
    c = common(run_id, thread_id)
    root = f.start(
        "invoke_agent research_assistant",
        t,
        attrs={
            **c,
            sc.RJ_IS_ROOT: True,
            sc.GEN_AI_OPERATION_NAME: "invoke_agent",
            sc.GEN_AI_AGENT_NAME: "research_assistant",
        },
    )
    chat1 = f.start(
        "chat scripted-1",
        t + 10,
        parent=root,
        kind=SpanKind.CLIENT,
        attrs={**c, sc.RJ_RUN_TYPE: "chat_model"},
    )
    s1 = f.end(
        chat1,
        t + 20,
        attrs=chat_attrs("scripted-1", 10, 5, **{sc.GEN_AI_RESPONSE_FINISH_REASONS: ("tool_calls",)}),
        content={
            sc.GEN_AI_OUTPUT_MESSAGES: assistant_output("", [("call_1", "get_weather", {"city": "Paris"})])
        },
    )
    tool = f.start(
        "execute_tool get_weather",
        t + 20,
        parent=root,
        attrs={
            **c,
            sc.RJ_RUN_TYPE: "tool",
            sc.GEN_AI_OPERATION_NAME: "execute_tool",
            sc.GEN_AI_TOOL_NAME: "get_weather",
            sc.GEN_AI_TOOL_CALL_ID: "call_1",
        },
    )
    s2 = f.end(
        tool,
        t + 30,
        content={
            sc.GEN_AI_TOOL_CALL_ARGUMENTS: json.dumps({"city": "Paris"}),
            sc.GEN_AI_TOOL_CALL_RESULT: "sunny",
        },
    )
    chat2 = f.start(
        "chat scripted-1",
        t + 40,
        parent=root,
        kind=SpanKind.CLIENT,
        attrs={**c, sc.RJ_RUN_TYPE: "chat_model"},
    )
    s3 = f.end(
        chat2,
        t + 50,
        attrs=chat_attrs("scripted-1", 20, 7, **{sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",)}),
        content={sc.GEN_AI_OUTPUT_MESSAGES: assistant_output(answer)},
    )
    s4 = f.end(root, t + 100, content={sc.GEN_AI_INPUT_MESSAGES: user_input(question)})
    return [s1, s2, s3, s4]


HANDLER_RUN_EVENTS = [
    "run_start",
    "human_message",
    "llm_start",
    "llm_end",
    "tool_start",
    "tool_end",
    "llm_start",
    "llm_end",
    "ai_message",
    "run_end",
]
