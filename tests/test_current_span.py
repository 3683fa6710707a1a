"""Inside the application's own tracing: while a step runs its span is the current span, so what other
instrumentations (the OpenAI SDK's, httpx's) and the application's own code open nests under ours; after
a call returns, raises, or a stream is consumed or abandoned, the current span is the one before.

Real instrumentations (``opentelemetry-instrumentation-openai-v2``, ``-httpx``) on the test's provider,
real ``ChatOpenAI`` against the loopback OpenAI stub, real LangChain 1.x / LangGraph runnables.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import operator
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import httpx
import pytest
from handler_helpers import journal_content_on  # noqa: F401 (autouse)
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.tools import InjectedToolCallId, tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from openai_stub_server import StubOpenAI
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typing_extensions import TypedDict

from otel_runjournal import semconv as sc
from otel_runjournal.demo.model import ScriptedChatModel
from otel_runjournal.tracing.handler import RunJournalCallbackHandler

OURS = sc.INSTRUMENTATION_NAME
OPENAI_SCOPE = "opentelemetry.instrumentation.openai_v2"
HTTPX_SCOPE = "opentelemetry.instrumentation.httpx"


@pytest.fixture(scope="module")
def stub() -> Iterator[StubOpenAI]:
    """One loopback OpenAI-compatible server for the module."""
    with StubOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def traced() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A provider with the real OpenAI SDK and httpx instrumentations on it (as an application has)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    yield provider, exporter
    OpenAIInstrumentor().uninstrument()
    HTTPXClientInstrumentor().uninstrument()
    provider.shutdown()


@pytest.fixture
def spans(traced: tuple[TracerProvider, InMemorySpanExporter]) -> InMemorySpanExporter:
    """The module's exporter, emptied for this test."""
    traced[1].clear()
    return traced[1]


@pytest.fixture
def provider(traced: tuple[TracerProvider, InMemorySpanExporter]) -> TracerProvider:
    return traced[0]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_context_log() -> Iterator[None]:
    """Nothing, at any level, is ever logged by ``opentelemetry.context`` (no "Failed to detach")."""
    logger = logging.getLogger("opentelemetry.context")
    records = _Records()
    old_level = logger.level
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)
    try:
        yield
        gc.collect()  # abandoned generators are closed here at the latest
    finally:
        logger.removeHandler(records)
        logger.setLevel(old_level)
    assert [r.getMessage() for r in records.records] == []


# --- the application's code ----------------------------------------------------------------------


def _ping_url(stub: StubOpenAI) -> str:
    return stub.base_url.rsplit("/v1", 1)[0] + "/ping"


def _tools(provider: TracerProvider, stub: StubOpenAI) -> list[Any]:
    tracer = provider.get_tracer("app")
    url = _ping_url(stub)

    @tool
    def lookup(city: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
        """Look a city up (a database query and an HTTP call of the application's own)."""
        with tracer.start_as_current_span("db.select", attributes={"app.tool_call_id": tool_call_id}):
            httpx.get(url)
        return f"{city}: 21 degrees"

    return [lookup]


def _async_tools(provider: TracerProvider, stub: StubOpenAI) -> list[Any]:
    tracer = provider.get_tracer("app")
    url = _ping_url(stub)

    @tool
    async def lookup(city: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
        """Look a city up, asynchronously."""
        with tracer.start_as_current_span("db.select", attributes={"app.tool_call_id": tool_call_id}):
            async with httpx.AsyncClient() as client:
                await client.get(url)
        return f"{city}: 21 degrees"

    return [lookup]


def _openai(stub: StubOpenAI, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(model="gpt-test", base_url=stub.base_url, api_key="test", max_retries=0, **kwargs)


def _openai_agent(provider: TracerProvider, stub: StubOpenAI, *, tools: list[Any] | None = None) -> Any:
    return create_agent(_openai(stub), tools if tools is not None else _tools(provider, stub))


INPUT = {"messages": [HumanMessage("What's the weather in Paris?")]}


# --- what nests where ----------------------------------------------------------------------------


def _index(spans: Sequence[ReadableSpan]) -> dict[tuple[int, int], ReadableSpan]:
    return {(s.context.trace_id, s.context.span_id): s for s in spans}


def _parent(index: dict[tuple[int, int], ReadableSpan], span: ReadableSpan) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return index.get((span.context.trace_id, span.parent.span_id))


def _scope(span: ReadableSpan) -> str:
    return span.instrumentation_scope.name if span.instrumentation_scope else ""


def check_nesting(spans: Sequence[ReadableSpan], *, run_per_trace: bool = True) -> Counter[str]:
    """Every foreign span sits under the step that made it, every trace holds exactly one run of ours
    (nothing crossed between runs; unless the runs share the application's trace); returns how many
    of each kind of foreign span there were."""
    index = _index(spans)
    seen: Counter[str] = Counter()
    for span in spans:
        parent = _parent(index, span)
        scope = _scope(span)
        if scope == OPENAI_SCOPE:  # the SDK's span of the model's request: under our chat span
            assert parent is not None and _scope(parent) == OURS, span.name
            assert parent.name.startswith("chat "), parent.name
            seen["sdk chat"] += 1
        elif span.name == "db.select":  # the tool body's own span: under its execute_tool span
            assert parent is not None and parent.name.startswith("execute_tool "), parent
            assert parent.attributes[sc.GEN_AI_TOOL_CALL_ID] == span.attributes["app.tool_call_id"]
            seen["db.select"] += 1
        elif scope == HTTPX_SCOPE:  # the HTTP call the tool body made, inside its db.select span
            assert parent is not None and parent.name in ("db.select", "node.work"), parent
            seen["http"] += 1
        elif span.name == "node.work":  # a graph node's own span: under the node's span
            assert parent is not None and parent.name == span.attributes["app.node"], parent
            seen["node.work"] += 1
    by_trace: dict[int, set[str]] = {}
    for span in spans:
        if _scope(span) == OURS:
            by_trace.setdefault(span.context.trace_id, set()).add(span.attributes[sc.RJ_RUN_ID])
    for span in spans:  # every foreign span is in a trace of ours (none is a trace of its own)
        assert span.context.trace_id in by_trace, span.name
    assert not run_per_trace or all(len(runs) == 1 for runs in by_trace.values()), by_trace
    return seen


def _run(mode: str, agent: Any, config: dict[str, Any]) -> int:
    """Drive ``agent`` once in ``mode``; the number of runs it made."""
    if mode == "invoke":
        agent.invoke(INPUT, config)
    elif mode == "stream":
        assert list(agent.stream(INPUT, config))
    elif mode == "batch":
        agent.batch([INPUT, INPUT], config)
        return 2
    else:

        async def main() -> None:
            if mode == "ainvoke":
                await agent.ainvoke(INPUT, config)
            elif mode == "astream":
                assert [c async for c in agent.astream(INPUT, config)]
            elif mode == "astream_events":
                assert [e async for e in agent.astream_events(INPUT, config, version="v2")]
            elif mode == "abatch":
                await agent.abatch([INPUT, INPUT], config)

        asyncio.run(main())
    return 2 if mode == "abatch" else 1


MODES = ["invoke", "ainvoke", "stream", "astream", "astream_events", "batch", "abatch"]


@pytest.mark.parametrize("mode", MODES)
def test_sdk_and_tool_spans_nest_under_ours(
    mode: str, provider: TracerProvider, spans: InMemorySpanExporter, stub: StubOpenAI
) -> None:
    """With no span of the application around the call, the SDK's chat span is a child of our chat span,
    the tool body's span and HTTP call are under execute_tool, and each run is one trace."""
    handler = RunJournalCallbackHandler(provider)
    before = len(stub.requests)
    runs = _run(mode, _openai_agent(provider, stub), {"callbacks": [handler]})
    finished = spans.get_finished_spans()
    seen = check_nesting(finished)
    calls = len(stub.requests) - before
    assert calls == 2 * runs  # a tool call, then the answer
    ours = [s for s in finished if _scope(s) == OURS and s.name.startswith("chat ")]
    assert len(ours) == calls
    assert seen == Counter({"sdk chat": calls, "db.select": runs, "http": runs})
    assert len({s.context.trace_id for s in finished}) == runs
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_async_tools_nest(provider: TracerProvider, spans: InMemorySpanExporter, stub: StubOpenAI) -> None:
    """An async tool's span and its HTTP call (httpx.AsyncClient) are under execute_tool."""
    handler = RunJournalCallbackHandler(provider)
    agent = _openai_agent(provider, stub, tools=_async_tools(provider, stub))
    asyncio.run(agent.ainvoke(INPUT, {"callbacks": [handler]}))
    assert check_nesting(spans.get_finished_spans()) == Counter({"sdk chat": 2, "db.select": 1, "http": 1})


class FanOut(TypedDict):
    cities: list[str]
    done: Annotated[list[str], operator.add]


def _fan_out_graph(provider: TracerProvider, stub: StubOpenAI) -> Any:
    """prep → three Sends → work (each: a span of its own and an HTTP call), as a plain LangGraph graph."""
    tracer = provider.get_tracer("app")
    url = _ping_url(stub)

    def prep(state: FanOut) -> dict[str, Any]:
        with tracer.start_as_current_span("node.work", attributes={"app.node": "prep"}):
            return {}

    def work(item: dict[str, str]) -> dict[str, Any]:
        with tracer.start_as_current_span("node.work", attributes={"app.node": "work"}):
            httpx.get(url)
        return {"done": [item["city"]]}

    def fan_out(state: FanOut) -> list[Send]:
        return [Send("work", {"city": c}) for c in state["cities"]]

    graph = StateGraph(FanOut)
    graph.add_node("prep", prep)
    graph.add_node("work", work)
    graph.add_edge(START, "prep")
    graph.add_conditional_edges("prep", fan_out, ["work"])
    graph.add_edge("work", END)
    return graph.compile()


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_send_fan_out_nodes_nest(
    mode: str, provider: TracerProvider, spans: InMemorySpanExporter, stub: StubOpenAI
) -> None:
    """A graph node's own span (and the HTTP call in it) is a child of that node's span, for each of the
    nodes LangGraph's Send runs in parallel."""
    handler = RunJournalCallbackHandler(provider)
    graph = _fan_out_graph(provider, stub)
    state = {"cities": ["Paris", "Rome", "Oslo"], "done": []}
    if mode == "invoke":
        out = graph.invoke(state, {"callbacks": [handler]})
    else:
        out = asyncio.run(graph.ainvoke(state, {"callbacks": [handler]}))
    assert sorted(out["done"]) == ["Oslo", "Paris", "Rome"]
    assert check_nesting(spans.get_finished_spans()) == Counter({"node.work": 4, "http": 3})


def _scripted_agent(provider: TracerProvider, stub: StubOpenAI, *, subagent: bool = False) -> Any:
    """A LangChain 1.x agent whose model asks for two lookups at once (run in LangGraph's thread pool),
    and, with ``subagent``, a tool that runs a nested agent which does the same."""
    tools = _tools(provider, stub)
    two = [[("lookup", {"city": "Paris"}), ("lookup", {"city": "Rome"})]]
    if subagent:
        mini = ScriptedChatModel(model_name="scripted-mini", plan=two)
        inner = create_agent(mini, tools, name="researcher")

        @tool
        def ask_researcher(question: str) -> str:
            """Ask the research agent."""
            result = inner.invoke({"messages": [HumanMessage(question)]})
            return str(result["messages"][-1].content)

        plan = [[("lookup", {"city": "Oslo"}), ("ask_researcher", {"question": "Paris and Rome?"})]]
        return create_agent(ScriptedChatModel(plan=plan), [*tools, ask_researcher], name="lead")
    return create_agent(ScriptedChatModel(plan=two), tools, name="lead")


@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream"])
def test_parallel_tool_calls_and_nested_agents_nest(
    mode: str, provider: TracerProvider, spans: InMemorySpanExporter, stub: StubOpenAI
) -> None:
    """Parallel tool calls (sync tools in LangGraph's thread pool) and a nested agent called from a tool:
    each tool body's span is under its own execute_tool span (matched by tool call id)."""
    handler = RunJournalCallbackHandler(provider)
    _run(mode, _scripted_agent(provider, stub, subagent=True), {"callbacks": [handler]})
    assert check_nesting(spans.get_finished_spans()) == Counter({"db.select": 3, "http": 3})


def test_fifty_concurrent_ainvokes_nothing_crosses(
    provider: TracerProvider, spans: InMemorySpanExporter, stub: StubOpenAI
) -> None:
    """50 concurrent ainvokes on one handler: 50 traces, each one run, every SDK span under a chat span
    of its own run."""
    handler = RunJournalCallbackHandler(provider)
    agent = _openai_agent(provider, stub)

    async def main() -> None:
        await asyncio.gather(*(agent.ainvoke(INPUT, {"callbacks": [handler]}) for _ in range(50)))

    asyncio.run(main())
    finished = spans.get_finished_spans()
    assert check_nesting(finished) == Counter({"sdk chat": 100, "db.select": 50, "http": 50})
    assert len({s.context.trace_id for s in finished}) == 50


def test_eight_threads_nothing_crosses(
    provider: TracerProvider, spans: InMemorySpanExporter, stub: StubOpenAI
) -> None:
    """8 worker threads invoking on one handler: each run its own trace, everything nested in it."""
    handler = RunJournalCallbackHandler(provider)
    agent = _openai_agent(provider, stub)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: agent.invoke(INPUT, {"callbacks": [handler]}), range(16)))
    finished = spans.get_finished_spans()
    assert check_nesting(finished) == Counter({"sdk chat": 32, "db.select": 16, "http": 16})
    assert len({s.context.trace_id for s in finished}) == 16


# --- nothing leaks -------------------------------------------------------------------------------


def _same_as(span: trace.Span) -> None:
    """The current span is (or stands for) ``span``: same span context, and a span started now is its
    child."""
    current = trace.get_current_span()
    assert current.get_span_context() == span.get_span_context()
    probe = TracerProvider().get_tracer("probe").start_span("probe")
    assert probe.parent is not None and probe.parent.span_id == span.get_span_context().span_id
    probe.end()


def _failing_tools(provider: TracerProvider) -> list[Any]:
    @tool
    def lookup(city: str) -> str:
        """Always fails."""
        raise LookupError("no such city")

    return [lookup]


def test_sync_exits_restore_the_callers_span(
    provider: TracerProvider, spans: InMemorySpanExporter, stub: StubOpenAI
) -> None:
    """Under the application's request span: after invoke returns or raises, and after a stream is
    consumed or abandoned half-way (break), the request span itself is the current span again; the
    root's parent is the request span."""
    handler = RunJournalCallbackHandler(provider)
    tracer = provider.get_tracer("app")
    agent = _openai_agent(provider, stub)
    failing = _openai_agent(provider, stub, tools=_failing_tools(provider))
    config: dict[str, Any] = {"callbacks": [handler]}
    with tracer.start_as_current_span("request") as request:
        agent.invoke(INPUT, config)
        assert trace.get_current_span() is request
        with pytest.raises(LookupError):
            failing.invoke(INPUT, config)
        assert trace.get_current_span() is request
        assert list(agent.stream(INPUT, config))
        assert trace.get_current_span() is request
        for _chunk in agent.stream(INPUT, config):
            break  # abandoned after the first step
        assert trace.get_current_span() is request
        for _chunk in _openai(stub).stream("hi", config):
            break  # a model's own stream, abandoned
        assert trace.get_current_span() is request
        for _event in agent.stream(INPUT, config, stream_mode="messages"):
            break
        assert trace.get_current_span() is request
    finished = spans.get_finished_spans()
    request_id = request.get_span_context().span_id
    roots = [s for s in finished if s.attributes and s.attributes.get(sc.RJ_IS_ROOT)]
    assert len(roots) == 6
    assert all(r.parent is not None and r.parent.span_id == request_id for r in roots)
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_async_exits_restore_the_callers_span(
    provider: TracerProvider, spans: InMemorySpanExporter, stub: StubOpenAI
) -> None:
    """Async: after ainvoke returns or raises, after astream is consumed, aclose()d half-way, or left
    with ``break`` and collected, and after a task running the agent is cancelled, the current span is
    the request span (or stands for it: LangChain ends async runs in a task of their own)."""
    handler = RunJournalCallbackHandler(provider)
    tracer = provider.get_tracer("app")
    agent = _openai_agent(provider, stub)
    failing = _openai_agent(provider, stub, tools=_failing_tools(provider))
    started = threading.Event()

    @tool
    async def slow(city: str) -> str:
        """Takes its time."""
        started.set()
        await asyncio.sleep(30)
        return city

    slow_agent = _openai_agent(provider, stub, tools=[slow])
    config: dict[str, Any] = {"callbacks": [handler]}

    async def main() -> None:
        with tracer.start_as_current_span("request") as request:
            await agent.ainvoke(INPUT, config)
            _same_as(request)
            with pytest.raises(LookupError):
                await failing.ainvoke(INPUT, config)
            _same_as(request)
            assert [c async for c in agent.astream(INPUT, config)]
            _same_as(request)
            stream = agent.astream(INPUT, config)
            await stream.__anext__()
            await stream.aclose()
            _same_as(request)
            async for _chunk in agent.astream(INPUT, config):
                break  # without aclose(): the run goes on until asyncio finalizes the generator
            gc.collect()
            for _ in range(500):
                if handler.open_run_count == 0:
                    break
                await asyncio.sleep(0.01)
            assert handler.open_run_count == 0
            _same_as(request)
            task = asyncio.create_task(slow_agent.ainvoke(INPUT, config))
            while not started.is_set():
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            _same_as(request)
        assert trace.get_current_span().get_span_context() == trace.INVALID_SPAN.get_span_context()

    asyncio.run(main())
    assert handler.open_run_count == 0
    finished = spans.get_finished_spans()
    assert check_nesting([s for s in finished if s.name != "request"], run_per_trace=False)["sdk chat"] >= 8


def test_a_missed_end_leaves_nothing_behind(provider: TracerProvider, spans: InMemorySpanExporter) -> None:
    """The mechanism itself: a step whose end runs in another context (as LangChain's async ends do)
    leaves a stand-in that behaves as the span before it; stand-ins never pile up in a context."""
    from otel_runjournal.tracing.current import StepSpan, activate, deactivate

    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("request") as request:
        for _ in range(100):
            step = tracer.start_span("step")
            activation = activate(step)
            assert trace.get_current_span().get_span_context() == step.get_span_context()
            child = tracer.start_span("child")
            assert child.parent is not None and child.parent.span_id == step.get_span_context().span_id
            child.end()
            step.end()
            # the end callback runs elsewhere (a copied context), so this context keeps the stand-in
            contextvars.copy_context().run(deactivate, activation)
            current = trace.get_current_span()
            assert type(current) is StepSpan
            assert current.get_span_context() == request.get_span_context()
            assert current.target() is request
        after = tracer.start_span("after")
        assert after.parent is not None and after.parent.span_id == request.get_span_context().span_id
        after.end()
    assert trace.get_current_span().get_span_context() == trace.INVALID_SPAN.get_span_context()


def test_retriever_body_nests(provider: TracerProvider, spans: InMemorySpanExporter) -> None:
    """What a retriever's code opens (its vector-store query) is a child of our retrieval span, sync
    and async."""
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    tracer = provider.get_tracer("app")

    class Docs(BaseRetriever):
        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            with tracer.start_as_current_span("vector.query"):
                return [Document(page_content=f"about {query}")]

    handler = RunJournalCallbackHandler(provider)
    retriever = Docs()
    assert retriever.invoke("Paris", {"callbacks": [handler]})
    assert asyncio.run(retriever.ainvoke("Rome", {"callbacks": [handler]}))
    finished = spans.get_finished_spans()
    index = _index(finished)
    queries = [s for s in finished if s.name == "vector.query"]
    assert len(queries) == 2
    for query in queries:
        parent = _parent(index, query)
        assert parent is not None and parent.name.startswith("retrieval "), parent
    assert trace.get_current_span() is trace.INVALID_SPAN
