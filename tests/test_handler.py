"""The callback handler on real LangChain / LangGraph runs: span names, kinds, parents, attributes,
status, token roll-up, content on/off, streaming, errors, interrupts, TTL and metrics."""

from __future__ import annotations

import json
import time
from typing import Any, TypedDict

import pytest
from handler_helpers import (  # journal_content_on: autouse
    SIMPLE_AGENT_USAGE,
    assert_one_tree,
    by_caller,
    by_name,
    children,
    journal_content_on,  # noqa: F401
    one,
    parent_of,
    rollup,
    roots,
    side,
    usage_sum,
)
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import HumanMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from otel_runjournal import content as _content
from otel_runjournal import semconv as sc
from otel_runjournal.demo.agent import build_agent
from otel_runjournal.demo.model import ScriptedChatModel, ScriptedModelError
from otel_runjournal.tracing.handler import RunJournalCallbackHandler

QUESTION = {"messages": [("user", "hi there")]}
COMMON = (sc.RJ_RUN_ID, sc.RJ_THREAD_ID, sc.RJ_CALLER, sc.RJ_RUN_TYPE, sc.GEN_AI_CONVERSATION_ID)


def _run(handler: RunJournalCallbackHandler, agent: Any, inputs: Any = QUESTION, **config: Any) -> Any:
    return agent.invoke(inputs, {"callbacks": [handler], **config})


def test_simple_agent_spans_parents_and_rollup(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """The demo agent becomes one tree: invoke_agent root → nodes → chat / execute_tool, exact usage."""
    handler = RunJournalCallbackHandler(tracer_provider)
    _run(
        handler,
        build_agent(subagent=False, failing_tool=False, middleware=False),
        configurable={"thread_id": "t-1"},
    )
    spans = span_exporter.get_finished_spans()
    assert_one_tree(spans)
    root = one(spans, "invoke_agent research_assistant")
    assert root.kind is SpanKind.INTERNAL and root.parent is None
    assert root.attributes[sc.GEN_AI_OPERATION_NAME] == sc.OP_INVOKE_AGENT
    assert root.attributes[sc.GEN_AI_AGENT_NAME] == "research_assistant"
    assert root.attributes[sc.RJ_THREAD_ID] == "t-1" == root.attributes[sc.GEN_AI_CONVERSATION_ID]
    assert [s.name for s in children(spans, root)] == ["agent", "tools", "agent", "tools", "agent"]
    chats = by_name(spans, "chat scripted-1")
    assert len(chats) == 3
    for chat in chats:
        assert chat.kind is SpanKind.CLIENT
        assert parent_of(spans, chat).name == "agent"  # type: ignore[union-attr]
        a = chat.attributes
        assert a[sc.GEN_AI_OPERATION_NAME] == "chat" and a[sc.GEN_AI_PROVIDER_NAME] == "scripted"
        assert a[sc.GEN_AI_REQUEST_MODEL] == "scripted-1" == a[sc.GEN_AI_RESPONSE_MODEL]
        assert a[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2 and a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 256
        assert a[sc.GEN_AI_RESPONSE_ID].startswith("resp-")
    assert chats[0].attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert chats[-1].attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert [
        (c.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS], c.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS])
        for c in chats
    ] == [
        (10, 10),
        (17, 10),
        (17, 28),
    ]
    tool = one(spans, "execute_tool get_weather")
    assert tool.attributes[sc.GEN_AI_TOOL_NAME] == "get_weather"
    assert tool.attributes[sc.GEN_AI_TOOL_CALL_ID] == "call_0_0"
    assert tool.attributes[sc.GEN_AI_TOOL_TYPE] == "function"
    assert parent_of(spans, tool).name == "tools"  # type: ignore[union-attr]
    for span in spans:
        assert all(key in span.attributes for key in COMMON), span.name
        assert span.attributes[sc.RJ_CALLER] == "lead_agent"
        assert span.status.status_code is not StatusCode.ERROR
    assert rollup(root) == SIMPLE_AGENT_USAGE
    assert by_caller(root) == {"lead_agent": 92}
    assert root.attributes[sc.RJ_USAGE_LEAD_AGENT_TOKENS] == 92
    assert root.attributes[sc.RJ_USAGE_SUBAGENT_TOKENS] == 0 == root.attributes[sc.RJ_USAGE_MIDDLEWARE_TOKENS]
    assert not any(
        name in ("tools_condition", "RunnableSequence", "__start__") for name in (s.name for s in spans)
    )
    assert handler.open_run_count == 0


def test_full_agent_subagent_middleware_failing_tool(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """Subagent span under its tool, caller attribution, middleware call, failing tool, custom event."""
    handler = RunJournalCallbackHandler(tracer_provider)
    _run(handler, build_agent())
    spans = span_exporter.get_finished_spans()
    assert_one_tree(spans)
    root = one(spans, "invoke_agent research_assistant")
    sub = one(spans, "invoke_agent researcher")
    assert sub.attributes[sc.GEN_AI_OPERATION_NAME] == sc.OP_INVOKE_AGENT
    assert sub.attributes[sc.GEN_AI_AGENT_NAME] == "researcher"
    assert sub.attributes[sc.RJ_CALLER] == "subagent:researcher"
    assert sc.RJ_IS_ROOT not in sub.attributes
    assert parent_of(spans, sub).name == "execute_tool ask_researcher"  # type: ignore[union-attr]
    sub_chats = by_name(spans, "chat scripted-mini")
    assert len(sub_chats) == 2 and all(c.attributes[sc.RJ_CALLER] == "subagent:researcher" for c in sub_chats)
    middleware_chat = next(s for s in spans if s.attributes.get(sc.RJ_CALLER) == "middleware:summarization")
    assert middleware_chat.name == "chat scripted-1"
    assert parent_of(spans, middleware_chat).name == "summarize"  # type: ignore[union-attr]

    failing = one(spans, "execute_tool lookup_order")
    assert failing.status.status_code is StatusCode.ERROR
    assert failing.attributes[sc.ERROR_TYPE] == "LookupError"
    assert "order service unavailable" in (failing.status.description or "")
    assert [e.name for e in failing.events] == ["exception"]
    assert root.status.status_code is not StatusCode.ERROR  # the ToolNode handled the error

    # exact numbers (ScriptedChatModel usage is derived from message lengths) and their consistency
    assert rollup(root) == {"input": 262, "output": 107, "total": 369, "calls": 8}
    assert rollup(root) == usage_sum(spans)
    # subagent: in 8+17//4=12, out 10; in 12+31//4=19 (+ its tool's result), out 4+68//4=21 (its answer)
    assert by_caller(root) == {"lead_agent": 211, "subagent:researcher": 62, "middleware:summarization": 96}
    for caller, tokens in by_caller(root).items():
        assert usage_sum(spans, caller)["total"] == tokens
    assert root.attributes[sc.RJ_USAGE_SUBAGENT_TOKENS] == 62
    assert root.attributes[sc.RJ_USAGE_MIDDLEWARE_TOKENS] == 96
    assert root.attributes[sc.RJ_USAGE_LEAD_AGENT_TOKENS] == 211

    summarize = one(spans, "summarize")
    assert [e.name for e in summarize.events] == ["runjournal.custom.summarization"]
    assert sc.RJ_CUSTOM_DATA not in (summarize.events[0].attributes or {})
    [(name, when, data)] = side(summarize)[_content.KEY_CUSTOM_EVENTS]
    assert name == "summarization" and when == summarize.events[0].timestamp
    assert json.loads(data) == {"summary": "Summary: hi there", "replaced_count": 10}
    assert handler.open_run_count == 0


def test_verbosity_all_keeps_plumbing_and_genai_reparents(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """verbosity='all' keeps every run (tools_condition, inner lambdas); 'genai' drops them and
    parents their children on the nearest kept ancestor."""
    agent = build_agent(subagent=False, failing_tool=False, middleware=False)
    _run(RunJournalCallbackHandler(tracer_provider, verbosity="all"), agent)
    every = span_exporter.get_finished_spans()
    span_exporter.clear()
    _run(RunJournalCallbackHandler(tracer_provider), agent)
    genai = span_exporter.get_finished_spans()
    assert len(by_name(every, "tools_condition")) == 3
    assert len(by_name(every, "agent")) == 6  # node + its inner RunnableLambda, three times
    assert_one_tree(every)
    assert not by_name(genai, "tools_condition") and len(by_name(genai, "agent")) == 3
    assert len(genai) == len(every) - 6
    for chat in by_name(genai, "chat scripted-1"):
        node = parent_of(genai, chat)
        assert (
            node is not None
            and node.name == "agent"
            and parent_of(genai, node).name.startswith("invoke_agent")
        )  # type: ignore[union-attr]


def test_root_nests_under_current_otel_span(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """A root run takes the application's current span as parent; children still follow run ids."""
    handler = RunJournalCallbackHandler(tracer_provider)
    tracer = tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("POST /ask") as request:
        _run(handler, build_agent(subagent=False, failing_tool=False, middleware=False))
    spans = span_exporter.get_finished_spans()
    root = one(spans, "invoke_agent research_assistant")
    assert root.parent is not None and root.parent.span_id == request.get_span_context().span_id
    assert all(s.context.trace_id == request.get_span_context().trace_id for s in spans)


def test_run_id_and_thread_id_from_metadata(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """metadata run_id / thread_id become runjournal.run_id / thread_id on every span."""
    handler = RunJournalCallbackHandler(tracer_provider)
    agent = build_agent(subagent=False, failing_tool=False, middleware=False)
    _run(handler, agent, metadata={"run_id": "run-42", "thread_id": "thread-7"})
    spans = span_exporter.get_finished_spans()
    assert {s.attributes[sc.RJ_RUN_ID] for s in spans} == {"run-42"}
    assert {s.attributes[sc.RJ_THREAD_ID] for s in spans} == {"thread-7"}


def test_workflow_root_and_default_thread(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """A root chain that is not an agent is invoke_workflow; without a thread id the run id is the thread."""
    handler = RunJournalCallbackHandler(tracer_provider)
    model = ScriptedChatModel()
    chain = RunnableLambda(lambda q: model.invoke(q).content, name="answer_chain")
    chain.invoke("what is up", {"callbacks": [handler]})
    spans = span_exporter.get_finished_spans()
    root = one(spans, "invoke_workflow answer_chain")
    assert root.attributes[sc.GEN_AI_OPERATION_NAME] == sc.OP_INVOKE_WORKFLOW
    assert root.attributes["gen_ai.workflow.name"] == "answer_chain"
    assert root.attributes[sc.RJ_THREAD_ID] == root.attributes[sc.RJ_RUN_ID]
    assert parent_of(spans, one(spans, "chat scripted-1")) is root
    assert rollup(root)["calls"] == 1


FIRST_CHUNK_DELAY = 0.15


class SlowStream(ScriptedChatModel):
    """The scripted model, streaming: a known pause before its first chunk and another after it."""

    first_chunk_delay: float = 0.0
    then_delay: float = 0.0

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        time.sleep(self.first_chunk_delay)
        for i, chunk in enumerate(super()._stream(messages, stop, run_manager, **kwargs)):
            if i == 1:
                time.sleep(self.then_delay)
            yield chunk


def test_streaming_model(tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter) -> None:
    """A streamed call: gen_ai.request.stream, time to first chunk, usage from the final chunk, no
    per-token events; metrics include time to first chunk."""
    reader = InMemoryMetricReader()
    handler = RunJournalCallbackHandler(
        tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    model = SlowStream(
        answer="one two three four five six",
        reasoning_tokens=5,
        cached_tokens=3,
        first_chunk_delay=FIRST_CHUNK_DELAY,
        then_delay=2 * FIRST_CHUNK_DELAY,
    )

    def stream_all(question: str) -> str:
        return "".join(str(chunk.content) for chunk in model.stream([HumanMessage(question)]))

    text = RunnableLambda(stream_all, name="streamer").invoke("hello there", {"callbacks": [handler]})
    assert text == "one two three four five six"
    spans = span_exporter.get_finished_spans()
    chat = one(spans, "chat scripted-1")
    a = chat.attributes
    assert a[sc.GEN_AI_REQUEST_STREAM] is True
    # the model slept FIRST_CHUNK_DELAY before its first chunk and twice that after it, before the rest
    # (so the first chunk came at least that long before the end; half of it is slack for the clocks)
    ttfc = a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    assert FIRST_CHUNK_DELAY <= ttfc <= (chat.end_time - chat.start_time) / 1e9 - FIRST_CHUNK_DELAY
    # in = 8 + len("hello there") // 4 = 10; out = 4 + 27 // 4 + 5 reasoning = 15
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (10, 15)
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 3
    assert a[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 5
    assert not chat.events
    root = one(spans, "invoke_workflow streamer")
    assert rollup(root) == {"input": 10, "output": 15, "total": 25, "calls": 1}
    assert root.attributes[sc.RJ_USAGE_CACHED_INPUT_TOKENS] == 3
    assert root.attributes[sc.RJ_USAGE_REASONING_TOKENS] == 5
    out = json.loads(side(chat)[sc.GEN_AI_OUTPUT_MESSAGES])
    assert out[0]["parts"] == [{"type": "text", "content": "one two three four five six"}]

    metrics = {
        m.name: m
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert set(metrics) == {
        sc.METRIC_OPERATION_DURATION,
        sc.METRIC_TOKEN_USAGE,
        sc.METRIC_TIME_TO_FIRST_CHUNK,
    }
    tokens = {
        dp.attributes[sc.GEN_AI_TOKEN_TYPE]: dp.sum for dp in metrics[sc.METRIC_TOKEN_USAGE].data.data_points
    }
    assert tokens == {"input": 10, "output": 15}
    [duration] = metrics[sc.METRIC_OPERATION_DURATION].data.data_points
    assert duration.attributes[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert duration.attributes[sc.GEN_AI_PROVIDER_NAME] == "scripted"
    assert duration.attributes[sc.GEN_AI_REQUEST_MODEL] == "scripted-1"


def test_failing_model_marks_span_and_root(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """A model that raises: its chat span and the root are ERROR with error.type and an exception
    event; the exception reaches the application unchanged; nothing stays open."""
    handler = RunJournalCallbackHandler(tracer_provider)
    agent = build_agent(
        ScriptedChatModel(fail_on="boom"), subagent=False, failing_tool=False, middleware=False
    )
    with pytest.raises(ScriptedModelError):
        _run(handler, agent, {"messages": [("user", "boom please")]})
    spans = span_exporter.get_finished_spans()
    chat = one(spans, "chat scripted-1")
    root = one(spans, "invoke_agent research_assistant")
    for span in (chat, root):
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[sc.ERROR_TYPE] == "ScriptedModelError"
        assert any(e.name == "exception" for e in span.events)
    assert rollup(root)["calls"] == 1  # a failed call counts, as in the journal's runs row
    assert handler.open_run_count == 0


class _State(TypedDict):
    question: str
    answer: str


def _approval_graph() -> Any:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt

    def ask(state: _State) -> dict[str, Any]:
        decision = interrupt({"approve": state["question"]})
        return {"answer": f"decision: {decision}"}

    graph = StateGraph(_State)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", END)
    return graph.compile(checkpointer=InMemorySaver(), name="approval")


def test_interrupt_is_not_an_error(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """A LangGraph interrupt ends the root OK with runjournal.interrupted and the value in the side
    channel; resuming is a second, uninterrupted run on the same thread."""
    from langgraph.types import Command

    handler = RunJournalCallbackHandler(tracer_provider)
    graph = _approval_graph()
    config = {"callbacks": [handler], "configurable": {"thread_id": "approvals-1"}}
    graph.invoke({"question": "ship it?", "answer": ""}, config)
    spans = span_exporter.get_finished_spans()
    root = one(spans, "invoke_workflow approval")
    assert root.status.status_code is StatusCode.OK
    assert root.attributes[sc.RJ_INTERRUPTED] is True
    assert json.loads(side(root)[_content.KEY_INTERRUPT_VALUE]) == [{"approve": "ship it?"}]
    assert all(s.status.status_code is not StatusCode.ERROR for s in spans)
    assert handler.open_run_count == 0

    span_exporter.clear()
    result = graph.invoke(Command(resume="yes"), config)
    assert result["answer"] == "decision: yes"
    root2 = one(span_exporter.get_finished_spans(), "invoke_workflow approval")
    assert sc.RJ_INTERRUPTED not in root2.attributes
    assert root2.attributes[sc.RJ_THREAD_ID] == "approvals-1"
    assert root2.attributes[sc.RJ_RUN_ID] != root.attributes[sc.RJ_RUN_ID]


def test_content_default_only_in_side_channel(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default no content attribute is on any span while the journal side channel has it all."""
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    handler = RunJournalCallbackHandler(tracer_provider)
    _run(handler, build_agent(subagent=False, failing_tool=False, middleware=False))
    spans = span_exporter.get_finished_spans()
    for span in spans:
        assert not set(sc.CONTENT_ATTRIBUTES) & set(span.attributes), span.name
        assert "hi there" not in span.to_json() and "Paris" not in span.to_json()  # what exporters see
    root = one(spans, "invoke_agent research_assistant")
    assert json.loads(side(root)[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hi there"}]}
    ]
    [final] = json.loads(side(root)[sc.GEN_AI_OUTPUT_MESSAGES])
    assert final["role"] == "assistant" and "nothing on: hi there" in final["parts"][0]["content"]
    first_chat = by_name(spans, "chat scripted-1")[0]
    out = json.loads(side(first_chat)[sc.GEN_AI_OUTPUT_MESSAGES])
    assert out == [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "call_0_0", "name": "get_weather", "arguments": {"city": "Paris"}}
            ],
            "finish_reason": "tool_call",
        }
    ]
    tool = one(spans, "execute_tool get_weather")
    assert json.loads(side(tool)[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"city": "Paris"}
    assert side(tool)[sc.GEN_AI_TOOL_CALL_RESULT] == "It is 21°C and sunny in Paris."
    last_chat = by_name(spans, "chat scripted-1")[-1]
    roles = [m["role"] for m in json.loads(side(last_chat)[sc.GEN_AI_INPUT_MESSAGES])]
    assert roles == ["user", "assistant", "tool", "assistant", "tool"]


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_content_opt_in_puts_attributes_on_spans(
    tracer_provider: TracerProvider,
    span_exporter: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    """capture_content=True (or the OTel env var) puts gen_ai content attributes on the spans."""
    if how == "environment":
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
        handler = RunJournalCallbackHandler(tracer_provider)
    else:
        handler = RunJournalCallbackHandler(tracer_provider, capture_content=True)
    _run(handler, build_agent(subagent=False, failing_tool=False))
    spans = span_exporter.get_finished_spans()
    chat = by_name(spans, "chat scripted-1")[0]
    assert json.loads(chat.attributes[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "hi there"
    assert json.loads(chat.attributes[sc.GEN_AI_OUTPUT_MESSAGES])[0]["finish_reason"] == "tool_call"
    tool = one(spans, "execute_tool get_weather")
    assert json.loads(tool.attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"city": "Paris"}
    assert tool.attributes[sc.GEN_AI_TOOL_CALL_RESULT] == "It is 21°C and sunny in Paris."
    root = one(spans, "invoke_agent research_assistant")
    assert sc.GEN_AI_INPUT_MESSAGES in root.attributes
    event = one(spans, "summarize").events[0]
    assert json.loads(event.attributes[sc.RJ_CUSTOM_DATA])["summary"] == "Summary: hi there"
    assert all(_content.peek(s) is None for s in spans)


def test_journal_content_off_records_nothing(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """journal_content=False: no side channel and no content attributes (events still marked)."""
    handler = RunJournalCallbackHandler(tracer_provider, journal_content=False)
    _run(handler, build_agent(subagent=False, failing_tool=False))
    spans = span_exporter.get_finished_spans()
    assert all(_content.peek(s) is None for s in spans)
    assert all(not set(sc.CONTENT_ATTRIBUTES) & set(s.attributes) for s in spans)
    assert [e.name for e in one(spans, "summarize").events] == ["runjournal.custom.summarization"]


def test_truncation_and_redaction(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """Content is redacted before recording and truncated to the limit with a marker: a text to the
    limit, a JSON value stays JSON (never a JSON string of JSON) with the strings it holds cut to it."""
    handler = RunJournalCallbackHandler(
        tracer_provider, content_max_length=120, redact=lambda s: s.replace("s3cret", "[REDACTED]")
    )
    question = "my password is s3cret " + "x" * 500
    _run(
        handler,
        build_agent(subagent=False, failing_tool=False, middleware=False),
        {"messages": [("user", question)]},
    )
    spans = span_exporter.get_finished_spans()
    for span in spans:
        for key, value in side(span).items():
            assert "s3cret" not in value, (span.name, key)
            if key == sc.GEN_AI_TOOL_CALL_RESULT:
                assert len(value) <= 120, (span.name, key, len(value))
                continue
            data = json.loads(value)
            assert not isinstance(data, str), (span.name, key, value)
            if key in (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES):  # the parts' content only
                data = [
                    p.get(k) for m in data for p in m["parts"] for k in ("content", "arguments", "response")
                ]
            assert sum(len(s) for s in _strings(data)) <= 120, (span.name, key, value)
    rendered = side(one(spans, "invoke_agent research_assistant"))[sc.GEN_AI_INPUT_MESSAGES]
    text = json.loads(rendered)[0]["parts"][0]["content"]
    assert text.startswith("my password is [REDACTED]") and text.endswith("…[truncated]")


def _strings(value: Any) -> list[str]:
    """The string values inside a JSON value (keys excluded)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_abandoned_runs_released_after_ttl(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """Runs idle past the TTL are ended (marked abandoned) on the next root start; shutdown ends the rest."""
    import time
    from uuid import uuid4

    handler = RunJournalCallbackHandler(tracer_provider, run_ttl=0.05)
    stale_root, stale_tool = uuid4(), uuid4()
    handler.on_chain_start({}, {"messages": []}, run_id=stale_root, name="stale")
    handler.on_tool_start({"name": "slow"}, "x", run_id=stale_tool, parent_run_id=stale_root)
    assert handler.open_run_count == 2
    time.sleep(0.12)
    fresh = uuid4()
    handler.on_chain_start({}, {}, run_id=fresh, name="fresh")
    spans = span_exporter.get_finished_spans()
    assert {s.name for s in spans} == {"invoke_workflow stale", "execute_tool slow"}
    assert all(s.attributes[sc.RJ_ABANDONED] is True for s in spans)
    assert spans[-1].name == "invoke_workflow stale"  # children end before their root
    assert handler.open_run_count == 1
    handler.on_tool_end("late", run_id=stale_tool)  # end after abandonment: ignored
    handler.shutdown()
    assert handler.open_run_count == 0
    last = one(span_exporter.get_finished_spans(), "invoke_workflow fresh")
    assert last.attributes[sc.RJ_ABANDONED] is True and last.attributes[sc.RJ_LLM_CALL_COUNT] == 0


def test_children_left_open_end_with_their_root(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """A child that never ended is ended (abandoned) when its root ends, and freed."""
    from uuid import uuid4

    handler = RunJournalCallbackHandler(tracer_provider)
    root, child = uuid4(), uuid4()
    handler.on_chain_start({}, {}, run_id=root, name="wf")
    handler.on_tool_start({"name": "t"}, "x", run_id=child, parent_run_id=root)
    handler.on_chain_end({}, run_id=root)
    spans = span_exporter.get_finished_spans()
    assert [s.name for s in spans] == ["execute_tool t", "invoke_workflow wf"]
    assert spans[0].attributes[sc.RJ_ABANDONED] is True and sc.RJ_ABANDONED not in spans[1].attributes
    assert handler.open_run_count == 0


class _Docs(BaseRetriever):
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [Document(page_content=f"{query} #{i}", metadata={"i": i}) for i in range(3)]


def test_retriever_span(tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter) -> None:
    """A retriever becomes retrieval {name} with the document count; query and docs go to the journal."""
    handler = RunJournalCallbackHandler(tracer_provider)
    _Docs().invoke("paris", {"callbacks": [handler]})
    span = one(span_exporter.get_finished_spans(), "retrieval _Docs")
    assert span.attributes[sc.GEN_AI_OPERATION_NAME] == sc.OP_RETRIEVAL
    assert span.attributes[sc.RJ_RETRIEVER_DOCUMENT_COUNT] == 3
    assert span.attributes[sc.RJ_IS_ROOT] is True
    assert side(span)[_content.KEY_RETRIEVAL_QUERY] == "paris"
    docs = json.loads(side(span)[_content.KEY_RETRIEVAL_DOCUMENTS])
    assert docs[2] == {"page_content": "paris #2", "metadata": {"i": 2}}


def test_plain_llm_is_text_completion(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """A plain (string-in, string-out) LLM becomes a text_completion CLIENT span."""
    from langchain_core.language_models.fake import FakeListLLM

    handler = RunJournalCallbackHandler(tracer_provider)
    FakeListLLM(responses=["pong"]).invoke("ping", {"callbacks": [handler]})
    [span] = span_exporter.get_finished_spans()
    assert span.name.startswith("text_completion") and span.kind is SpanKind.CLIENT
    assert span.attributes[sc.GEN_AI_OPERATION_NAME] == sc.OP_TEXT_COMPLETION
    assert json.loads(side(span)[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "ping"
    assert json.loads(side(span)[sc.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "pong"


def test_constructor_validates_and_env_fallbacks(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad arguments raise ValueError; env vars are the fallback; a malformed env value is ignored."""
    with pytest.raises(ValueError):
        RunJournalCallbackHandler(tracer_provider, verbosity="loud")
    with pytest.raises(ValueError):
        RunJournalCallbackHandler(tracer_provider, run_ttl=0)
    with pytest.raises(ValueError):
        RunJournalCallbackHandler(tracer_provider, content_max_length=-1)
    monkeypatch.setenv("OTEL_RUNJOURNAL_VERBOSITY", "all")
    monkeypatch.setenv("OTEL_RUNJOURNAL_RUN_TTL", "not-a-number")
    handler = RunJournalCallbackHandler(tracer_provider)
    _run(handler, build_agent(subagent=False, failing_tool=False, middleware=False))
    assert by_name(span_exporter.get_finished_spans(), "tools_condition")


def test_handler_runs_inline_and_roots_are_counted(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """run_inline is set deliberately, and two invokes give two separate root spans / traces."""
    handler = RunJournalCallbackHandler(tracer_provider)
    assert RunJournalCallbackHandler.run_inline is True
    agent = build_agent(subagent=False, failing_tool=False, middleware=False)
    _run(handler, agent)
    _run(handler, agent)
    spans = span_exporter.get_finished_spans()
    assert len(roots(spans)) == 2
    assert len({s.context.trace_id for s in spans}) == 2
