"""ChatAnthropic through a loopback Anthropic-compatible stub: real HTTP, real langchain-anthropic parsing.

The stub reports usage the way the Messages API does today (cache writes broken down by lifetime), so
these tests pin what a user with prompt caching sees: input = uncached + cache read + cache write, and
the cache write is the server's number, not 0.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from anthropic_stub_server import (
    ANSWER,
    CACHE_READ,
    CACHE_WRITE,
    MODEL,
    OUTPUT,
    OVERLOADED_MODEL,
    TOOL_INPUT,
    TOOL_PREAMBLE,
    UNCACHED_INPUT,
    StubAnthropic,
)
from handler_helpers import journal_content_on, one, rollup, side  # noqa: F401 (autouse)
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from otel_runjournal import semconv as sc
from otel_runjournal.tracing.handler import RunJournalCallbackHandler

langchain_anthropic = pytest.importorskip("langchain_anthropic")
anthropic = pytest.importorskip("anthropic")

INPUT = UNCACHED_INPUT + CACHE_READ + CACHE_WRITE  # the GenAI conventions' input: cached input included


@pytest.fixture
def stub() -> Iterator[StubAnthropic]:
    """A running stub server."""
    with StubAnthropic() as server:
        yield server


def _model(stub: StubAnthropic, model: str = "claude-stub", **kwargs: Any) -> Any:
    kwargs.setdefault("max_retries", 0)
    return langchain_anthropic.ChatAnthropic(
        model=model, base_url=stub.base_url, api_key="test", temperature=0.1, max_tokens=256, **kwargs
    )


def _check_usage(chat: ReadableSpan) -> None:
    a = chat.attributes
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == INPUT
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == OUTPUT
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == CACHE_READ
    assert a[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == CACHE_WRITE == 203
    uncached = a[sc.GEN_AI_USAGE_INPUT_TOKENS] - CACHE_READ - a[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS]
    assert uncached == UNCACHED_INPUT  # total input = uncached + cache read + cache write
    assert rollup(chat) == {"input": INPUT, "output": OUTPUT, "total": INPUT + OUTPUT, "calls": 1}
    assert a[sc.RJ_USAGE_CACHED_INPUT_TOKENS] == CACHE_READ


def _check_response(chat: ReadableSpan, finish: str) -> None:
    a = chat.attributes
    assert chat.kind is SpanKind.CLIENT
    assert chat.status.status_code is StatusCode.UNSET
    assert a[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert a[sc.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert a[sc.GEN_AI_REQUEST_MODEL] == "claude-stub"
    assert a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 256
    assert a[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.1
    assert a[sc.GEN_AI_RESPONSE_MODEL] == MODEL
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == (finish,)


def test_chat_anthropic_cache_write_by_lifetime(
    stub: StubAnthropic, tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """A non-streaming call whose usage breaks the cache write down by lifetime: cache_write is the
    server's 203 (not langchain-anthropic's cache_creation 0), input includes both caches, plus provider,
    response model, id and finish reason."""
    handler = RunJournalCallbackHandler(tracer_provider)
    reply = _model(stub).invoke([HumanMessage("hello")], {"callbacks": [handler]})
    assert reply.content == ANSWER
    details = reply.usage_metadata["input_token_details"]
    assert details["cache_creation"] == 0  # what misled the handler: the write sits in the lifetimes
    assert details["ephemeral_5m_input_tokens"] + details["ephemeral_1h_input_tokens"] == CACHE_WRITE
    assert stub.requests[-1]["model"] == "claude-stub" and "stream" not in stub.requests[-1]
    chat = one(span_exporter.get_finished_spans(), "chat claude-stub")
    _check_response(chat, "end_turn")
    assert chat.attributes[sc.GEN_AI_RESPONSE_ID] == "msg_stub_01"
    assert sc.GEN_AI_REQUEST_STREAM not in chat.attributes
    _check_usage(chat)
    out = json.loads(side(chat)[sc.GEN_AI_OUTPUT_MESSAGES])
    assert out == [
        {"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}
    ]


FIRST_CHUNK_DELAY = 1.0  # well above the client's own start-up before its first chunk (~0.35 s here)


def test_chat_anthropic_streaming(
    stub: StubAnthropic, tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """A streamed call (message_start, text deltas, message_delta with the cumulative usage): stream
    flag, time to first chunk, usage counted once from message_delta, response model, finish reason."""
    handler = RunJournalCallbackHandler(tracer_provider)
    stub.first_chunk_delay = FIRST_CHUNK_DELAY
    chunks = list(_model(stub).stream([HumanMessage("hello")], {"callbacks": [handler]}))
    assert "".join(str(c.content) for c in chunks).strip() == ANSWER
    assert stub.requests[-1]["stream"] is True
    chat = one(span_exporter.get_finished_spans(), "chat claude-stub")
    _check_response(chat, "end_turn")
    a = chat.attributes
    assert a[sc.GEN_AI_REQUEST_STREAM] is True
    # the stub waited FIRST_CHUNK_DELAY before its first event; the call's end bounds it above
    ttfc = a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    assert FIRST_CHUNK_DELAY <= ttfc < (chat.end_time - chat.start_time) / 1e9
    # (langchain-anthropic does not surface a streamed message's id: no gen_ai.response.id here)
    assert sc.GEN_AI_RESPONSE_ID not in a
    _check_usage(chat)
    assert not chat.events


def test_chat_anthropic_async_streaming(
    stub: StubAnthropic, tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """The async stream path gives the same span and the same usage as the sync one."""
    handler = RunJournalCallbackHandler(tracer_provider)

    async def run() -> str:
        model = _model(stub)
        return "".join([str(c.content) async for c in model.astream("hello", {"callbacks": [handler]})])

    assert asyncio.run(run()).strip() == ANSWER
    chat = one(span_exporter.get_finished_spans(), "chat claude-stub")
    _check_response(chat, "end_turn")
    _check_usage(chat)


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
def test_chat_anthropic_tool_use(
    streaming: bool, stub: StubAnthropic, tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """A tool_use answer (text then a tool_use block; streamed as input_json_delta pieces): the
    tool_use finish reason, text and tool_call parts, usage; the tool result goes back and is answered."""
    handler = RunJournalCallbackHandler(tracer_provider)
    model = _model(stub).bind_tools([get_weather])
    config: Any = {"callbacks": [handler]}
    messages: list[Any] = [HumanMessage("weather in Paris?")]
    if streaming:
        reply: Any = None
        for chunk in model.stream(messages, config):
            reply = chunk if reply is None else reply + chunk
    else:
        reply = model.invoke(messages, config)
    [call] = reply.tool_calls
    assert (call["name"], call["args"], call["id"]) == ("get_weather", TOOL_INPUT, "toolu_stub_1")
    first = one(span_exporter.get_finished_spans(), "chat claude-stub")
    _check_response(first, "tool_use")
    _check_usage(first)
    [out] = json.loads(side(first)[sc.GEN_AI_OUTPUT_MESSAGES])
    assert out["finish_reason"] == "tool_call"
    assert out["parts"][0]["type"] == "text" and out["parts"][0]["content"].strip() == TOOL_PREAMBLE
    assert out["parts"][-1] == {
        "type": "tool_call",
        "id": "toolu_stub_1",
        "name": "get_weather",
        "arguments": TOOL_INPUT,
    }

    result = get_weather.invoke(call["args"])
    final = model.invoke([*messages, reply, ToolMessage(result, tool_call_id=call["id"])], config)
    assert final.content == ANSWER
    sent = stub.requests[-1]["messages"][-1]["content"]
    assert sent[0]["type"] == "tool_result" and sent[0]["tool_use_id"] == "toolu_stub_1"
    chats = [s for s in span_exporter.get_finished_spans() if s.name == "chat claude-stub"]
    assert [s.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] for s in chats] == [("tool_use",), ("end_turn",)]


@pytest.mark.parametrize("retries", [0, 1])
def test_chat_anthropic_overloaded(
    retries: int, stub: StubAnthropic, tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """HTTP 529 overloaded_error: the call raises, its one span (the SDK's retries inside it) has status
    ERROR, error.type the raised class, the exception recorded, and no usage."""
    handler = RunJournalCallbackHandler(tracer_provider)
    model = _model(stub, model=OVERLOADED_MODEL, max_retries=retries)
    with pytest.raises(anthropic.OverloadedError) as raised:
        model.invoke([HumanMessage("hello")], {"callbacks": [handler]})
    assert len(stub.requests) == 1 + retries
    chat = one(span_exporter.get_finished_spans(), f"chat {OVERLOADED_MODEL}")
    a = chat.attributes
    assert chat.status.status_code is StatusCode.ERROR
    assert "overloaded_error" in (chat.status.description or "")
    assert a[sc.ERROR_TYPE] == type(raised.value).__qualname__
    assert "Overloaded" in a[sc.ERROR_TYPE]
    assert a[sc.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert [e.name for e in chat.events] == ["exception"]
    assert not [k for k in a if k.startswith("gen_ai.usage.") or k.startswith("gen_ai.response.")]
