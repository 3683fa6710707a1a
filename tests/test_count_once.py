"""A model call counts once: the provider SDK's instrumentation reports the same call as our chat span
(``opentelemetry-instrumentation-openai-v2`` below ``ChatOpenAI``); the journal keeps its span but bills
the call once — runs, views, ``on_run_end`` — and never makes a run of it. Expected numbers are what
the loopback server billed, counted at the server."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai_stub_server import USAGE, StubOpenAI
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otlp_receiver import ReceiverProcess
from pg_server import Schema

from otel_runjournal import RunJournalCallbackHandler, RunJournalExporter, configure, open_store
from otel_runjournal import semconv as sc
from otel_runjournal.records import RunRecord
from otel_runjournal.stores.base import RunStore


@pytest.fixture(scope="module")
def stub() -> Iterator[StubOpenAI]:
    """One loopback OpenAI-compatible server for the module."""
    with StubOpenAI() as server:
        yield server


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    """The application's provider, with the OpenAI SDK's own instrumentation on it."""
    tp = TracerProvider()
    OpenAIInstrumentor().instrument(tracer_provider=tp)
    yield tp
    OpenAIInstrumentor().uninstrument()
    tp.shutdown()


@pytest.fixture(params=["duckdb", "jsonl", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A journal location of each kind (PostgreSQL: a fresh schema on the test server)."""
    if request.param == "duckdb":
        yield str(tmp_path / "j.duckdb")
    elif request.param == "jsonl":
        yield f"jsonl:///{tmp_path / 'journal'}"
    else:
        schema = Schema()
        try:
            yield schema.url
        finally:
            schema.drop()


def _agent(stub: StubOpenAI) -> Any:
    @tool
    def lookup(city: str) -> str:
        """Look a city up."""
        return f"{city}: 21 degrees"

    model = ChatOpenAI(model="gpt-test", base_url=stub.base_url, api_key="test", max_retries=0)
    return create_agent(model, [lookup])


def billed(calls: int) -> dict[str, int]:
    """What the server billed for ``calls`` requests (its USAGE, per request)."""
    return {
        "input_tokens": USAGE["prompt_tokens"] * calls,
        "output_tokens": USAGE["completion_tokens"] * calls,
        "cached_input_tokens": USAGE["prompt_tokens_details"]["cached_tokens"] * calls,  # type: ignore[index]
        "reasoning_tokens": USAGE["completion_tokens_details"]["reasoning_tokens"] * calls,  # type: ignore[index]
        "llm_call_count": calls,
    }


def _totals(run: RunRecord) -> dict[str, int]:
    return {k: getattr(run, k) for k in billed(0)}


def _drive(mode: str, stub: StubOpenAI, config: dict[str, Any]) -> None:
    inputs = {"messages": [HumanMessage("What's the weather in Paris?")]}
    if mode == "ainvoke":
        asyncio.run(_agent(stub).ainvoke(inputs, config))
    elif mode == "stream":
        assert list(_agent(stub).stream(inputs, config))
    elif mode == "model stream":  # a streamed call on its own, usage from the final chunk
        model = ChatOpenAI(
            model="gpt-test", base_url=stub.base_url, api_key="test", max_retries=0, stream_usage=True
        )
        assert "".join(str(c.content) for c in model.stream("hi", config))
    else:
        raise AssertionError(mode)


@pytest.mark.parametrize("mode", ["ainvoke", "stream", "model stream"])
def test_journal_counts_each_call_once(
    mode: str, location: str, provider: TracerProvider, stub: StubOpenAI
) -> None:
    """No span of the application around the call: one run, the tokens and calls the server billed
    (not twice), in the runs row, on_run_end, the token views; the SDK's spans stay as duplicate rows."""
    ended: list[RunRecord] = []
    journal = configure(location, tracer_provider=provider, on_run_end=ended.append, set_global=False)
    try:
        before = len(stub.requests)
        config = {"callbacks": [journal.handler], "metadata": {"thread_id": "t-once"}}
        _drive(mode, stub, config)
        calls = len(stub.requests) - before
        assert calls == (1 if mode == "model stream" else 2)
        journal.force_flush()
        store = journal.store
        runs = store.list_runs()
        assert len(runs) == 1, [(r.name, r.run_id) for r in runs]
        assert runs[0].thread_id == "t-once"  # the SDK's spans, arriving first, do not decide it
        assert _totals(runs[0]) == billed(calls)
        assert [_totals(r) for r in ended] == [billed(calls)]
        assert store.token_usage().input_tokens == billed(calls)["input_tokens"]
        rows = store.list_spans(runs[0].run_id)
        duplicates = [r for r in rows if r.attributes.get(sc.RJ_DUPLICATE)]
        assert len(duplicates) == calls  # the SDK's chat spans, kept
        assert all(r.name.startswith("chat ") and sc.RJ_RUN_ID not in r.attributes for r in duplicates)
        ours = {r.span_id for r in rows if r.attributes.get(sc.RJ_RUN_ID)}
        assert all(r.parent_span_id in ours for r in duplicates)  # each one below one of our spans
        events = store.list_events(runs[0].run_id, event_types=["llm_end"], limit=100)
        assert len(events) == calls
        if not location.startswith("jsonl"):
            query = "select sum(input_tokens), sum(llm_calls) from tokens_by_model"
            (total, llm_calls), *_ = store.sql(query)
            assert (int(total), int(llm_calls)) == (billed(calls)["input_tokens"], calls)
    finally:
        journal.shutdown()


def _spans_of_one_run(provider: TracerProvider, stub: StubOpenAI) -> tuple[list[ReadableSpan], int]:
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    before = len(stub.requests)
    _drive("ainvoke", stub, {"callbacks": [RunJournalCallbackHandler(provider)]})
    return list(memory.get_finished_spans()), len(stub.requests) - before


def _foreign(span: ReadableSpan) -> bool:
    return sc.RJ_RUN_ID not in (span.attributes or {})


@pytest.mark.parametrize("order", ["foreign first", "foreign last", "as ended"])
def test_export_order_does_not_matter(
    order: str, tmp_path: Path, provider: TracerProvider, stub: StubOpenAI
) -> None:
    """The SDK's spans may reach the journal in an earlier batch than ours (they end first), or after
    our run was written: either way one run, billed once, with the SDK's spans as its duplicates."""
    finished, calls = _spans_of_one_run(provider, stub)
    foreign = [s for s in finished if _foreign(s)]
    ours = [s for s in finished if not _foreign(s)]
    assert len(foreign) == calls
    batches = {
        "foreign first": [foreign, ours],
        "foreign last": [ours, foreign],
        "as ended": [[s] for s in finished],
    }[order]
    store: RunStore = open_store(str(tmp_path / "j.duckdb"))
    exporter = RunJournalExporter(store)
    try:
        for batch in batches:
            exporter.export(batch)
        exporter.force_flush()
        runs = store.list_runs()
        assert len(runs) == 1, [r.name for r in runs]
        assert _totals(runs[0]) == billed(calls)
        rows = store.list_spans(runs[0].run_id)
        assert sum(1 for r in rows if r.attributes.get(sc.RJ_DUPLICATE)) == calls
        assert len(rows) == len(finished)
    finally:
        exporter.shutdown()
        store.close()


INSTRUMENT = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))


def test_zero_code_nests_and_counts_once(tmp_path: Path, stub: StubOpenAI) -> None:
    """``opentelemetry-instrument`` with every installed instrumentation on (httpx, the OpenAI SDK's,
    ours) and no tracing code in the app: what the app's code opens nests under our spans in what OTLP
    receives, and the journal bills each call once."""
    assert INSTRUMENT is not None, "opentelemetry-distro is a dev dependency"
    store = tmp_path / "zero.duckdb"
    app = Path(__file__).resolve().parent / "zero_code_openai_app.py"
    with ReceiverProcess(tmp_path / "otlp") as rx:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(
            STUB_URL=stub.base_url,
            OTEL_SERVICE_NAME="zero-code-openai",
            OTEL_TRACES_EXPORTER="otlp,runjournal",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_ENDPOINT=rx.http_endpoint,
            OTEL_RUNJOURNAL_STORE=str(store),
        )
        before = len(stub.requests)
        out = subprocess.run(
            [INSTRUMENT, sys.executable, str(app)], env=env, capture_output=True, text=True, timeout=180
        )
        assert out.returncode == 0, out.stderr[-3000:]
        calls = len(stub.requests) - before
        assert calls == 4
        # theirs: 4 SDK chat spans, 2 db.select, 2 GET; ours: 2 roots, 4 chat, 2 execute_tool, nodes
        received = rx.wait_for_spans(8 + 8)
    by_id = {s.span_id: s for s in received}

    def parent(span: Any) -> Any:
        return by_id.get(span.parent_span_id or "")

    sdk = [s for s in received if s.name.startswith("chat ") and sc.RJ_RUN_ID not in s.attributes]
    assert len(sdk) == calls
    assert all(sc.RJ_RUN_ID in parent(s).attributes and parent(s).name.startswith("chat ") for s in sdk)
    selects = [s for s in received if s.name == "db.select"]
    assert len(selects) == 2 and all(parent(s).name == "execute_tool lookup" for s in selects)
    http = [s for s in received if "http.request.method" in s.attributes or "http.method" in s.attributes]
    gets = [s for s in http if s.name == "GET"]  # the tool's own call
    assert len(gets) == 2 and all(parent(s).name == "db.select" for s in gets)
    posts = [s for s in http if s.name == "POST"]  # the model's request, where instrumented
    assert all(parent(s).name.startswith("chat ") for s in posts)
    assert len({s.trace_id for s in received}) == 2
    journal = open_store(str(store))
    try:
        runs = journal.list_runs()
        assert sorted(r.thread_id for r in runs) == ["zero-a", "zero-s"]
        assert sum(r.llm_call_count for r in runs) == calls
        assert sum(r.input_tokens for r in runs) == billed(calls)["input_tokens"]
        assert sum(r.output_tokens for r in runs) == billed(calls)["output_tokens"]
    finally:
        journal.close()
