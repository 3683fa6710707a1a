"""Content reaches the journal through a registry keyed by span context, whatever the SDK does to spans."""

from __future__ import annotations

import time
import weakref
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanfactory import copy_of

from otel_runjournal import RunJournalExporter
from otel_runjournal import content as _content
from otel_runjournal import semconv as sc
from otel_runjournal.content import ContentRegistry
from otel_runjournal.demo.agent import build_agent
from otel_runjournal.stores.duckdb.store import DuckDBStore
from otel_runjournal.tracing.handler import RunJournalCallbackHandler

QUESTION = {"messages": [("user", "What is the weather in Paris?")]}


@pytest.fixture(autouse=True)
def no_other_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exporters of other tests (still referenced somewhere) must not count as readers here."""
    monkeypatch.setattr(_content, "_READERS", weakref.WeakSet())
    monkeypatch.delenv("OTEL_RUNJOURNAL_JOURNAL_CONTENT", raising=False)
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)


class CopyingProcessor(SpanProcessor):
    """Hands the exporter a *copy* of every finished span, attributes copied into a new dict — what an
    SDK release that copies attributes, or a wrapping processor, would do."""

    def __init__(self, exporter: RunJournalExporter) -> None:
        self.exporter = exporter

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        copy = copy_of(span, attributes=dict(span.attributes or {}))
        assert copy.attributes is not span.attributes
        self.exporter.export([copy])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _journal_of_one_run(provider: TracerProvider, store: DuckDBStore) -> tuple[str, Any]:
    handler = RunJournalCallbackHandler(provider)
    agent = build_agent(subagent=False, failing_tool=False, middleware=False)
    agent.invoke(QUESTION, {"callbacks": [handler], "metadata": {"thread_id": "t-copy"}})
    provider.force_flush()
    runs = store.list_runs(thread_id="t-copy")
    assert len(runs) == 1
    return runs[0].run_id, runs[0]


@pytest.mark.parametrize("copying", [False, True], ids=["shared-spans", "copied-attributes"])
def test_content_reaches_the_journal_behind_another_processor(tmp_path: Path, copying: bool) -> None:
    """With a processor running first and with spans whose attributes were copied, the journal still
    records every message, tool argument and tool result."""
    store = DuckDBStore(tmp_path / "j.duckdb")
    exporter = RunJournalExporter(store)
    first = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(first))  # e.g. the app's OTLP processor
    provider.add_span_processor(CopyingProcessor(exporter) if copying else SimpleSpanProcessor(exporter))
    run_id, run = _journal_of_one_run(provider, store)
    messages = [(e.event_type, e.content) for e in store.list_messages("t-copy")]
    assert messages[0] == ("human_message", "What is the weather in Paris?")
    assert messages[-1][0] == "ai_message" and messages[-1][1]
    assert run.first_human_message == "What is the weather in Paris?"
    tools = store.list_events(run_id, event_types=["tool_start", "tool_end"])
    assert tools[0].metadata["args"] == {"city": "Paris"}
    assert tools[1].content and "Paris" in tools[1].content
    assert all(not set(sc.CONTENT_ATTRIBUTES) & set(s.attributes or {}) for s in first.get_finished_spans())
    assert all(_content.peek(s) is None for s in first.get_finished_spans())  # the journal took it all
    provider.shutdown()


def test_take_removes_and_peek_leaves() -> None:
    """A reader takes a span's content once; peeking leaves it for the reader."""
    registry = ContentRegistry()
    registry.put((1, 2), {"a": "b"})
    assert registry.peek((1, 2)) == {"a": "b"}
    assert registry.take((1, 2)) == {"a": "b"}
    assert registry.take((1, 2)) is None
    assert len(registry) == 0


def test_entries_nobody_takes_expire_after_the_ttl() -> None:
    """Content of spans that never reach a journal is dropped after one to two TTLs."""
    registry = ContentRegistry(ttl=0.05)
    registry.put((1, 1), {"x": "1"})
    time.sleep(0.06)
    registry.put((1, 2), {"x": "2"})  # rotates first: (1, 1) is now in the older generation
    assert registry.peek((1, 1)) == {"x": "1"}
    time.sleep(0.06)
    registry.put((1, 3), {"x": "3"})  # rotates again: the older generation is dropped whole
    assert registry.peek((1, 1)) is None
    assert registry.peek((1, 2)) == {"x": "2"}  # put one TTL ago: kept until the next rotation
    assert registry.peek((1, 3)) == {"x": "3"}


def test_the_registry_is_bounded() -> None:
    """However many spans are never exported, at most max_entries are held."""
    registry = ContentRegistry(max_entries=100)
    for i in range(10_000):
        registry.put((0, i), {})
        assert len(registry) <= 100
    assert registry.peek((0, 9_999)) == {}


def test_with_two_journal_readers_both_get_the_content() -> None:
    """Two journal exporters in one process each read a span's content (the TTL drops it later)."""

    class Reader:
        pass

    kept = [Reader(), Reader()]
    for reader in kept:
        _content.add_reader(reader)
    registry = ContentRegistry()
    registry.put((5, 5), {"k": "v"})
    assert registry.take((5, 5)) == {"k": "v"}
    assert registry.take((5, 5)) == {"k": "v"}
