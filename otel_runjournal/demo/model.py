"""An offline chat model that behaves like a real provider: usage metadata, tool calls, streaming.

Its answer depends only on the conversation it is given (how many AI turns it already holds), never
on call order, so one instance is safe under threads, asyncio and many concurrent runs.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCallChunk
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable

_TOOL_RESULT = re.compile(r"\{tool:(\w+)\}")


class ScriptedModelError(RuntimeError):
    """Raised by :class:`ScriptedChatModel` when a prompt contains its ``fail_on`` marker."""


def _text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return " ".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content)


class ScriptedChatModel(BaseChatModel):
    """Chat model following a fixed plan of tool calls, then answering.

    ``plan[i]`` lists the ``(tool_name, args)`` calls of the conversation's i-th AI turn; once the
    plan is used up it answers: ``answers[key]`` for the first key found in the first human message
    (case-insensitive), else ``answer``. ``{question}`` in an answer is replaced by that message,
    ``{tool:NAME}`` by what the tool ``NAME`` last returned in the conversation.
    Token usage is derived from message lengths, so it is deterministic and exact in tests.
    """

    model_name: str = "scripted-1"
    provider: str = "scripted"
    plan: list[list[tuple[str, dict[str, Any]]]] = []
    answer: str = "Here is what I found about {question}."
    answers: dict[str, str] = {}
    fail_on: str | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    latency_s: float = 0.0
    temperature: float | None = 0.2
    max_tokens: int | None = 256

    @property
    def _llm_type(self) -> str:
        return "scripted-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "temperature": self.temperature}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider=self.provider, ls_model_name=self.model_name, ls_model_type="chat"
        )
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        return params

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Accept tools like a provider model does; the plan decides which are called."""
        names = [getattr(t, "name", None) or getattr(t, "__name__", str(t)) for t in tools]
        return self.bind(tool_names=names, **kwargs)

    # -- the policy -------------------------------------------------------------------------------
    def _respond(self, messages: list[BaseMessage]) -> AIMessage:
        question = next((_text_of(m) for m in messages if m.type == "human"), "")
        if self.fail_on and self.fail_on in question:
            raise ScriptedModelError(f"model refused: prompt contains {self.fail_on!r}")
        turn = sum(1 for m in messages if m.type == "ai")
        prompt_tokens = 8 + sum(len(_text_of(m)) // 4 for m in messages)
        if turn < len(self.plan):
            calls = [
                {"name": name, "args": dict(args), "id": f"call_{turn}_{i}", "type": "tool_call"}
                for i, (name, args) in enumerate(self.plan[turn])
            ]
            text, finish = "", "tool_calls"
        else:
            calls, text, finish = [], self._answer(question, messages), "stop"
        output_tokens = 4 + len(text) // 4 + 6 * len(calls) + self.reasoning_tokens
        usage = UsageMetadata(
            input_tokens=prompt_tokens,
            output_tokens=output_tokens,
            total_tokens=prompt_tokens + output_tokens,
            input_token_details=InputTokenDetails(cache_read=min(self.cached_tokens, prompt_tokens)),
            output_token_details=OutputTokenDetails(reasoning=self.reasoning_tokens),
        )
        return AIMessage(
            content=text,
            tool_calls=calls,
            usage_metadata=usage,
            id=f"msg-{turn}-{prompt_tokens}",
            response_metadata={
                "model_name": self.model_name,
                "model_provider": self.provider,
                "finish_reason": finish,
                "id": f"resp-{turn}-{prompt_tokens}",
            },
        )

    def _answer(self, question: str, messages: list[BaseMessage]) -> str:
        lowered = question.lower()
        template = next((a for k, a in self.answers.items() if k.lower() in lowered), self.answer)
        results = {getattr(m, "name", None): _text_of(m) for m in messages if m.type == "tool"}
        text = _TOOL_RESULT.sub(lambda match: results.get(match.group(1)) or "", template)
        return text.replace("{question}", question[:200])

    # -- BaseChatModel ---------------------------------------------------------------------------
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency_s:
            time.sleep(self.latency_s)
        return ChatResult(generations=[ChatGeneration(message=self._respond(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return ChatResult(generations=[ChatGeneration(message=self._respond(messages))])

    def _chunks(self, message: AIMessage) -> Iterator[ChatGenerationChunk]:
        words = str(message.content).split(" ") if message.content else []
        for i, word in enumerate(words):
            yield ChatGenerationChunk(
                message=AIMessageChunk(content=word if i == 0 else " " + word, id=message.id)
            )
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                id=message.id,
                tool_call_chunks=[
                    ToolCallChunk(
                        name=c["name"], args=_json(c["args"]), id=c["id"], index=i, type="tool_call_chunk"
                    )
                    for i, c in enumerate(message.tool_calls)
                ],
                usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata,
                chunk_position="last",
            )
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(self._respond(messages)):
            if run_manager:
                run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(self._respond(messages)):
            if run_manager:
                await run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk


def _json(args: dict[str, Any]) -> str:
    import json

    return json.dumps(args, separators=(",", ":"))
