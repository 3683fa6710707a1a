"""End to end: the demo LangGraph agent traced by the handler, exported through a BatchSpanProcessor into
both stores, read back through the query API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from model_ledger import Ledger, ledger  # noqa: F401 - the fixture
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_runjournal.demo.agent import build_agent, get_weather
from otel_runjournal.demo.model import ScriptedChatModel, ScriptedModelError
from otel_runjournal.journal.exporter import RunJournalExporter
from otel_runjournal.stores.base import RunStore
from otel_runjournal.stores.duckdb.store import DuckDBStore
from otel_runjournal.stores.jsonl.store import JsonlStore
from otel_runjournal.tracing.handler import RunJournalCallbackHandler

QUESTION = "What is the weather in Paris?"
ANSWER = get_weather.invoke(
    {"city": "Paris"}
)  # the demo model answers a weather question with the tool's result

# build_agent(): weather → calculator → failing lookup_order → ask_researcher (a subagent with one
# tool call) → answer, then a summarizer model call (middleware) and a `summarization` custom event.
EXPECTED = [
    *["run_start", "human_message"],
    *["llm_start", "llm_end", "tool_start", "tool_end"],  # get_weather
    *["llm_start", "llm_end", "tool_start", "tool_end"],  # calculator
    *["llm_start", "llm_end", "tool_start", "tool_error"],  # lookup_order fails
    *["llm_start", "llm_end", "tool_start"],  # ask_researcher ...
    *["llm_start", "llm_end", "tool_start", "tool_end", "llm_start", "llm_end"],  # ... the subagent
    "tool_end",
    *["llm_start", "llm_end", "ai_message"],  # the answer
    *["llm_start", "llm_end", "summarization", "summary"],  # middleware
    "run_end",
]


class Traced:
    """A provider sending spans to an in-memory exporter (to count them) and to the journal."""

    def __init__(self, store: RunStore, capture_content: bool = False) -> None:
        self.store = store
        self.memory = InMemorySpanExporter()
        self.exporter = RunJournalExporter(store)
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter, max_export_batch_size=7))
        self.handler = RunJournalCallbackHandler(self.provider, capture_content=capture_content)

    def config(self, thread_id: str) -> dict[str, Any]:
        return {"callbacks": [self.handler], "configurable": {"thread_id": thread_id}}


@pytest.fixture(params=["duckdb", "jsonl"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    s: RunStore = (
        DuckDBStore(tmp_path / "e2e.duckdb") if request.param == "duckdb" else JsonlStore(tmp_path / "e2e")
    )
    yield s
    s.close()


@pytest.mark.parametrize("capture_content", [False, True])
def test_agent_run_read_back_with_exact_tokens_and_events(
    store: RunStore,
    capture_content: bool,
    ledger: Ledger,  # noqa: F811 - the fixture
) -> None:
    """The demo agent lands in the journal: expected event sequence, messages, exact tokens by caller."""
    traced = Traced(store, capture_content)
    build_agent().invoke({"messages": [HumanMessage(QUESTION)]}, traced.config("thread-1"))
    traced.provider.shutdown()  # drains the BatchSpanProcessor, shuts the exporter down

    runs = store.list_runs(thread_id="thread-1", limit=10)
    assert len(runs) == 1
    run_id = runs[0].run_id
    events = store.list_events(run_id, limit=1000)
    assert [e.event_type for e in events] == EXPECTED
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [e.created_at for e in events] == sorted(e.created_at for e in events)

    reported = ledger.of("thread-1")  # what the scripted models answered, not what the handler made of it
    expected_by_caller = ledger.by_caller(reported)
    assert set(expected_by_caller) == {"lead_agent", "subagent:researcher", "middleware:summarization"}
    usage = store.token_usage(run_id=run_id)
    assert usage.by_caller == expected_by_caller
    assert usage.total_tokens == ledger.usage(reported)["total"]
    assert usage.lead_agent_tokens == expected_by_caller["lead_agent"]
    assert usage.subagent_tokens == expected_by_caller["subagent:researcher"]
    assert usage.middleware_tokens == expected_by_caller["middleware:summarization"]
    assert usage.llm_call_count == len(reported) == 8
    assert usage.input_tokens == ledger.usage(reported)["input"]
    assert usage.output_tokens == ledger.usage(reported)["output"]

    run = store.get_run(run_id)
    assert run is not None
    assert (run.status, run.name, run.thread_id) == ("success", "research_assistant", "thread-1")
    messages = store.list_messages("thread-1", limit=100)
    assert [(m.event_type, m.content) for m in messages] == [
        ("human_message", QUESTION),
        ("ai_message", ANSWER),
        ("summary", f"Summary: {QUESTION}"),
    ]
    assert (run.message_count, run.first_human_message, run.last_ai_message) == (3, QUESTION, ANSWER)
    end = events[-1].metadata
    assert end["total_tokens"] == usage.total_tokens and end["by_caller"] == expected_by_caller
    error = next(e for e in events if e.event_type == "tool_error")
    assert error.metadata["tool_name"] == "lookup_order" and "order service unavailable" in (
        error.content or ""
    )
    assert traced.exporter.stats.written_spans == len(traced.memory.get_finished_spans())
    assert traced.exporter.dropped_spans == 0


def test_concurrent_runs_on_threads_stay_apart(
    store: RunStore,
    ledger: Ledger,  # noqa: F811 - the fixture
) -> None:
    """Concurrent asyncio runs (two per thread) each land whole, with their thread's tokens; a thread's
    messages follow its runs."""
    traced = Traced(store)
    agent = build_agent()

    async def main() -> None:
        async def one(thread: str, question: str) -> None:
            await agent.ainvoke({"messages": [HumanMessage(question)]}, traced.config(thread))

        # questions of different lengths, so every thread's runs use a different number of tokens
        await asyncio.gather(*(one(f"t{i % 3}", f"question {i}" + " and more" * i) for i in range(6)))

    asyncio.run(main())
    traced.provider.shutdown()
    runs = [r for t in ("t0", "t1", "t2") for r in store.list_runs(thread_id=t, limit=10)]
    assert len(runs) == 6
    for run in runs:
        assert [e.event_type for e in store.list_events(run.run_id, limit=1000)] == EXPECTED
        assert run.status == "success" and run.llm_call_count == 8
    for thread in ("t0", "t1", "t2"):
        usage = store.token_usage(thread_id=thread)
        reported = ledger.of(thread)
        assert (usage.total_tokens, usage.input_tokens, usage.llm_call_count) == (
            ledger.usage(reported)["total"],
            ledger.usage(reported)["input"],
            16,
        ), thread
        assert usage.by_caller == ledger.by_caller(reported), thread
    assert len({ledger.usage(ledger.of(t))["total"] for t in ("t0", "t1", "t2")}) == 3  # swaps would show
    for thread in ("t0", "t1", "t2"):
        messages = store.list_messages(thread, limit=100)
        assert [m.event_type for m in messages] == ["human_message", "ai_message", "summary"] * 2
        assert len({m.run_id for m in messages[:3]}) == 1 and len({m.run_id for m in messages[3:]}) == 1


def test_failed_run_ends_with_run_error(store: RunStore) -> None:
    """A model error fails the run: llm_error then run_error, status error, message kept."""
    traced = Traced(store)
    agent = build_agent(
        ScriptedChatModel(fail_on="boom"), subagent=False, failing_tool=False, middleware=False
    )
    with pytest.raises(ScriptedModelError):
        agent.invoke({"messages": [HumanMessage("boom please")]}, traced.config("t-err"))
    traced.provider.shutdown()
    (run,) = store.list_runs(thread_id="t-err", limit=10)
    events = store.list_events(run.run_id, limit=100)
    assert [e.event_type for e in events] == [
        "run_start",
        "human_message",
        "llm_start",
        "llm_error",
        "run_error",
    ]
    assert events[-1].metadata["error_type"] == "ScriptedModelError"
    assert run.status == "error" and "model refused" in (run.error or "")
    assert store.list_runs(status="error", limit=10)[0].run_id == run.run_id
