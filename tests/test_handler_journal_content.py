"""journal_content's default: content goes to the side channel only while a journal exporter reads it."""

from __future__ import annotations

import weakref
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_runjournal import RunJournalExporter
from otel_runjournal import content as _content
from otel_runjournal import semconv as sc
from otel_runjournal.demo.agent import build_agent
from otel_runjournal.stores.jsonl.store import JsonlStore
from otel_runjournal.tracing.handler import RunJournalCallbackHandler

QUESTION = {"messages": [("user", "hi there")]}


@pytest.fixture(autouse=True)
def no_other_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exporters of other tests (still referenced somewhere) must not count here; no env override."""
    monkeypatch.setattr(_content, "_READERS", weakref.WeakSet())
    monkeypatch.delenv("OTEL_RUNJOURNAL_JOURNAL_CONTENT", raising=False)
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)


def _spans_of_one_run(handler: RunJournalCallbackHandler, memory: InMemorySpanExporter) -> list[ReadableSpan]:
    memory.clear()
    build_agent(subagent=False, failing_tool=False).invoke(QUESTION, {"callbacks": [handler]})
    return list(memory.get_finished_spans())


def _with_content(spans: list[ReadableSpan]) -> set[str]:
    return {s.name for s in spans if _content.peek(s)}


def test_default_collects_nothing_without_a_journal_exporter(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """OTLP-only set-ups: nothing reads the side channel, so nothing is kept for it."""
    spans = _spans_of_one_run(RunJournalCallbackHandler(tracer_provider), span_exporter)
    assert spans and _with_content(spans) == set()
    assert all(not set(sc.CONTENT_ATTRIBUTES) & set(s.attributes or {}) for s in spans)


def test_default_follows_the_journal_exporters_lifetime(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    """Content is collected while a content-recording exporter exists, and not after its shutdown."""
    handler = RunJournalCallbackHandler(tracer_provider)
    exporter = RunJournalExporter(JsonlStore(tmp_path / "journal"))
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    spans = _spans_of_one_run(handler, span_exporter)
    run_id = str(spans[-1].attributes[sc.RJ_RUN_ID])
    assert [e.event_type for e in exporter.store.list_messages(run_id)][:1] == ["human_message"]
    tool_start = exporter.store.list_events(run_id, event_types=["tool_start"])[0]
    assert tool_start.metadata["args"] == {"city": "Paris"}  # the tool's content reached the journal
    assert _with_content(spans) == set()  # ... and the journal took all of it: nothing left behind

    exporter.shutdown()
    assert _with_content(_spans_of_one_run(handler, span_exporter)) == set()


def test_exporter_without_content_is_no_reader(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    """An exporter built with journal_content=False does not make handlers collect content."""
    exporter = RunJournalExporter(JsonlStore(tmp_path / "journal"), journal_content=False)
    spans = _spans_of_one_run(RunJournalCallbackHandler(tracer_provider), span_exporter)
    assert _with_content(spans) == set()
    exporter.shutdown()


@pytest.mark.parametrize(("argument", "environment"), [(True, None), (None, "true")])
def test_explicit_true_collects_without_an_exporter(
    tracer_provider: TracerProvider,
    span_exporter: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
    argument: bool | None,
    environment: str | None,
) -> None:
    """journal_content=True (argument or OTEL_RUNJOURNAL_JOURNAL_CONTENT) always collects."""
    if environment is not None:
        monkeypatch.setenv("OTEL_RUNJOURNAL_JOURNAL_CONTENT", environment)
    handler = RunJournalCallbackHandler(tracer_provider, journal_content=argument)
    assert "chat scripted-1" in _with_content(_spans_of_one_run(handler, span_exporter))
