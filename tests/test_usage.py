"""Token usage from every place LangChain reports it, in every provider shape, never double counted."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, LLMResult

from otel_runjournal.tracing.usage import Usage, add, chunk_usage, response_info, usage_from_mapping, usage_of


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        (  # LangChain usage_metadata
            {
                "input_tokens": 100,
                "output_tokens": 20,
                "total_tokens": 120,
                "input_token_details": {"cache_read": 60, "cache_creation": 10},
                "output_token_details": {"reasoning": 5},
            },
            Usage(100, 20, 120, 60, 10, 5),
        ),
        (  # OpenAI token_usage
            {
                "prompt_tokens": 50,
                "completion_tokens": 7,
                "total_tokens": 57,
                "prompt_tokens_details": {"cached_tokens": 32},
                "completion_tokens_details": {"reasoning_tokens": 3},
            },
            Usage(50, 7, 57, 32, None, 3),
        ),
        (  # Anthropic usage: cache counts are separate from input_tokens, so they are added
            {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_read_input_tokens": 90,
                "cache_creation_input_tokens": 4,
            },
            Usage(104, 5, None, 90, 4, None),
        ),
        (  # Bedrock converse
            {"inputTokens": 11, "outputTokens": 2, "totalTokens": 13, "cacheReadInputTokens": 1},
            Usage(11, 2, 13, 1, None, None),
        ),
        (  # Gemini
            {
                "prompt_token_count": 9,
                "candidates_token_count": 3,
                "total_token_count": 14,
                "thoughts_token_count": 2,
            },
            Usage(9, 3, 14, None, None, 2),
        ),
        (  # langchain-anthropic >= 0.3.x with today's API: the write by lifetime, cache_creation set to 0
            {
                "input_tokens": 1715,
                "output_tokens": 9,
                "total_tokens": 1724,
                "input_token_details": {
                    "cache_read": 1500,
                    "cache_creation": 0,
                    "ephemeral_5m_input_tokens": 150,
                    "ephemeral_1h_input_tokens": 53,
                },
            },
            Usage(1715, 9, 1724, 1500, 203, None),
        ),
        (  # older langchain-anthropic: the total and the lifetimes side by side (counted once)
            {
                "input_tokens": 1715,
                "output_tokens": 9,
                "total_tokens": 1724,
                "input_token_details": {
                    "cache_read": 1500,
                    "cache_creation": 203,
                    "ephemeral_5m_input_tokens": 150,
                    "ephemeral_1h_input_tokens": 53,
                },
            },
            Usage(1715, 9, 1724, 1500, 203, None),
        ),
        (  # lifetimes only, e.g. a future lifetime key
            {
                "input_tokens": 40,
                "output_tokens": 1,
                "input_token_details": {"ephemeral_24h_input_tokens": 30},
            },
            Usage(40, 1, None, None, 30, None),
        ),
        (  # a normalised total that left its cached parts out (smaller than them): they are added
            {
                "input_tokens": 12,
                "output_tokens": 9,
                "total_tokens": 21,
                "input_token_details": {"cache_read": 1500, "cache_creation": 203},
            },
            Usage(1715, 9, 1724, 1500, 203, None),
        ),
        (  # Anthropic's raw usage today: breakdown by lifetime, thinking tokens, uncached input_tokens
            {
                "input_tokens": 12,
                "output_tokens": 9,
                "cache_read_input_tokens": 1500,
                "cache_creation_input_tokens": 203,
                "cache_creation": {"ephemeral_5m_input_tokens": 150, "ephemeral_1h_input_tokens": 53},
                "output_tokens_details": {"thinking_tokens": 4},
                "service_tier": "standard",
            },
            Usage(1715, 9, None, 1500, 203, 4),
        ),
        (  # raw usage whose generic write count is 0 while the breakdown says 203
            {
                "input_tokens": 12,
                "output_tokens": 9,
                "cache_creation_input_tokens": 0,
                "cache_creation": {"ephemeral_5m_input_tokens": 203, "ephemeral_1h_input_tokens": 0},
            },
            Usage(215, 9, None, None, 203, None),
        ),
        (  # raw usage without caching: null cache fields are not counts
            {
                "input_tokens": 12,
                "output_tokens": 9,
                "cache_read_input_tokens": None,
                "cache_creation_input_tokens": None,
                "cache_creation": None,
            },
            Usage(12, 9, None, None, None, None),
        ),
        (  # Bedrock with prompt caching: its totalTokens counts the caches apart from inputTokens
            {
                "inputTokens": 4,
                "outputTokens": 120,
                "totalTokens": 1908,
                "cacheReadInputTokens": 0,
                "cacheWriteInputTokens": 1784,
            },
            Usage(1788, 120, 1908, 0, 1784, None),
        ),
        ({"input_tokens": 0, "output_tokens": 4}, Usage(0, 4, None, None, None, None)),
        ({"input_tokens": None, "output_tokens": "7", "total_tokens": True}, None),
        ({"input_tokens": -3, "output_tokens": 2.0}, Usage(None, 2, None, None, None, None)),
        ({}, None),
        (None, None),
        ("usage", None),
    ],
)
def test_usage_shapes(mapping: Any, expected: Usage | None) -> None:
    """Every known usage shape normalises to the same fields; odd values are ignored, not fatal."""
    assert usage_from_mapping(mapping) == expected


def test_input_includes_the_cache_in_every_shape() -> None:
    """In every shape, input = the uncached input the provider billed + cache read + cache write."""
    shapes: list[tuple[dict[str, Any], int]] = [  # (usage, uncached input the provider billed)
        ({"input_tokens": 12, "output_tokens": 9, "cache_read_input_tokens": 1500,
          "cache_creation": {"ephemeral_5m_input_tokens": 150, "ephemeral_1h_input_tokens": 53}}, 12),
        ({"input_tokens": 1715, "output_tokens": 9, "input_token_details": {
            "cache_read": 1500, "cache_creation": 0, "ephemeral_1h_input_tokens": 203}}, 12),
        ({"prompt_tokens": 50, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 32}}, 18),
        ({"inputTokens": 4, "outputTokens": 1, "totalTokens": 9, "cacheWriteInputTokens": 4}, 4),
    ]  # fmt: skip
    for mapping, uncached in shapes:
        usage = usage_from_mapping(mapping)
        assert usage is not None and usage.input_tokens is not None
        cached = (usage.cache_read_tokens or 0) + (usage.cache_write_tokens or 0)
        assert usage.input_tokens == uncached + cached, mapping


def test_total_is_input_plus_output_when_missing() -> None:
    """A usage without a total counts input + output (a zero total is still a report)."""
    assert Usage(3, 4).total == 7
    assert Usage(total_tokens=0).total == 0
    assert add(Usage(1, 2, 3), Usage(None, 5, None, 1)) == Usage(1, 7, 3, 1, None, None)
    assert add(None, None) is None


def _chat(message: AIMessage, info: dict[str, Any] | None = None) -> ChatGeneration:
    return ChatGeneration(message=message, generation_info=info)


def test_usage_metadata_wins_over_llm_output() -> None:
    """The same usage reported in usage_metadata and llm_output is counted once."""
    message = AIMessage(
        "hi",
        usage_metadata={"input_tokens": 10, "output_tokens": 2, "total_tokens": 12},
        response_metadata={"token_usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}},
    )
    result = LLMResult(
        generations=[[_chat(message)]],
        llm_output={"token_usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}},
    )
    assert usage_of(result) == Usage(10, 2, 12, None, None, None)


def test_usage_fallbacks_in_order() -> None:
    """Without usage_metadata: generation_info, then response_metadata, then llm_output, then chunks."""
    info = _chat(AIMessage("x"), {"usage": {"input_tokens": 1, "output_tokens": 1}})
    assert usage_of(LLMResult(generations=[[info]])) == Usage(1, 1)
    meta = _chat(
        AIMessage("x", response_metadata={"token_usage": {"prompt_tokens": 2, "completion_tokens": 3}})
    )
    assert usage_of(LLMResult(generations=[[meta]])) == Usage(2, 3)
    plain = LLMResult(generations=[[Generation(text="x")]], llm_output={"token_usage": {"prompt_tokens": 4}})
    assert usage_of(plain) == Usage(4)
    assert usage_of(LLMResult(generations=[[Generation(text="x")]]), Usage(5, 6)) == Usage(5, 6)
    assert usage_of(LLMResult(generations=[[Generation(text="x")]])) is None
    assert usage_of(object()) is None


def test_batch_of_prompts_sums() -> None:
    """A result with one generation per prompt sums their usage."""
    gens = [
        [_chat(AIMessage("a", usage_metadata={"input_tokens": i, "output_tokens": 1, "total_tokens": i + 1}))]
        for i in (1, 2)
    ]
    assert usage_of(LLMResult(generations=gens)) == Usage(3, 2, 5)


def test_stream_chunk_usage() -> None:
    """Usage on a stream chunk is read from its message."""
    chunk = ChatGenerationChunk(
        message=AIMessageChunk("", usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7})
    )
    assert chunk_usage(chunk) == Usage(3, 4, 7)
    assert chunk_usage(ChatGenerationChunk(message=AIMessageChunk("x"))) is None
    assert chunk_usage(object()) is None


def test_response_info() -> None:
    """Response model, id and finish reasons; LangChain's own run-derived message ids are not ids."""
    message = AIMessage(
        "x",
        id="lc_run--abc",
        response_metadata={"model_name": "gpt-4o-2024", "id": "chatcmpl-1", "finish_reason": "stop"},
    )
    info = response_info(LLMResult(generations=[[_chat(message)]]))
    assert (info.model, info.response_id, info.finish_reasons) == ("gpt-4o-2024", "chatcmpl-1", ("stop",))
    bare = response_info(LLMResult(generations=[[_chat(AIMessage("x", id="lc_run--abc"))]]))
    assert bare.response_id is None and bare.model is None
    anthropic = AIMessage("x", id="msg_01", response_metadata={"model": "claude", "stop_reason": "end_turn"})
    info = response_info(LLMResult(generations=[[_chat(anthropic)]], llm_output={"model_name": "ignored"}))
    assert (info.model, info.response_id, info.finish_reasons) == ("claude", "msg_01", ("end_turn",))
    assert response_info(None).finish_reasons == ()
