"""Model callbacks: ``chat {model}`` / ``text_completion {model}`` CLIENT spans with usage and output."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from opentelemetry.trace import SpanKind

from .. import genai_json as gj
from .. import guard as _guard
from .. import semconv as sc
from . import classify as cl
from .runspans import RunSpans
from .usage import Usage, add, chunk_usage, response_info, usage_of

_CLIENT = SpanKind.CLIENT


class ModelCallbacks(RunSpans):
    """``on_chat_model_start`` / ``on_llm_*``: request facts at start, response facts and usage at end."""

    @_guard.guarded("handler.on_chat_model_start")
    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start a ``chat {model}`` CLIENT span."""
        prompt = list(messages[0]) if messages else []
        self._model_start(sc.OP_CHAT, serialized, prompt, run_id, parent_run_id, tags, metadata, kwargs)

    @_guard.guarded("handler.on_llm_start")
    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start a ``text_completion {model}`` CLIENT span."""
        prompt = list(prompts) if isinstance(prompts, list) else []
        self._model_start(
            sc.OP_TEXT_COMPLETION, serialized, prompt, run_id, parent_run_id, tags, metadata, kwargs
        )

    def _model_start(
        self,
        operation: str,
        serialized: dict[str, Any] | None,
        prompt: list[Any],
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> None:
        params = kwargs.get("invocation_params")
        if not isinstance(params, Mapping):
            params = None
        model = cl.request_model(metadata, params)
        provider = cl.provider_of(metadata, serialized, params)
        attributes: dict[str, Any] = {sc.GEN_AI_OPERATION_NAME: operation, sc.GEN_AI_PROVIDER_NAME: provider}
        if model is not None:
            attributes[sc.GEN_AI_REQUEST_MODEL] = model
        stream = cl.request_params(attributes, metadata, params)
        if stream:
            attributes[sc.GEN_AI_REQUEST_STREAM] = True
        name = f"{operation} {model}" if model else operation
        run_type = "chat_model" if operation == sc.OP_CHAT else "llm"
        state = self._open(
            run_id, parent_run_id, tags, metadata, run_type, name, _CLIENT, attributes, model_call=True
        )
        if state is None:
            return
        state.is_model = True
        state.start_ns = time.monotonic_ns()
        state.stream = stream
        if state.is_root and self._on_run_end is not None:  # a model called on its own: the run's input
            text = self._put_now(state, sc.GEN_AI_INPUT_MESSAGES, self._renderer.input_messages, prompt)
            state.root.human_text = gj.human_text(text)
        else:
            self._put(state, sc.GEN_AI_INPUT_MESSAGES, self._renderer.input_messages, prompt)
        if self._metrics is not None:
            state.metric_attrs = {
                sc.GEN_AI_OPERATION_NAME: operation,
                sc.GEN_AI_PROVIDER_NAME: provider,
            }
            if model is not None:
                state.metric_attrs[sc.GEN_AI_REQUEST_MODEL] = model

    @_guard.guarded("handler.on_llm_new_token")
    def on_llm_new_token(self, token: Any, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        """Note the first chunk's time and any usage a chunk carries; no span event per token."""
        state = self._registry.get(run_id)
        if state is None:
            return
        if not state.first_chunk_ns:
            state.first_chunk_ns = time.monotonic_ns()
            state.stream = True
        if chunk is not None:
            usage = chunk_usage(chunk)
            if usage is not None:
                state.chunk_usage = add(state.chunk_usage, usage)

    @_guard.guarded("handler.on_llm_end")
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """End a model span with response facts, token usage (rolled up to the root) and output."""
        state = self._finish(run_id)
        if state is None:
            return
        usage = usage_of(response, state.chunk_usage)
        info = response_info(response)
        attributes: dict[str, Any] = {}
        if info.model is not None:
            attributes[sc.GEN_AI_RESPONSE_MODEL] = info.model
            if getattr(state.span, "name", None) in _UNNAMED:  # no request model: name it by the response's
                state.span.update_name(f"{state.span.name} {info.model}")
        if info.response_id is not None:
            attributes[sc.GEN_AI_RESPONSE_ID] = info.response_id
        if info.finish_reasons:
            attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = info.finish_reasons
        if state.stream:
            attributes[sc.GEN_AI_REQUEST_STREAM] = True
        if state.first_chunk_ns:
            attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (state.first_chunk_ns - state.start_ns) / 1e9
        if usage is not None:
            _usage_attributes(attributes, usage)
            self._registry.add_usage(state, usage)
        state.span.set_attributes(attributes)
        if self._on_run_end is not None and state.caller == sc.CALLER_LEAD_AGENT:
            rendered = self._put_now(
                state, sc.GEN_AI_OUTPUT_MESSAGES, self._renderer.output_messages, _outputs(response)
            )
            text = gj.output(rendered)[0] if rendered is not None else None
            if text:  # what becomes the journal's ai_message
                state.root.ai_messages += 1
                state.root.last_ai = text
        elif self._capture or self._journaling():
            self._put_parsed(
                state, sc.GEN_AI_OUTPUT_MESSAGES, self._renderer.output_messages_data, _outputs(response)
            )
        self._end(state)
        if state.metric_attrs is not None and self._metrics is not None:
            if info.model is not None:
                state.metric_attrs[sc.GEN_AI_RESPONSE_MODEL] = info.model
            self._record_metrics(state, usage, None)

    @_guard.guarded("handler.on_llm_error")
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """End a model span with an error."""
        self._error(run_id, error)


_UNNAMED = (sc.OP_CHAT, sc.OP_TEXT_COMPLETION)
"""Model span names without a model (the request did not say which)."""


def _usage_attributes(attributes: dict[str, Any], usage: Usage) -> None:
    if usage.input_tokens is not None:
        attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
    if usage.output_tokens is not None:
        attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
    if usage.cache_read_tokens is not None:
        attributes[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
    if usage.cache_write_tokens is not None:
        attributes[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write_tokens
    if usage.reasoning_tokens is not None:
        attributes[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens


def _outputs(response: Any) -> list[tuple[Any, str | None]]:
    """``(message-or-text, finish_reason)`` of each prompt's first generation (references only)."""
    out: list[tuple[Any, str | None]] = []
    gens = getattr(response, "generations", None)
    if not isinstance(gens, list):
        return out
    for per_prompt in gens:
        if not isinstance(per_prompt, list) or not per_prompt:
            continue
        gen = per_prompt[0]
        message = getattr(gen, "message", None)
        info = getattr(gen, "generation_info", None)
        finish = info.get("finish_reason") if isinstance(info, Mapping) else None
        if message is not None:
            if finish is None:
                meta = getattr(message, "response_metadata", None)
                finish = meta.get("finish_reason") if isinstance(meta, Mapping) else None
            out.append((message, finish if isinstance(finish, str) else None))
        else:
            text = getattr(gen, "text", None)
            out.append((text if isinstance(text, str) else "", finish if isinstance(finish, str) else None))
    return out
