"""The ``demo`` command's work: run the bundled offline agent a few times into a journal."""

from __future__ import annotations

import contextlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .. import settings as _env
from ..records import TOKEN_FIELDS, TokenUsage
from ..stores.base import RunStore

DEMO_SERVICE_NAME = "otel-runjournal-demo"
FAIL_MARKER = "[crash]"
QUESTIONS = (
    "What's the weather in Paris, and what is 6*7+1?",
    "Plan a rainy-day trip to Lisbon.",
    "Where is my order A-1001?",
    "Compare the climate of Paris and Lisbon.",
    "Give me a one-line forecast for Paris.",
    "What should I pack for Lisbon?",
)


@dataclass
class DemoResult:
    """What the demo made: run ids (the failing run last) and thread ids."""

    run_ids: list[str] = field(default_factory=list)
    thread_ids: list[str] = field(default_factory=list)
    error_run_id: str | None = None
    otlp_endpoint: str | None = None

    @property
    def thread_count(self) -> int:
        return len(self.thread_ids)

    def usage(self, store: RunStore) -> TokenUsage:
        """Token usage summed over the demo's threads."""
        total = TokenUsage()
        for thread_id in self.thread_ids:
            part = store.token_usage(thread_id=thread_id)
            for name in ("run_count", *TOKEN_FIELDS):
                setattr(total, name, getattr(total, name) + getattr(part, name))
            for caller, value in part.by_caller.items():
                total.by_caller[caller] = total.by_caller.get(caller, 0) + value
        return total


def run_demo(location: str, *, runs: int = 6, threads: int = 2) -> DemoResult:
    """Run ``runs`` successful agent runs over ``threads`` conversation threads (concurrently), then
    one run whose model fails, journaling into ``location`` (and OTLP when the environment says so)."""
    from langchain_core.messages import HumanMessage

    from ..demo.agent import build_agent
    from ..demo.model import ScriptedChatModel, ScriptedModelError
    from ..wiring import configure

    wired = configure(
        location, service_name=_env.resolve(None, _env.OTEL_SERVICE_NAME, DEMO_SERVICE_NAME), set_global=False
    )
    tag = uuid.uuid4().hex[:6]
    result = DemoResult(
        thread_ids=[f"demo-{tag}-{i + 1}" for i in range(threads)],
        otlp_endpoint=os.environ.get(_env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
        or os.environ.get(_env.OTEL_EXPORTER_OTLP_ENDPOINT)
        if wired.otlp_exporter is not None
        else None,
    )

    def config(thread_id: str, run_id: str) -> dict[str, Any]:
        return {
            "callbacks": [wired.handler],
            "run_id": uuid.UUID(run_id),
            "configurable": {"thread_id": thread_id},
        }

    try:
        agent = build_agent()
        jobs = [
            (result.thread_ids[i % threads], str(uuid.uuid4()), QUESTIONS[i % len(QUESTIONS)])
            for i in range(runs)
        ]
        result.run_ids = [run_id for _, run_id, _ in jobs]

        def one(job: tuple[str, str, str]) -> None:
            thread_id, run_id, question = job
            agent.invoke({"messages": [HumanMessage(question)]}, config(thread_id, run_id))

        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, jobs))

        failing = build_agent(ScriptedChatModel(fail_on=FAIL_MARKER))
        result.error_run_id = str(uuid.uuid4())
        result.run_ids.append(result.error_run_id)
        with contextlib.suppress(ScriptedModelError):  # the point: an error run in the journal
            failing.invoke(
                {"messages": [HumanMessage(f"Book me a flight {FAIL_MARKER}")]},
                config(result.thread_ids[0], result.error_run_id),
            )
    finally:
        wired.shutdown()
    return result
