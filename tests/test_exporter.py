"""RunJournalExporter on real stores: batching across exports, bounds, flush, failures, foreign spans."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from spanfactory import (
    HANDLER_RUN_EVENTS,
    SpanFactory,
    assistant_output,
    chat_attrs,
    common,
    handler_run,
    user_input,
)

from otel_runjournal import semconv as sc
from otel_runjournal.demo.agent import build_agent
from otel_runjournal.journal.assembler import Assembler
from otel_runjournal.journal.exporter import RunJournalExporter
from otel_runjournal.records import RunWrite
from otel_runjournal.stores.base import RunStore, StoreError
from otel_runjournal.stores.duckdb.store import DuckDBStore
from otel_runjournal.stores.location import open_store
from otel_runjournal.tracing.handler import RunJournalCallbackHandler

STORE_KINDS = ["duckdb", "jsonl"]


def _open(kind: str, tmp_path: Path) -> RunStore:
    if kind == "duckdb":
        return DuckDBStore(tmp_path / "journal.duckdb")
    from otel_runjournal.stores.jsonl.store import JsonlStore

    return JsonlStore(tmp_path / "journal")


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    s = _open(request.param, tmp_path)
    yield s
    s.close()


@pytest.fixture
def f(tracer_provider: TracerProvider) -> SpanFactory:
    return SpanFactory(tracer_provider)


class FlakyStore:
    """Failure-path test double: raises on the next ``failures`` writes, then delegates to a real store."""

    def __init__(self, real: RunStore, failures: int) -> None:
        self.real, self.failures, self.calls = real, failures, 0

    def write(self, batch: Sequence[RunWrite]) -> None:
        self.calls += 1
        if self.failures != 0:
            self.failures -= 1
            raise StoreError("disk full (test double)")
        self.real.write(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _types(store: RunStore, run_id: str) -> list[str]:
    events = store.list_events(run_id, limit=1000)
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    return [e.event_type for e in events]


def test_run_written_when_its_root_arrives_in_a_later_batch(store: RunStore, f: SpanFactory) -> None:
    """Children exported in earlier batches are held; the root's batch writes the whole run in time order."""
    exporter = RunJournalExporter(store)
    spans = handler_run(f, "run-a", thread_id="th")
    for span in spans[:-1]:
        assert exporter.export([span]) is SpanExportResult.SUCCESS
    assert store.get_run("run-a") is None
    assert exporter.stats.pending_spans == 3
    assert exporter.export([spans[-1]]) is SpanExportResult.SUCCESS
    assert _types(store, "run-a") == HANDLER_RUN_EVENTS
    run = store.get_run("run-a")
    assert run is not None
    assert (run.status, run.total_tokens, run.lead_agent_tokens, run.llm_call_count) == ("success", 42, 42, 2)
    assert (run.message_count, run.first_human_message, run.last_ai_message) == (
        2,
        "weather in Paris?",
        "It is sunny.",
    )
    assert exporter.stats.pending_spans == 0 and exporter.stats.written_spans == 4
    exporter.shutdown()


def test_interleaved_runs_of_one_thread(store: RunStore, f: SpanFactory) -> None:
    """Two interleaved runs of one thread: each run in order; the thread's seq unique and rising."""
    exporter = RunJournalExporter(store)
    a = handler_run(f, "run-a", thread_id="th", question="first?", answer="one")
    b = handler_run(f, "run-b", thread_id="th", t=200, question="second?", answer="two")
    assert exporter.export([a[0], b[0]]) is SpanExportResult.SUCCESS
    assert exporter.export([b[1], a[1], b[2], b[3]]) is SpanExportResult.SUCCESS  # b completes first
    assert exporter.export([a[2], a[3]]) is SpanExportResult.SUCCESS
    assert _types(store, "run-a") == _types(store, "run-b") == HANDLER_RUN_EVENTS
    messages = store.list_messages("th", limit=10)
    assert [m.content for m in messages] == ["second?", "two", "first?", "one"]  # written order
    b_seqs = [e.seq for e in store.list_events("run-b", limit=100)]
    a_seqs = [e.seq for e in store.list_events("run-a", limit=100)]
    assert max(b_seqs) < min(a_seqs)
    usage = store.token_usage(thread_id="th")
    assert (usage.run_count, usage.total_tokens, usage.lead_agent_tokens) == (2, 84, 84)
    exporter.shutdown()


def test_memory_bound_writes_the_oldest_run_early(store: RunStore, f: SpanFactory) -> None:
    """Past max_pending_spans the oldest run is written as 'running'; its root completes it later."""
    exporter = RunJournalExporter(store, max_pending_spans=2)
    spans = handler_run(f, "run-a")
    assert exporter.export(spans[:3]) is SpanExportResult.SUCCESS
    partial = store.get_run("run-a")
    assert partial is not None and (partial.status, partial.total_tokens) == ("running", 42)
    assert exporter.stats.pending_spans == 0
    assert exporter.export(spans[3:]) is SpanExportResult.SUCCESS
    run = store.get_run("run-a")
    assert run is not None
    assert (run.status, run.total_tokens, run.llm_call_count, run.message_count) == ("success", 42, 2, 2)
    # documented caveat: the part written early comes first; run_start arrives with the root
    assert _types(store, "run-a") == [
        *["llm_start", "llm_end", "tool_start", "tool_end", "llm_start", "llm_end", "ai_message"],
        *["run_start", "human_message", "run_end"],
    ]
    exporter.shutdown()


def test_force_flush_writes_running_then_the_root_completes(store: RunStore, f: SpanFactory) -> None:
    """force_flush writes an unfinished run as 'running'; when its root arrives, the row is completed."""
    exporter = RunJournalExporter(store)
    spans = handler_run(f, "run-a")
    exporter.export(spans[:2])
    assert exporter.force_flush() is True
    run = store.get_run("run-a")
    assert run is not None and (run.status, run.total_tokens) == ("running", 15)
    exporter.export(spans[2:])
    run = store.get_run("run-a")
    assert run is not None and (run.status, run.total_tokens, run.llm_call_count) == ("success", 42, 2)
    assert len(_types(store, "run-a")) == len(HANDLER_RUN_EVENTS)
    exporter.shutdown()


def test_shutdown_writes_unfinished_runs_as_abandoned(store: RunStore, f: SpanFactory) -> None:
    """shutdown writes held spans and marks unfinished runs abandoned, also runs flushed earlier."""
    exporter = RunJournalExporter(store)
    a = handler_run(f, "run-a")
    b = handler_run(f, "run-b", t=200)
    exporter.export(a[:1])
    exporter.force_flush()
    exporter.export(b[:2])
    exporter.shutdown()
    for run_id, tokens in (("run-a", 15), ("run-b", 15)):
        run = store.get_run(run_id)
        assert run is not None and (run.status, run.total_tokens) == ("abandoned", tokens)
    assert _types(store, "run-b") == ["llm_start", "llm_end", "tool_start", "tool_end"]
    assert store.list_runs(status="abandoned", limit=10) != []


def test_failed_write_is_retried_with_the_next_export(
    store: RunStore, f: SpanFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing store → FAILURE, logged once; the next export retries the kept runs first, then succeeds."""
    flaky = FlakyStore(store, failures=2)
    exporter = RunJournalExporter(flaky)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="otel_runjournal"):
        assert exporter.export(handler_run(f, "run-a", thread_id="th")) is SpanExportResult.FAILURE
        assert exporter.export(handler_run(f, "run-b", thread_id="th", t=200)) is SpanExportResult.FAILURE
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1
    assert exporter.stats.retry_spans == 8 and exporter.stats.failed_writes == 2
    assert exporter.export([]) is SpanExportResult.SUCCESS
    assert flaky.calls == 3
    a_seqs = [e.seq for e in store.list_events("run-a", limit=100)]
    b_seqs = [e.seq for e in store.list_events("run-b", limit=100)]
    assert len(a_seqs) == len(b_seqs) == len(HANDLER_RUN_EVENTS) and max(a_seqs) < min(b_seqs)
    assert exporter.dropped_spans == 0 and exporter.stats.retry_spans == 0
    exporter.shutdown()


def test_spans_dropped_after_the_retries_are_counted(
    store: RunStore, f: SpanFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A store that keeps failing: each batch is retried max_retries times, then dropped and counted;
    shutdown says in one line how many spans are lost (not that they are kept for retries)."""
    exporter = RunJournalExporter(FlakyStore(store, failures=-1), max_retries=1)  # type: ignore[arg-type]
    assert exporter.export(handler_run(f, "run-a")) is SpanExportResult.FAILURE
    assert exporter.dropped_spans == 0
    assert exporter.export(handler_run(f, "run-b", t=200)) is SpanExportResult.FAILURE
    assert exporter.dropped_spans == 4  # run-a's second failure used up its retry
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="otel_runjournal"):
        exporter.shutdown()  # run-b's retry fails too and nothing can retry it after shutdown
    assert exporter.dropped_spans == 8 and exporter.stats.retry_spans == 0
    assert store.get_run("run-a") is None
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "4 spans could not be written" in said[0] and "are lost" in said[0], said


def test_a_clean_shutdown_says_nothing(
    store: RunStore, f: SpanFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Shutdown after a failure that a later write recovered from: everything is written, nothing is said."""
    flaky = FlakyStore(store, failures=1)
    exporter = RunJournalExporter(flaky)  # type: ignore[arg-type]
    assert exporter.export(handler_run(f, "run-a")) is SpanExportResult.FAILURE
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="otel_runjournal"):
        exporter.shutdown()  # the final write retries run-a and succeeds
    assert store.get_run("run-a") is not None and exporter.dropped_spans == 0
    assert caplog.records == []


def test_export_after_shutdown_and_double_shutdown(
    store: RunStore, f: SpanFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """export after shutdown → FAILURE; a second shutdown only warns; a store we were given stays open."""
    exporter = RunJournalExporter(store)
    exporter.shutdown()
    with caplog.at_level(logging.WARNING):
        assert exporter.export(handler_run(f, "run-a")) is SpanExportResult.FAILURE
        exporter.shutdown()
    assert any("more than once" in r.getMessage() for r in caplog.records)
    assert exporter.force_flush() is False
    assert store.get_run("run-a") is None
    store.write([])  # still open


@pytest.mark.parametrize("location", ["env.duckdb", "jsonl:///{tmp}/env-journal"])
def test_zero_argument_construction_from_environment(
    tmp_path: Path, f: SpanFactory, monkeypatch: pytest.MonkeyPatch, location: str
) -> None:
    """RunJournalExporter() opens OTEL_RUNJOURNAL_STORE and honours OTEL_RUNJOURNAL_MAX_PENDING_SPANS."""
    location = location.format(tmp=str(tmp_path).lstrip("/"))
    if "://" not in location:
        location = str(tmp_path / location)
    monkeypatch.setenv("OTEL_RUNJOURNAL_STORE", location)
    monkeypatch.setenv("OTEL_RUNJOURNAL_MAX_PENDING_SPANS", "1")
    exporter = RunJournalExporter()
    spans = handler_run(f, "run-env")
    exporter.export(spans[:2])  # over the bound of 1: written early
    assert exporter.stats.pending_spans == 0
    exporter.export(spans[2:])
    exporter.shutdown()  # closes the store it opened (a DuckDB file can be reopened at once)
    reopened = open_store(location)
    try:
        run = reopened.get_run("run-env")
        assert run is not None and (run.status, run.total_tokens) == ("success", 42)
    finally:
        reopened.close()


@pytest.mark.parametrize("bad", [0, -5])
def test_invalid_bound_is_rejected_in_init(store: RunStore, bad: int) -> None:
    """Configuration errors raise ValueError in __init__ (and only there)."""
    with pytest.raises(ValueError, match="max_pending_spans"):
        RunJournalExporter(store, max_pending_spans=bad)


# --- foreign spans (other instrumentations) --------------------------------------------------------
def _foreign_agent(f: SpanFactory) -> tuple[list[ReadableSpan], ReadableSpan]:
    """An HTTP request span (not GenAI) around a foreign agent: chat (legacy usage names) + tool."""
    http = f.start("GET /ask", 0, kind=SpanKind.SERVER, attrs={"http.request.method": "GET"})
    agent = f.start(
        "invoke_agent planner",
        1,
        parent=http,
        attrs={sc.GEN_AI_OPERATION_NAME: "invoke_agent", sc.GEN_AI_AGENT_NAME: "planner"},
    )
    chat = f.start(
        "chat gpt-4o",
        2,
        parent=agent,
        kind=SpanKind.CLIENT,
        attrs={sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o"},
    )
    tool = f.start("execute_tool search", 8, parent=agent, attrs={sc.GEN_AI_TOOL_NAME: "search"})
    spans = [
        f.end(
            chat,
            5,
            attrs={
                "gen_ai.usage.prompt_tokens": 12,
                "gen_ai.usage.completion_tokens": 3,
                sc.GEN_AI_OUTPUT_MESSAGES: assistant_output("let me search"),
            },
        ),
        f.end(tool, 9, attrs={sc.GEN_AI_TOOL_CALL_RESULT: "found"}),
        f.end(
            agent,
            10,
            attrs={sc.GEN_AI_INPUT_MESSAGES: user_input("plan a trip"), sc.GEN_AI_CONVERSATION_ID: "conv-7"},
        ),
    ]
    return spans, f.end(http, 11)


def test_foreign_genai_spans_are_journaled_per_trace(store: RunStore, f: SpanFactory) -> None:
    """Foreign GenAI spans form a run (id = trace id) ended by the trace's local root; HTTP spans: no rows."""
    exporter = RunJournalExporter(store)
    genai, http = _foreign_agent(f)
    exporter.export(genai)
    assert exporter.stats.pending_spans == 3
    exporter.export([http])
    run_id = format(http.get_span_context().trace_id, "032x")
    assert _types(store, run_id) == [
        *["run_start", "human_message", "llm_start", "llm_end", "ai_message"],
        *["tool_start", "tool_end", "run_end"],
    ]
    run = store.get_run(run_id)
    assert run is not None
    assert (run.name, run.status, run.thread_id, run.trace_id) == ("planner", "success", "conv-7", run_id)
    assert [m.event_type for m in store.list_messages("conv-7", limit=10)] == ["human_message", "ai_message"]
    assert (run.input_tokens, run.output_tokens, run.lead_agent_tokens) == (12, 3, 15)
    assert exporter.stats.written_spans == 3
    exporter.shutdown()


def test_foreign_group_finished_by_idle_timeout(store: RunStore, f: SpanFactory) -> None:
    """A foreign group whose local root never ends is written after the idle timeout (fake clock)."""
    now = [100.0]
    exporter = RunJournalExporter(store, foreign_idle_timeout=30, clock=lambda: now[0])
    http = f.start("GET /long", 0, kind=SpanKind.SERVER)  # never ends
    chat = f.start("chat m", 1, parent=http, kind=SpanKind.CLIENT, attrs=chat_attrs("m", 5, 5))
    exporter.export([f.end(chat, 2)])
    now[0] += 29
    exporter.export([])
    assert exporter.stats.pending_runs == 1
    now[0] += 2
    exporter.export([])
    run_id = format(chat.get_span_context().trace_id, "032x")
    assert _types(store, run_id) == ["run_start", "llm_start", "llm_end", "run_end"]
    exporter.shutdown()


def test_foreign_spans_in_a_handler_trace_not_double_counted(store: RunStore, f: SpanFactory) -> None:
    """A provider instrumentation's chat span in the handler's trace is ignored (the handler counted it)."""
    exporter = RunJournalExporter(store)
    spans = handler_run(f, "run-a")
    inner = f.start(
        "chat scripted-1", 11, parent=spans[0], kind=SpanKind.CLIENT, attrs=chat_attrs("x", 10, 5)
    )
    exporter.export([f.end(inner, 12), *spans])
    run = store.get_run("run-a")
    assert run is not None and run.total_tokens == 42
    assert exporter.stats.ignored_spans == 1
    assert exporter.stats.pending_runs == 0
    exporter.shutdown()


def test_non_genai_trace_is_ignored(store: RunStore, f: SpanFactory) -> None:
    """An application's own spans without GenAI attributes produce no rows."""
    exporter = RunJournalExporter(store)
    http = f.start("GET /health", 0, kind=SpanKind.SERVER)
    db = f.start("SELECT", 1, parent=http, attrs={"db.system": "postgresql"})
    exporter.export([f.end(db, 2), f.end(http, 3)])
    exporter.shutdown()
    assert store.list_runs(limit=10) == []
    assert exporter.stats.written_runs == 0 and exporter.stats.exported_spans == 2


def test_common_attrs_helper_matches_handler_contract(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """spanfactory.common's attributes are ones the real handler puts on every span of a real agent run."""
    handler = RunJournalCallbackHandler(tracer_provider)
    build_agent().invoke(
        {"messages": [("user", "hi")]}, {"callbacks": [handler], "configurable": {"thread_id": "t"}}
    )
    spans = span_exporter.get_finished_spans()
    assert len(spans) > 10
    keys = set(common("r"))
    for span in spans:
        assert keys <= set(span.attributes or {}), (span.name, sorted(keys - set(span.attributes or {})))
    [root] = [s for s in spans if s.parent is None]
    run_id = root.attributes[sc.RJ_RUN_ID]
    assert {(s.attributes or {})[sc.RJ_RUN_ID] for s in spans} == {run_id}
    assert {(s.attributes or {})[sc.RJ_THREAD_ID] for s in spans} == {"t"}
    assert root.attributes[sc.RJ_CALLER] == "lead_agent"


def test_reused_run_id_is_held_until_its_next_root(store: RunStore, f: SpanFactory) -> None:
    """A run id the application reuses: the second invocation is held until its root; totals add up."""
    exporter = RunJournalExporter(store)
    exporter.export(handler_run(f, "run-a", question="first?", answer="one"))
    second = handler_run(f, "run-a", t=200, question="second?", answer="two")
    exporter.export(second[:3])
    assert exporter.stats.pending_spans == 3
    exporter.export(second[3:])
    run = store.get_run("run-a")
    assert run is not None
    assert (run.total_tokens, run.llm_call_count, run.message_count) == (84, 4, 4)
    assert (run.first_human_message, run.last_ai_message) == ("first?", "two")
    assert _types(store, "run-a") == HANDLER_RUN_EVENTS * 2
    exporter.shutdown()


def test_journal_content_off(store: RunStore, f: SpanFactory) -> None:
    """journal_content=False: no content recorded and no message rows; tokens and trace events remain."""
    exporter = RunJournalExporter(store, journal_content=False)
    exporter.export(handler_run(f, "run-a"))
    events = store.list_events("run-a", limit=100)
    assert [e.event_type for e in events] == [t for t in HANDLER_RUN_EVENTS if "message" not in t]
    assert all(e.content is None for e in events)
    run = store.get_run("run-a")
    assert run is not None and (run.message_count, run.first_human_message, run.total_tokens) == (0, None, 42)
    exporter.shutdown()


def test_sdk_entry_point_builds_the_exporter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_TRACES_EXPORTER=runjournal: the SDK finds the entry point and builds it with no arguments."""
    from opentelemetry.sdk._configuration import _import_exporters

    monkeypatch.setenv("OTEL_RUNJOURNAL_STORE", str(tmp_path / "ep.duckdb"))
    trace_exporters, _, _ = _import_exporters(["runjournal"], [], [])
    exporter = trace_exporters["runjournal"]()
    assert isinstance(exporter, RunJournalExporter)
    assert isinstance(exporter.store, DuckDBStore) and Path(exporter.store.path) == tmp_path / "ep.duckdb"
    exporter.shutdown()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), bound=st.sampled_from([1, 4, 100_000]))
def test_any_batching_writes_every_event_exactly_once(
    f: SpanFactory, data: st.DataObject, bound: int
) -> None:
    """Any interleaving and batching of three runs (each root last): every event once, rows exact."""
    runs = {f"r{i}": handler_run(f, f"r{i}", thread_id="th", t=i * 10) for i in range(3)}
    order: list[ReadableSpan] = data.draw(st.permutations([s for spans in runs.values() for s in spans[:-1]]))
    for spans in runs.values():  # each root somewhere after its run's last child
        last = max(order.index(s) for s in spans[:-1])
        order.insert(data.draw(st.integers(last + 1, len(order))), spans[-1])
    cuts = sorted(data.draw(st.sets(st.integers(1, len(order) - 1), max_size=6)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    assembler = Assembler(max_pending_spans=bound)
    writes = [w for batch in batches for w in assembler.add(batch)] + assembler.drain(final=True)
    for run_id in runs:
        mine = [w for w in writes if w.run.run_id == run_id]
        types = [e.event_type for w in mine for e in w.events]
        assert sorted(types) == sorted(HANDLER_RUN_EVENTS)
        if bound == 100_000:
            assert len(mine) == 1 and types == HANDLER_RUN_EVENTS
        final = mine[-1].run
        assert (final.status, final.total_tokens, final.llm_call_count, final.message_count) == (
            "success",
            42,
            2,
            2,
        )
        assert sum(len(w.spans) for w in mine) == 4
    assert assembler.pending_spans == 0
