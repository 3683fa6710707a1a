"""The deterministic offline workload every tracer variant is timed on.

The bundled demo agent with every option off: a LangGraph ReAct loop run by ``ScriptedChatModel``,
3 model calls + 2 tool calls per invoke, no network, no sleeps. Each invoke gets a fresh input
(LangGraph assigns message ids in place, so inputs are never reused).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage

from otel_runjournal.demo.agent import build_agent

QUESTION = "What is the weather in Paris, and what is 6*7+1?"
CONCURRENCY = 50
"""Concurrent ``ainvoke``s per async batch."""


def build() -> Any:
    """The compiled demo agent: 3 model calls + 2 tool calls per invoke."""
    return build_agent(subagent=False, failing_tool=False, middleware=False)


def _input() -> dict[str, Any]:
    return {"messages": [HumanMessage(QUESTION)]}


def _config(callbacks: list[BaseCallbackHandler]) -> dict[str, Any]:
    return {"callbacks": callbacks} if callbacks else {}


def check(agent: Any) -> None:
    """Fail loudly if the workload no longer has its documented shape (guards the comparison)."""
    out = agent.invoke(_input())
    kinds = [m.type for m in out["messages"]]
    if kinds.count("ai") != 3 or kinds.count("tool") != 2:
        raise RuntimeError(f"workload changed shape: {kinds}")


def run_sync(agent: Any, invokes: int, callbacks: list[BaseCallbackHandler]) -> float:
    """Invoke ``invokes`` times in sequence; return seconds elapsed."""
    config = _config(callbacks)
    start = time.perf_counter()
    for _ in range(invokes):
        agent.invoke(_input(), config)
    return time.perf_counter() - start


async def _batches(agent: Any, batches: int, concurrency: int, config: dict[str, Any]) -> None:
    for _ in range(batches):
        await asyncio.gather(*(agent.ainvoke(_input(), config) for _ in range(concurrency)))


def run_async(
    agent: Any, batches: int, callbacks: list[BaseCallbackHandler], concurrency: int = CONCURRENCY
) -> float:
    """Run ``batches`` rounds of ``concurrency`` concurrent ``ainvoke``s; return seconds elapsed."""
    config = _config(callbacks)
    start = time.perf_counter()
    asyncio.run(_batches(agent, batches, concurrency, config))
    return time.perf_counter() - start
