"""One handler shared by many concurrent runs (asyncio and threads): each run is exactly one tree."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from handler_helpers import (  # journal_content_on: autouse
    SIMPLE_AGENT_USAGE,
    assert_one_tree,
    by_caller,
    journal_content_on,  # noqa: F401
    rollup,
    roots,
    side,
)
from langchain.agents import create_agent
from langchain_core.tools import tool
from model_ledger import Ledger, ledger  # noqa: F401 - the fixture
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from otel_runjournal import semconv as sc
from otel_runjournal.demo.agent import build_agent
from otel_runjournal.demo.model import ScriptedChatModel
from otel_runjournal.journal.exporter import RunJournalExporter
from otel_runjournal.stores.duckdb.store import DuckDBStore
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


@pytest.mark.parametrize("mode", ["batch", "abatch"])
def test_batch_and_abatch_give_one_run_per_input(
    tracer_provider: TracerProvider,
    span_exporter: InMemorySpanExporter,
    ledger: Ledger,  # noqa: F811 - the fixture
    mode: str,
) -> None:
    """agent.batch() / abatch() of several inputs: one whole tree per input, each with its own roll-up."""
    handler = RunJournalCallbackHandler(tracer_provider)
    agent = build_agent()
    threads = [f"b{i}" for i in range(4)]
    questions = {t: _question(t, i) for i, t in enumerate(threads)}
    inputs = [{"messages": [("user", questions[t])]} for t in threads]
    configs: list[Any] = [{"callbacks": [handler], "configurable": {"thread_id": t}} for t in threads]
    results = agent.batch(inputs, configs) if mode == "batch" else asyncio.run(agent.abatch(inputs, configs))
    assert len(results) == len(threads)
    spans = span_exporter.get_finished_spans()
    _check_runs(spans, len(threads), ledger, questions)
    assert handler.open_run_count == 0


def test_task_cancelled_mid_run_ends_every_span(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    """An asyncio task cancelled while a tool awaits: every span ends, the run is journaled as an error
    (CancelledError), nothing stays open, and the handler goes on tracing the next run."""
    store = DuckDBStore(tmp_path / "j.duckdb")
    tracer_provider.add_span_processor(SimpleSpanProcessor(RunJournalExporter(store)))
    handler = RunJournalCallbackHandler(tracer_provider)
    entered = threading.Event()

    @tool
    async def wait_for_ever(what: str) -> str:
        """Wait for something that never comes."""
        entered.set()
        await asyncio.sleep(3600)
        return "never"

    model = ScriptedChatModel(plan=[[("wait_for_ever", {"what": "godot"})]], answer="done {question}")
    agent = create_agent(model, tools=[wait_for_ever], name="canceller")

    async def main() -> None:
        task = asyncio.create_task(
            agent.ainvoke(
                {"messages": [("user", "question cancelled")]},
                {"callbacks": [handler], "configurable": {"thread_id": "cancelled"}},
            )
        )
        while not entered.is_set():  # the run is inside the tool call
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert handler.open_run_count == 0
    spans = span_exporter.get_finished_spans()
    [root] = roots(spans)
    assert_one_tree(list(spans))
    tool_span = next(s for s in spans if s.name == "execute_tool wait_for_ever")
    for span in (root, tool_span):
        assert span.status.status_code is StatusCode.ERROR, span.name
        assert span.attributes[sc.ERROR_TYPE] == "CancelledError", span.name
    after = build_agent(subagent=False, failing_tool=False, middleware=False)
    after.invoke({"messages": [("user", "question after")]}, {"callbacks": [handler]})  # still tracing
    assert len(roots(span_exporter.get_finished_spans())) == 2
    tracer_provider.force_flush()
    [run] = store.list_runs(thread_id="cancelled", limit=10)
    assert run.status == "error"
    assert [e.event_type for e in store.list_events(run.run_id, limit=100)][-1] == "run_error"
    store.close()
