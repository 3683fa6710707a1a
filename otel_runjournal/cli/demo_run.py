"""The ``demo`` command's work: run the bundled offline agent a few times into a journal."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .. import settings as _env

DEMO_SERVICE_NAME = "otel-runjournal-demo"
DEMO_PRICES = {"scripted-1": "openai:gpt-4o", "scripted-mini": "openai:gpt-4o-mini"}
"""The demo's scripted models are priced as the real models they stand in for (user prices, as an
application would price a fine-tuned copy), so the first journal a user sees has costs in it."""
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


def run_demo(
    location: str, *, runs: int = 6, threads: int = 2, progress: Callable[[], None] | None = None
) -> DemoResult:
    """Run ``runs`` successful agent runs over ``threads`` conversation threads (concurrently), then
    one run whose model fails, journaling into ``location`` (and OTLP when the environment says so).
    ``progress()`` is called after each run (from the worker threads)."""
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.messages import HumanMessage

    from ..demo.agent import build_agent
    from ..demo.model import ScriptedChatModel, ScriptedModelError
    from ..wiring import configure

    wired = configure(
        location,
        service_name=_env.resolve(None, _env.OTEL_SERVICE_NAME, DEMO_SERVICE_NAME),
        set_global=False,
        prices=DEMO_PRICES,
    )
    tag = uuid.uuid4().hex[:6]
    result = DemoResult(
        thread_ids=[f"demo-{tag}-{i + 1}" for i in range(threads)],
        otlp_endpoint=os.environ.get(_env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
        or os.environ.get(_env.OTEL_EXPORTER_OTLP_ENDPOINT)
        if wired.otlp_exporter is not None
        else None,
    )

    class RootRunId(BaseCallbackHandler):
        """Notes the id LangChain gives the root run (UUIDv7 in LangChain 1.x: the demo shows real ids)."""

        run_id: str | None = None

        def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: Any, **kwargs: Any) -> None:
            if kwargs.get("parent_run_id") is None and self.run_id is None:
                self.run_id = str(run_id)

    def invoke(agent: Any, thread_id: str, question: str) -> str | None:
        root = RootRunId()
        config = {"callbacks": [wired.handler, root], "configurable": {"thread_id": thread_id}}
        with contextlib.suppress(ScriptedModelError):  # the failing run's point: an error run in the journal
            agent.invoke({"messages": [HumanMessage(question)]}, config)
        if progress is not None:
            progress()
        return root.run_id

    try:
        agent = build_agent()
        jobs = [(result.thread_ids[i % threads], QUESTIONS[i % len(QUESTIONS)]) for i in range(runs)]
        with ThreadPoolExecutor(max_workers=threads) as pool:
            ids = list(pool.map(lambda job: invoke(agent, *job), jobs))
        failing = build_agent(ScriptedChatModel(fail_on=FAIL_MARKER))
        result.error_run_id = invoke(failing, result.thread_ids[0], f"Book me a flight {FAIL_MARKER}")
        result.run_ids = [i for i in [*ids, result.error_run_id] if i is not None]
    finally:
        wired.shutdown()
    return result
