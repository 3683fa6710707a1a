"""ChatOpenAI through a loopback OpenAI-compatible stub: real HTTP, real langchain-openai parsing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from handler_helpers import journal_content_on, one, rollup, side  # noqa: F401 (autouse)
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from openai_stub_server import ANSWER, MODEL, StubOpenAI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel_runjournal import semconv as sc
from otel_runjournal.tracing.handler import RunJournalCallbackHandler

langchain_openai = pytest.importorskip("langchain_openai")


@pytest.fixture
def stub() -> Iterator[StubOpenAI]:
    """A running stub server."""
    with StubOpenAI() as server:
        yield server


def _model(stub: StubOpenAI, **kwargs: Any) -> Any:
    return langchain_openai.ChatOpenAI(
        model="gpt-stub", base_url=stub.base_url, api_key="test", temperature=0.1, max_retries=0, **kwargs
    )


def _check_usage(chat: Any) -> None:
    a = chat.attributes
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 42
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 9
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 32
    assert a[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 4


def test_chat_openai_non_streaming(
    stub: StubOpenAI, tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """A non-streaming ChatOpenAI call: provider, request/response model, id, finish reasons, usage
    details (cached + reasoning) counted once, content in the side channel only."""
    handler = RunJournalCallbackHandler(tracer_provider)
    reply = _model(stub).invoke([HumanMessage("hello")], {"callbacks": [handler]})
    assert reply.content == ANSWER
    chat = one(span_exporter.get_finished_spans(), "chat gpt-stub")
    a = chat.attributes
    assert chat.kind is SpanKind.CLIENT
    assert a[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[sc.GEN_AI_REQUEST_MODEL] == "gpt-stub"
    assert a[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.1
    assert a[sc.GEN_AI_RESPONSE_MODEL] == MODEL
    assert a[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-stub-1"
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert sc.GEN_AI_REQUEST_STREAM not in a
    _check_usage(chat)
    assert rollup(chat) == {"input": 42, "output": 9, "total": 51, "calls": 1}
    assert chat.attributes[sc.RJ_USAGE_CACHED_INPUT_TOKENS] == 32
    assert sc.GEN_AI_OUTPUT_MESSAGES not in a
    out = json.loads(side(chat)[sc.GEN_AI_OUTPUT_MESSAGES])
    assert out == [
        {"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}
    ]


FIRST_CHUNK_DELAY = 1.0  # well above the client's own start-up before its first chunk (~0.15 s here)


def test_chat_openai_streaming_usage_from_final_chunk(
    stub: StubOpenAI, tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """A streamed ChatOpenAI call with include_usage: stream flag, time to first chunk, usage from the
    final usage-only chunk (counted once), response model and finish reason from the chunks."""
    handler = RunJournalCallbackHandler(tracer_provider)
    model = _model(stub, stream_usage=True)
    stub.first_chunk_delay = FIRST_CHUNK_DELAY
    try:
        text = "".join(
            str(c.content) for c in model.stream([HumanMessage("hello")], {"callbacks": [handler]})
        )
    finally:
        stub.first_chunk_delay = 0.0
    assert text.strip() == ANSWER
    assert stub.requests[-1]["stream"] is True
    assert stub.requests[-1]["stream_options"] == {"include_usage": True}
    chat = one(span_exporter.get_finished_spans(), "chat gpt-stub")
    a = chat.attributes
    assert a[sc.GEN_AI_REQUEST_STREAM] is True
    # the stub waited FIRST_CHUNK_DELAY before its first chunk (when the client reads it after the wire
    # is the client's business, so the only bound above is the call's end)
    ttfc = a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    assert FIRST_CHUNK_DELAY <= ttfc < (chat.end_time - chat.start_time) / 1e9
    assert a[sc.GEN_AI_RESPONSE_MODEL] == MODEL
    # (langchain-openai 1.x does not surface a streamed completion's id: no gen_ai.response.id here)
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    _check_usage(chat)
    assert rollup(chat)["total"] == 51 and rollup(chat)["calls"] == 1
    assert not chat.events


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


def test_chat_openai_tool_calls(
    stub: StubOpenAI, tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """Tool calls returned by the API appear as tool_call parts and the tool_calls finish reason."""
    handler = RunJournalCallbackHandler(tracer_provider, capture_content=True)
    reply = (
        _model(stub).bind_tools([get_weather]).invoke([HumanMessage("weather?")], {"callbacks": [handler]})
    )
    assert reply.tool_calls[0]["name"] == "get_weather"
    chat = one(span_exporter.get_finished_spans(), "chat gpt-stub")
    assert chat.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    [out] = json.loads(chat.attributes[sc.GEN_AI_OUTPUT_MESSAGES])
    assert out["finish_reason"] == "tool_call"
    assert out["parts"] == [
        {"type": "tool_call", "id": "call_stub_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
