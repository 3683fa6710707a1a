"""What the scripted model reported, recorded at the model (independently of the handler under test)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables.config import ensure_config

from otel_runjournal.demo.model import ScriptedChatModel


@dataclass(frozen=True)
class Reported:
    """One model call as the scripted model answered it."""

    thread_id: str | None
    model_name: str
    answer_template: str
    input_tokens: int
    output_tokens: int

    @property
    def caller(self) -> str:
        """Which of build_agent()'s three models answered (by how the demo builds them)."""
        if self.model_name == "scripted-mini":
            return "subagent:researcher"
        if self.answer_template.startswith("Summary:"):
            return "middleware:summarization"
        return "lead_agent"


class Ledger:
    """Every ScriptedChatModel answer of the test, keyed by the LangGraph thread it ran in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Reported] = []

    def add(self, call: Reported) -> None:
        with self._lock:
            self.calls.append(call)

    def of(self, thread_id: str) -> list[Reported]:
        return [c for c in self.calls if c.thread_id == thread_id]

    @staticmethod
    def usage(calls: list[Reported]) -> dict[str, int]:
        """In the shape of handler_helpers.usage_sum / rollup."""
        inp = sum(c.input_tokens for c in calls)
        out = sum(c.output_tokens for c in calls)
        return {"input": inp, "output": out, "total": inp + out, "calls": len(calls)}

    @staticmethod
    def by_caller(calls: list[Reported]) -> dict[str, int]:
        """Total tokens per caller."""
        totals: dict[str, int] = defaultdict(int)
        for c in calls:
            totals[c.caller] += c.input_tokens + c.output_tokens
        return dict(totals)


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    """Record what every ScriptedChatModel reports (usage metadata), with the thread it ran for."""
    book = Ledger()
    respond = ScriptedChatModel._respond

    def recording(self: ScriptedChatModel, messages: list[BaseMessage]) -> AIMessage:
        message = respond(self, messages)
        usage: Any = message.usage_metadata
        configurable = ensure_config().get("configurable") or {}
        book.add(
            Reported(
                configurable.get("thread_id"),
                self.model_name,
                self.answer,
                int(usage["input_tokens"]),
                int(usage["output_tokens"]),
            )
        )
        return message

    monkeypatch.setattr(ScriptedChatModel, "_respond", recording)
    yield book
