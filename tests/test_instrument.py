"""instrument()/uninstrument() and RunJournalInstrumentor trace LangChain runs without callbacks=."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_runjournal.demo.agent import build_agent
from otel_runjournal.tracing.handler import RunJournalCallbackHandler
from otel_runjournal.tracing.instrument import (
    RunJournalInstrumentor,
    instrument,
    instrumented_handler,
    uninstrument,
)

ROOT = "invoke_agent research_assistant"


@pytest.fixture(autouse=True)
def _always_uninstrument() -> Iterator[None]:
    yield
    uninstrument()


def _agent() -> Any:
    return build_agent(subagent=False, failing_tool=False, middleware=False)


def _invoke(config: dict[str, Any] | None = None) -> None:
    _agent().invoke({"messages": [("user", "weather?")]}, config or {})


def _roots(exporter: InMemorySpanExporter) -> list[str]:
    return [s.name for s in exporter.get_finished_spans() if s.parent is None]


def test_instrument_traces_without_callbacks(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """After instrument(), a run with no callbacks= is traced as one full tree; uninstrument() stops it."""
    handler = instrument(tracer_provider=tracer_provider)
    assert instrumented_handler() is handler
    _invoke()
    spans = span_exporter.get_finished_spans()
    assert _roots(span_exporter) == [ROOT]
    assert len([s for s in spans if s.name.startswith("chat ")]) == 3
    assert len({s.context.trace_id for s in spans}) == 1
    uninstrument()
    assert instrumented_handler() is None
    span_exporter.clear()
    _invoke()
    assert span_exporter.get_finished_spans() == ()


def test_instrument_again_returns_active_handler(tracer_provider: TracerProvider) -> None:
    """A second instrument() without a handler returns the active one instead of stacking another."""
    first = instrument(tracer_provider=tracer_provider)
    assert instrument(tracer_provider=tracer_provider) is first


def test_explicit_same_handler_is_not_doubled(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """callbacks=[handler] while that handler is instrumented produces each span once."""
    handler = RunJournalCallbackHandler(tracer_provider=tracer_provider)
    assert instrument(handler) is handler
    _invoke({"callbacks": [handler]})
    assert _roots(span_exporter) == [ROOT]
    assert len([s for s in span_exporter.get_finished_spans() if s.name.startswith("chat ")]) == 3


def test_explicit_other_handler_wins(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """A run that passes its own RunJournalCallbackHandler is not traced a second time by the hook."""
    other_exporter = InMemorySpanExporter()
    other_provider = TracerProvider()
    other_provider.add_span_processor(SimpleSpanProcessor(other_exporter))
    instrument(tracer_provider=tracer_provider)
    _invoke({"callbacks": [RunJournalCallbackHandler(tracer_provider=other_provider)]})
    assert _roots(other_exporter) == [ROOT]
    assert span_exporter.get_finished_spans() == ()


def test_plain_threads_and_asyncio_are_traced(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """Runs started on a plain thread and with ainvoke are traced too, each as its own tree."""
    instrument(tracer_provider=tracer_provider)
    worker = threading.Thread(target=_invoke)
    worker.start()
    worker.join()
    asyncio.run(_agent().ainvoke({"messages": [("user", "async weather?")]}))
    assert _roots(span_exporter) == [ROOT, ROOT]
    traces = {s.context.trace_id for s in span_exporter.get_finished_spans()}
    assert len(traces) == 2


def test_instrumentor_round_trip(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """RunJournalInstrumentor().instrument(tracer_provider=...) traces; .uninstrument() stops it."""
    instrumentor = RunJournalInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, capture_content=True)
    try:
        assert instrumentor.is_instrumented_by_opentelemetry
        _invoke()
        chats = [s for s in span_exporter.get_finished_spans() if s.name.startswith("chat ")]
        assert len(chats) == 3
        assert all("gen_ai.input.messages" in (s.attributes or {}) for s in chats)  # kwargs reach the handler
    finally:
        instrumentor.uninstrument()
    span_exporter.clear()
    _invoke()
    assert span_exporter.get_finished_spans() == ()


def test_entry_points_are_registered() -> None:
    """opentelemetry-instrument finds our instrumentor and exporter through their entry points."""
    instrumentors = {ep.name: ep for ep in entry_points(group="opentelemetry_instrumentor")}
    assert instrumentors["langchain_runjournal"].load() is RunJournalInstrumentor
    exporters = {ep.name: ep for ep in entry_points(group="opentelemetry_traces_exporter")}
    from otel_runjournal.journal.exporter import RunJournalExporter

    assert exporters["runjournal"].load() is RunJournalExporter
    assert list(RunJournalInstrumentor().instrumentation_dependencies()) == ["langchain-core >= 0.3"]
