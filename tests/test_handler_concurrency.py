"""One handler shared by many concurrent runs (asyncio and threads): each run is exactly one tree."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from handler_helpers import (  # journal_content_on: autouse
    SIMPLE_AGENT_USAGE,
    assert_one_tree,
    by_caller,
    journal_content_on,  # noqa: F401
    rollup,
    roots,
    side,
)
from model_ledger import Ledger, ledger  # noqa: F401 - the fixture
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_runjournal import semconv as sc
from otel_runjournal.demo.agent import build_agent
from otel_runjournal.demo.model import ScriptedChatModel
from otel_runjournal.tracing.handler import RunJournalCallbackHandler


def _by_trace(spans: tuple[ReadableSpan, ...]) -> dict[int, list[ReadableSpan]]:
    groups: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        groups[span.context.trace_id].append(span)
    return groups


def _question(thread: str, i: int) -> str:
    """A question whose length (so token count) differs per run: swapped usage cannot go unseen."""
    return f"question {thread}" + " and more" * i


def _check_runs(
    spans: tuple[ReadableSpan, ...], expected_runs: int, book: Ledger, questions: dict[str, str]
) -> None:
    """Each trace is one run's tree; its root's question and thread match; its roll-up is what the
    scripted models reported for that run's thread."""
    groups = _by_trace(spans)
    assert len(groups) == expected_runs == len(roots(spans))
    for group in groups.values():
        assert_one_tree(group)
        [root] = roots(group)
        thread = root.attributes[sc.RJ_THREAD_ID]
        assert {s.attributes[sc.RJ_THREAD_ID] for s in group} == {thread}
        question = json.loads(side(root)[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"]
        assert question == questions[thread]
        for chat in (s for s in group if s.name.startswith("chat")):
            prompt = json.loads(side(chat)[sc.GEN_AI_INPUT_MESSAGES])
            first = next(m for m in prompt if m["role"] == "user")["parts"][0]["content"]
            assert first == question or first == "climate of Lisbon", (first, question)
        reported = book.of(thread)
        assert rollup(root) == book.usage(reported), thread
        assert by_caller(root) == book.by_caller(reported), thread


def test_fifty_concurrent_ainvokes_share_one_handler(
    tracer_provider: TracerProvider,
    span_exporter: InMemorySpanExporter,
    ledger: Ledger,  # noqa: F811 - the fixture
) -> None:
    """50 concurrent ainvoke()s of the full agent (subagent, middleware, failing tool) on one
    handler give 50 separate trees with nothing crossing, and nothing stays open."""
    handler = RunJournalCallbackHandler(tracer_provider)
    agent = build_agent(
        ScriptedChatModel(
            latency_s=0.002,
            plan=[],
            answer="Paris is sunny and 6*7+1 is 43. You asked: {question}",
        )
    )

    questions = {f"t{i:02d}": _question(f"t{i:02d}", i) for i in range(50)}

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(
                agent.ainvoke(
                    {"messages": [("user", questions[f"t{i:02d}"])]},
                    {"callbacks": [handler], "configurable": {"thread_id": f"t{i:02d}"}},
                )
                for i in range(50)
            )
        )

    results = asyncio.run(main())
    assert len(results) == 50
    spans = span_exporter.get_finished_spans()
    _check_runs(spans, 50, ledger, questions)
    for root in roots(spans):
        assert set(by_caller(root)) == {"lead_agent", "subagent:researcher", "middleware:summarization"}
        assert root.attributes[sc.RJ_LLM_CALL_COUNT] == 8
    assert handler.open_run_count == 0


def test_eight_threads_share_one_handler(
    tracer_provider: TracerProvider,
    span_exporter: InMemorySpanExporter,
    ledger: Ledger,  # noqa: F811 - the fixture
) -> None:
    """8 threads x 5 sync invokes on one handler: 40 trees, exact usage each, nothing crosses."""
    handler = RunJournalCallbackHandler(tracer_provider)
    agent = build_agent(subagent=False, failing_tool=False, middleware=False)

    questions = {f"w{w}-{j}": _question(f"w{w}-{j}", 5 * w + j) for w in range(8) for j in range(5)}

    def work(worker: int) -> None:
        for j in range(5):
            thread = f"w{worker}-{j}"
            agent.invoke(
                {"messages": [("user", questions[thread])]},
                {"callbacks": [handler], "configurable": {"thread_id": thread}},
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(8)))
    spans = span_exporter.get_finished_spans()
    _check_runs(spans, 40, ledger, questions)
    for root in roots(spans):
        assert rollup(root)["calls"] == SIMPLE_AGENT_USAGE["calls"]
    assert handler.open_run_count == 0


def test_parallel_tool_calls_in_one_run(
    tracer_provider: TracerProvider,
    span_exporter: InMemorySpanExporter,
    ledger: Ledger,  # noqa: F811 - the fixture
) -> None:
    """Two tool calls of one AI turn run in parallel threads (ToolNode) and both parent on 'tools'."""
    handler = RunJournalCallbackHandler(tracer_provider)
    model = ScriptedChatModel(
        plan=[[("get_weather", {"city": "Paris"}), ("calculator", {"expression": "2*3"})]],
        answer="done {question}",
    )
    agent = build_agent(model, subagent=False, failing_tool=False, middleware=False)
    agent.invoke(
        {"messages": [("user", "question solo")]},
        {"callbacks": [handler], "configurable": {"thread_id": "solo"}},
    )
    spans = span_exporter.get_finished_spans()
    _check_runs(spans, 1, ledger, {"solo": "question solo"})
    tools = [s for s in spans if s.name.startswith("execute_tool")]
    assert len(tools) == 2 and len({t.parent.span_id for t in tools if t.parent}) == 1
