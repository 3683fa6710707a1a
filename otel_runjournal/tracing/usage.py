"""Pure extraction of token usage and response facts from what LangChain reports at the end of a call.

Sources, first match wins per call (so the same usage reported in two places is never counted twice):

1. ``AIMessage.usage_metadata`` of the generations (LangChain's normalised form; for a stream it is
   the merged chunks, i.e. the final chunk's usage);
2. ``generation_info`` / ``message.response_metadata`` (``token_usage``, ``usage``, ``usage_metadata``);
3. ``llm_output`` (``token_usage`` / ``usage``);
4. the usage seen on stream chunks (``on_llm_new_token``) when the end result carries none.

Provider shapes understood: LangChain ``usage_metadata`` (``input_token_details.cache_read`` /
``cache_creation``, ``output_token_details.reasoning``), OpenAI (``prompt_tokens``,
``prompt_tokens_details.cached_tokens``, ``completion_tokens_details.reasoning_tokens``), Anthropic
(``input_tokens`` plus ``cache_read_input_tokens`` / ``cache_creation_input_tokens``), Bedrock
(``inputTokens`` ...) and Gemini (``prompt_token_count`` ...).

Cache writes may come broken down by cache lifetime: Anthropic's ``usage.cache_creation`` holds
``ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens``, and ``langchain-anthropic`` copies them
into ``input_token_details`` while setting ``cache_creation`` to 0 there (so the write is not counted
twice). The write is the larger of the reported total and the sum of the lifetimes.

``input_tokens`` follows the GenAI conventions: *all* input, cached included, so
input = uncached + cache read + cache write. Where a provider reports the uncached part only (Anthropic's
raw ``input_tokens``; Bedrock's ``inputTokens`` when its ``totalTokens`` counts the caches apart; any
normalised total smaller than its own cached parts) the cache counts are added to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Usage:
    """Token usage of one model call (``None``: not reported)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def total(self) -> int:
        """Total tokens; ``input + output`` when the provider did not report a total."""
        if self.total_tokens is not None:
            return self.total_tokens
        return (self.input_tokens or 0) + (self.output_tokens or 0)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if 0 <= value < 1e15 else None
    return None


def _first(d: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = _int(d.get(key))
        if value is not None:
            return value
    return None


def _nested(d: Mapping[str, Any], paths: tuple[tuple[str, str], ...]) -> int | None:
    for outer, inner in paths:
        sub = d.get(outer)
        if isinstance(sub, Mapping):
            value = _int(sub.get(inner))
            if value is not None:
                return value
    return None


_INPUT = ("input_tokens", "prompt_tokens", "inputTokens", "prompt_token_count", "promptTokenCount")
_OUTPUT = (
    "output_tokens",
    "completion_tokens",
    "outputTokens",
    "candidates_token_count",
    "candidatesTokenCount",
)
_TOTAL = ("total_tokens", "totalTokens", "total_token_count", "totalTokenCount")
_CACHE_READ_FLAT = (
    "cache_read_input_tokens",
    "cacheReadInputTokens",
    "cached_content_token_count",
    "cachedContentTokenCount",
)
_CACHE_WRITE_FLAT = ("cache_creation_input_tokens", "cacheWriteInputTokens")
_CACHE_READ_NESTED = (("input_token_details", "cache_read"), ("prompt_tokens_details", "cached_tokens"))
_CACHE_WRITE_NESTED = (("input_token_details", "cache_creation"), ("input_token_details", "cache_write"))
_REASONING_NESTED = (
    ("output_token_details", "reasoning"),
    ("completion_tokens_details", "reasoning_tokens"),
    ("output_tokens_details", "thinking_tokens"),  # Anthropic's raw usage
)
_REASONING_FLAT = ("thoughts_token_count", "thoughtsTokenCount", "reasoning_tokens")
# input keys whose count may leave the cached input out (Anthropic's input_tokens, Bedrock's inputTokens)
_UNCACHED_INPUT_KEYS = ("input_tokens", "inputTokens")


def _lifetimes(d: Any) -> int | None:
    """Sum of a cache-write breakdown by lifetime (``ephemeral_5m_input_tokens``, ``ephemeral_1h_...``)."""
    if not isinstance(d, Mapping):
        return None
    found = [
        _int(v)
        for k, v in d.items()
        if isinstance(k, str) and k.startswith("ephemeral_") and k.endswith("_input_tokens")
    ]
    counts = [v for v in found if v is not None]
    return sum(counts) if counts else None


def _largest(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _cache_write_nested(d: Mapping[str, Any]) -> int | None:
    """LangChain's ``input_token_details``: ``cache_creation`` (0 when broken down) or the lifetimes."""
    return _largest(_nested(d, _CACHE_WRITE_NESTED), _lifetimes(d.get("input_token_details")))


def _cache_write_flat(d: Mapping[str, Any]) -> int | None:
    """A provider's own usage: ``cache_creation_input_tokens`` or its ``cache_creation`` breakdown."""
    return _largest(_first(d, _CACHE_WRITE_FLAT), _lifetimes(d.get("cache_creation")))


def _flat_cache_is_apart(d: Mapping[str, Any], usage: Usage, cached: int) -> bool:
    """Whether a provider's flat cache counts are *not* part of its input count (then they are added)."""
    if not any(key in d for key in _UNCACHED_INPUT_KEYS) or "prompt_tokens" in d:
        return False  # OpenAI / Gemini style: the prompt count includes the cache
    if usage.total_tokens is None:
        return True  # Anthropic: input_tokens is the uncached part, no total to check against
    # Bedrock: decided by its own arithmetic (a total that counts the caches apart)
    return usage.total_tokens == (usage.input_tokens or 0) + (usage.output_tokens or 0) + cached


def usage_from_mapping(d: Any) -> Usage | None:
    """Normalise one usage mapping of any known shape; ``None`` if it holds no token count."""
    if not isinstance(d, Mapping):
        return None
    usage = Usage(
        input_tokens=_first(d, _INPUT),
        output_tokens=_first(d, _OUTPUT),
        total_tokens=_first(d, _TOTAL),
        cache_read_tokens=_nested(d, _CACHE_READ_NESTED),
        cache_write_tokens=_cache_write_nested(d),
        reasoning_tokens=_nested(d, _REASONING_NESTED),
    )
    if usage.input_tokens is None and usage.output_tokens is None and usage.total_tokens is None:
        return None
    if usage.reasoning_tokens is None:
        usage.reasoning_tokens = _first(d, _REASONING_FLAT)
    if usage.cache_read_tokens is None and usage.cache_write_tokens is None:
        read, write = _first(d, _CACHE_READ_FLAT), _cache_write_flat(d)
        cached = (read or 0) + (write or 0)
        if cached and usage.input_tokens is not None and _flat_cache_is_apart(d, usage, cached):
            usage.input_tokens += cached
        usage.cache_read_tokens, usage.cache_write_tokens = read, write
    else:
        # a normalised input total is never smaller than its cached parts; if it is, it left them out
        cached = (usage.cache_read_tokens or 0) + (usage.cache_write_tokens or 0)
        if usage.input_tokens is not None and usage.input_tokens < cached:
            if usage.total_tokens is not None and usage.total_tokens == usage.input_tokens + (
                usage.output_tokens or 0
            ):
                usage.total_tokens += cached
            usage.input_tokens += cached
    return usage


_INFO_KEYS = ("token_usage", "usage", "usage_metadata")


def _from_info(info: Any) -> Usage | None:
    if not isinstance(info, Mapping):
        return None
    for key in _INFO_KEYS:
        usage = usage_from_mapping(info.get(key))
        if usage is not None:
            return usage
    return None


def _sum(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else a + b


def add(a: Usage | None, b: Usage | None) -> Usage | None:
    """Field-wise sum (``None`` + ``None`` stays ``None``)."""
    if a is None or b is None:
        return b if a is None else a
    return Usage(
        _sum(a.input_tokens, b.input_tokens),
        _sum(a.output_tokens, b.output_tokens),
        _sum(a.total_tokens, b.total_tokens),
        _sum(a.cache_read_tokens, b.cache_read_tokens),
        _sum(a.cache_write_tokens, b.cache_write_tokens),
        _sum(a.reasoning_tokens, b.reasoning_tokens),
    )


def _generations(response: Any) -> list[Any]:
    """The first generation of every prompt of an ``LLMResult`` (tolerates odd shapes)."""
    gens = getattr(response, "generations", None)
    out: list[Any] = []
    if isinstance(gens, list):
        for per_prompt in gens:
            if isinstance(per_prompt, list) and per_prompt:
                out.append(per_prompt[0])
    return out


def usage_of(response: Any, chunk_usage: Usage | None = None) -> Usage | None:
    """Token usage of a model call's ``LLMResult``; see the module doc for the source order."""
    gens = _generations(response)
    total: Usage | None = None
    for gen in gens:  # 1. usage_metadata (one per prompt: a batch of prompts sums)
        message = getattr(gen, "message", None)
        total = add(total, usage_from_mapping(getattr(message, "usage_metadata", None)))
    if total is not None:
        return total
    for gen in gens:  # 2. generation_info / response_metadata
        usage = _from_info(getattr(gen, "generation_info", None))
        if usage is None:
            usage = _from_info(getattr(getattr(gen, "message", None), "response_metadata", None))
        total = add(total, usage)
    if total is not None:
        return total
    usage = _from_info(getattr(response, "llm_output", None))  # 3. llm_output
    return usage if usage is not None else chunk_usage  # 4. stream chunks


@dataclass(slots=True)
class ResponseInfo:
    """Response facts of a model call."""

    model: str | None = None
    response_id: str | None = None
    finish_reasons: tuple[str, ...] = ()


_MODEL_KEYS = ("model_name", "model", "model_id")
_LC_ID_PREFIXES = ("lc_", "run-")
_FINISH_KEYS = ("finish_reason", "stop_reason", "finishReason", "done_reason")


def _str_of(d: Any, keys: tuple[str, ...]) -> str | None:
    if isinstance(d, Mapping):
        for key in keys:
            value = d.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def response_info(response: Any) -> ResponseInfo:
    """Response model, id and finish reasons from generations, response metadata and ``llm_output``."""
    info = ResponseInfo()
    reasons: list[str] = []
    for gen in _generations(response):
        message = getattr(gen, "message", None)
        meta = getattr(message, "response_metadata", None)
        gen_info = getattr(gen, "generation_info", None)
        reason = _str_of(gen_info, _FINISH_KEYS) or _str_of(meta, _FINISH_KEYS)
        if reason is not None:
            reasons.append(reason)
        if info.model is None:
            info.model = _str_of(meta, _MODEL_KEYS) or _str_of(gen_info, _MODEL_KEYS)
        if info.response_id is None:
            info.response_id = _str_of(meta, ("id",))
            message_id = getattr(message, "id", None)
            if (
                info.response_id is None
                and isinstance(message_id, str)
                and message_id
                and not message_id.startswith(_LC_ID_PREFIXES)  # LangChain's own run-derived ids
            ):
                info.response_id = message_id
    llm_output = getattr(response, "llm_output", None)
    if info.model is None:
        info.model = _str_of(llm_output, _MODEL_KEYS)
    if info.response_id is None:
        info.response_id = _str_of(llm_output, ("id",))
    info.finish_reasons = tuple(reasons)
    return info


def chunk_usage(chunk: Any) -> Usage | None:
    """Usage carried by one stream chunk (``ChatGenerationChunk``), usually only the last one."""
    message = getattr(chunk, "message", None)
    if message is None:
        return None
    return usage_from_mapping(getattr(message, "usage_metadata", None))
