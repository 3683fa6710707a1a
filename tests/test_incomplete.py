"""Totals that say when they are incomplete: the root announces how many spans its run made
(``runjournal.span_count``); the journal marks a run whose spans did not all arrive, and writes a run
whose root never arrived, as incomplete (after the run TTL, not only at shutdown)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_runjournal import RunJournalCallbackHandler, RunRecord
from otel_runjournal import semconv as sc
from otel_runjournal.journal.exporter import RunJournalExporter
from otel_runjournal.stores import DuckDBStore

pytest.importorskip("langgraph")

from otel_runjournal.demo.agent import build_agent

QUESTION = {"messages": [("user", "What's the weather in Paris, and what is 6*7+1?")]}


def _run_spans(on_run_end: Any = None) -> list[ReadableSpan]:
    """The finished spans of one real agent run (the demo's LangGraph agent, scripted model)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    handler = RunJournalCallbackHandler(provider, on_run_end=on_run_end)
    build_agent().invoke(QUESTION, {"callbacks": [handler]})
    return list(memory.get_finished_spans())


def _root(spans: Sequence[ReadableSpan]) -> ReadableSpan:
    return next(s for s in spans if (s.attributes or {}).get(sc.RJ_IS_ROOT))


def test_the_root_announces_how_many_spans_its_run_made() -> None:
    """runjournal.span_count on the root equals the spans the handler exported for the run."""
    spans = _run_spans()
    run_id = _root(spans).attributes[sc.RJ_RUN_ID]  # type: ignore[index]
    ours = [s for s in spans if (s.attributes or {}).get(sc.RJ_RUN_ID) == run_id]
    assert _root(spans).attributes[sc.RJ_SPAN_COUNT] == len(ours) > 5  # type: ignore[index]


def test_all_spans_complete_some_missing_incomplete(tmp_path: Path) -> None:
    """A run whose spans all arrived is complete; the same run missing one model call is not, and
    its totals are smaller than the handler's."""
    ended: list[RunRecord] = []
    spans = _run_spans(ended.append)
    chats = [s for s in spans if s.name.startswith("chat ")]
    with DuckDBStore(tmp_path / "all.duckdb") as store:
        RunJournalExporter(store).export(spans)
        (full,) = store.list_runs()
    assert full.complete is True and full.total_tokens == ended[0].total_tokens
    lost = chats[0]
    with DuckDBStore(tmp_path / "some.duckdb") as store:
        exporter = RunJournalExporter(store)
        exporter.export([s for s in spans if s is not lost])
        (short,) = store.list_runs()
    lost_tokens = (
        lost.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] + lost.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS]
    )  # type: ignore[index,operator]
    assert short.complete is False
    assert short.total_tokens == ended[0].total_tokens - lost_tokens
    assert short.llm_call_count == ended[0].llm_call_count - 1


class _Gate(SpanExporter):
    """Holds the first export until released: the BatchSpanProcessor's tiny queue fills meanwhile and
    drops what comes after (the SDK's "Queue full" path), as under a burst beyond the exporter's rate."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.open = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.open.wait(30)
        self.exported += len(spans)
        return self.inner.export(spans)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def test_a_real_batch_processor_dropping_spans_leaves_an_incomplete_run(tmp_path: Path) -> None:
    """Under a real BatchSpanProcessor with a tiny queue the run's root and some spans are dropped:
    the run is still journaled, marked incomplete, with the totals of what arrived."""
    ended: list[RunRecord] = []
    with DuckDBStore(tmp_path / "j.duckdb") as store:
        gate = _Gate(RunJournalExporter(store))
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(gate, max_queue_size=2, max_export_batch_size=1))
        handler = RunJournalCallbackHandler(provider, on_run_end=ended.append)
        build_agent().invoke(QUESTION, {"callbacks": [handler]})
        gate.open.set()
        provider.shutdown()
        runs = store.list_runs()
    (summary,) = ended
    made = len(_run_spans())  # the same scripted run, every span kept
    assert gate.exported < made  # spans were dropped (the root, ending last, among them)
    (run,) = runs
    assert run.run_id == summary.run_id and run.complete is False
    assert run.total_tokens < summary.total_tokens


def test_a_run_whose_root_never_arrives_is_written_after_the_run_ttl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without its root a run is held; once idle for the run TTL it is written, incomplete, before any
    shutdown (it no longer waits for the process to end, or vanishes with it)."""
    spans = _run_spans()
    root = _root(spans)
    now = [0.0]
    monkeypatch.setenv("OTEL_RUNJOURNAL_RUN_TTL", "60")
    with DuckDBStore(tmp_path / "j.duckdb") as store:
        exporter = RunJournalExporter(store, clock=lambda: now[0])
        exporter.export([s for s in spans if s is not root])
        assert store.list_runs() == []  # held: the root may still come
        now[0] = 61.0
        other = _run_spans()
        exporter.export(other)  # any later export writes what went idle
        runs = {r.run_id: r for r in store.list_runs()}
    lost = runs[root.attributes[sc.RJ_RUN_ID]]  # type: ignore[index]
    assert lost.complete is False and lost.llm_call_count > 0
    assert runs[_root(other).attributes[sc.RJ_RUN_ID]].complete is True  # type: ignore[index]
