"""Table tests of the pure span → RunEvent / SpanRecord / RunWrite mapping."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind
from spanfactory import (
    HANDLER_RUN_EVENTS,
    MS,
    T0,
    SpanFactory,
    assistant_output,
    chat_attrs,
    common,
    handler_run,
    user_input,
)

from otel_runjournal import content as _content
from otel_runjournal import genai_json as gj
from otel_runjournal import semconv as sc
from otel_runjournal.journal import mapping as m
from otel_runjournal.journal import runwrite as _runwrite
from otel_runjournal.journal import spanfacts
from otel_runjournal.journal.emitter import MappedSpan
from otel_runjournal.records import RunRecord, utc


@pytest.fixture
def f(tracer_provider: TracerProvider) -> SpanFactory:
    return SpanFactory(tracer_provider)


def _types(mapped: MappedSpan) -> list[str]:
    return [ev.event_type for _, ev in sorted(mapped.events, key=lambda k: k[0])]


def _one(
    f: SpanFactory,
    name: str,
    attrs: dict[str, Any],
    *,
    content: dict[str, Any] | None = None,
    error: BaseException | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> ReadableSpan:
    span = f.start(name, 0, attrs=attrs, kind=kind)
    return f.end(span, 5, content=content, error=error)


# --- one span: which events, with which content and metadata ---------------------------------------
CHAT = chat_attrs("gpt-x", 11, 4)
TOOL = {sc.GEN_AI_OPERATION_NAME: "execute_tool", sc.GEN_AI_TOOL_NAME: "calc", sc.GEN_AI_TOOL_CALL_ID: "c9"}
OUT = {sc.GEN_AI_OUTPUT_MESSAGES: assistant_output("hello", [("c9", "calc", {"x": 1})])}
CASES: list[
    tuple[str, str, dict[str, Any], dict[str, Any] | None, BaseException | None, list[str], dict[str, Any]]
] = [
    # (case, span name, attributes, content, error, event types, {event_type: expected content})
    (
        "chat lead",
        "chat gpt-x",
        {**common("r"), **CHAT},
        OUT,
        None,
        ["llm_start", "llm_end", "ai_message"],
        {"llm_end": "hello", "ai_message": "hello"},
    ),
    (
        "chat subagent: no ai_message",
        "chat gpt-x",
        {**common("r", caller="subagent:researcher"), **CHAT},
        OUT,
        None,
        ["llm_start", "llm_end"],
        {"llm_end": "hello"},
    ),
    (
        "chat middleware: no ai_message",
        "chat gpt-x",
        {**common("r", caller="middleware:summarization"), **CHAT},
        OUT,
        None,
        ["llm_start", "llm_end"],
        {"llm_end": "hello"},
    ),
    (
        "chat tool calls only: no ai_message",
        "chat gpt-x",
        {**common("r"), **CHAT},
        {sc.GEN_AI_OUTPUT_MESSAGES: assistant_output("", [("c1", "calc", {})])},
        None,
        ["llm_start", "llm_end"],
        {"llm_end": None},
    ),
    (
        "chat error",
        "chat gpt-x",
        {**common("r"), **CHAT},
        None,
        ValueError("rate limited"),
        ["llm_start", "llm_error"],
        {"llm_error": "rate limited"},
    ),
    (
        "tool",
        "execute_tool calc",
        {**common("r", run_type="tool"), **TOOL},
        {sc.GEN_AI_TOOL_CALL_ARGUMENTS: '{"x": 1}', sc.GEN_AI_TOOL_CALL_RESULT: "2"},
        None,
        ["tool_start", "tool_end"],
        {"tool_end": "2", "tool_start": None},
    ),
    (
        "tool error",
        "execute_tool calc",
        {**common("r", run_type="tool"), **TOOL},
        None,
        LookupError("down"),
        ["tool_start", "tool_error"],
        {"tool_error": "down"},
    ),
    (
        "retriever",
        "retrieval docs",
        {**common("r", run_type="retriever"), sc.RJ_RETRIEVER_DOCUMENT_COUNT: 2},
        {_content.KEY_RETRIEVAL_QUERY: "q?", _content.KEY_RETRIEVAL_DOCUMENTS: "[d1, d2]"},
        None,
        ["retriever_start", "retriever_end"],
        {"retriever_start": "q?", "retriever_end": "[d1, d2]"},
    ),
    (
        "retriever error",
        "retrieval docs",
        {**common("r", run_type="retriever")},
        None,
        OSError("index gone"),
        ["retriever_start", "retriever_error"],
        {"retriever_error": "index gone"},
    ),
    ("plain chain: nothing", "agent", {**common("r")}, None, None, [], {}),
    (
        "foreign chat, legacy usage names",
        "chat gpt-4o",
        {
            sc.GEN_AI_OPERATION_NAME: "chat",
            "gen_ai.usage.prompt_tokens": 11,
            "gen_ai.usage.completion_tokens": 4,
        },
        OUT,
        None,
        ["llm_start", "llm_end", "ai_message"],
        {"llm_end": "hello"},
    ),
    (
        "foreign, OpenLLMetry-style completion attribute",
        "openai.chat",
        {
            "gen_ai.system": "openai",
            sc.GEN_AI_USAGE_INPUT_TOKENS: 11,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 4,
            "gen_ai.completion.0.content": "hello",
        },
        None,
        None,
        ["llm_start", "llm_end", "ai_message"],
        {"ai_message": "hello"},
    ),
]


@pytest.mark.parametrize(
    ("case", "name", "attrs", "content", "error", "types", "texts"), CASES, ids=[c[0] for c in CASES]
)
def test_span_events_table(
    f: SpanFactory,
    case: str,
    name: str,
    attrs: dict[str, Any],
    content: dict[str, Any] | None,
    error: BaseException | None,
    types: list[str],
    texts: dict[str, Any],
) -> None:
    """Each kind of span maps to its event types in order, with the right content per event."""
    mapped = m.map_span(_one(f, name, attrs, content=content, error=error), "r", "t")
    assert _types(mapped) == types
    by_type = {ev.event_type: ev for _, ev in mapped.events}
    for event_type, text in texts.items():
        assert by_type[event_type].content == text, event_type
    assert all(ev.run_id == "r" and ev.thread_id == "t" for _, ev in mapped.events)
    assert all(ev.span_id == mapped.record.span_id for _, ev in mapped.events)


@pytest.mark.parametrize(
    "cache_write_name",
    [
        "gen_ai.usage.cache_creation.input_tokens",  # the current name
        "gen_ai.usage.cache_write.input_tokens",  # semconv main's short-lived spelling
        "gen_ai.usage.cache_creation_input_tokens",  # OpenLLMetry's
    ],
)
def test_chat_metadata_usage_and_tool_calls(f: SpanFactory, cache_write_name: str) -> None:
    """llm_end carries model, caller, full usage (cache/reasoning), latency, finish reasons and tool calls."""
    attrs = {
        **common("r", caller="subagent:researcher"),
        **chat_attrs("gpt-x", 100, 20),
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 30,
        cache_write_name: 5,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 8,
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ("tool_calls",),
    }
    mapped = m.map_span(_one(f, "chat gpt-x", attrs, content=OUT, kind=SpanKind.CLIENT), "r", "t")
    end = next(ev for _, ev in mapped.events if ev.event_type == "llm_end")
    assert end.metadata == {
        "model": "gpt-x",
        "model_name": "gpt-x",
        "caller": "subagent:researcher",
        "usage": {
            "input_tokens": 100,
            "output_tokens": 20,
            "total_tokens": 120,
            "cached_input_tokens": 30,
            "cache_write_input_tokens": 5,
            "reasoning_tokens": 8,
        },
        "latency_ms": 5.0,
        "finish_reasons": ["tool_calls"],
        "tool_calls": [{"id": "c9", "name": "calc", "args": {"x": 1}}],
    }
    assert mapped.caller == "subagent:researcher"
    assert mapped.usage is not None and mapped.usage.total_tokens == 120


def test_tool_and_error_metadata(f: SpanFactory) -> None:
    """tool_start parses JSON args; tool_error carries the exception type from error.type."""
    ok = m.map_span(
        _one(
            f,
            "execute_tool calc",
            {**common("r"), **TOOL},
            content={sc.GEN_AI_TOOL_CALL_ARGUMENTS: '{"x": 1}'},
        ),
        "r",
        "r",
    )
    start = next(ev for _, ev in ok.events if ev.event_type == "tool_start")
    assert start.metadata == {
        "tool_name": "calc",
        "tool_call_id": "c9",
        "args": {"x": 1},
        "caller": "lead_agent",
    }
    bad = m.map_span(
        _one(f, "execute_tool calc", {**common("r"), **TOOL}, error=LookupError("down")), "r", "r"
    )
    err = next(ev for _, ev in bad.events if ev.event_type == "tool_error")
    assert err.metadata["error_type"] == "LookupError" and err.metadata["tool_name"] == "calc"


def test_content_attributes_equal_side_channel(f: SpanFactory) -> None:
    """Content put on the span (capture_content) maps exactly like content from the side channel."""
    attrs = {**common("r"), **CHAT}
    side = m.map_span(_one(f, "chat gpt-x", attrs, content=OUT), "r", "t")
    on_span = m.map_span(_one(f, "chat gpt-x", {**attrs, **OUT}), "r", "t")
    assert [(ev.event_type, ev.content, ev.metadata) for _, ev in side.events] == [
        (ev.event_type, ev.content, ev.metadata) for _, ev in on_span.events
    ]


def test_without_journal_content(f: SpanFactory) -> None:
    """with_content=False: no content, no message rows, and content attributes stripped from the span row."""
    span = _one(f, "chat gpt-x", {**common("r"), **CHAT, **OUT}, content=OUT)
    mapped = m.map_span(span, "r", "t", with_content=False)
    assert _types(mapped) == ["llm_start", "llm_end"]
    assert all(ev.content is None for _, ev in mapped.events)
    assert sc.GEN_AI_OUTPUT_MESSAGES not in mapped.record.attributes
    assert mapped.record.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 11
    assert sc.GEN_AI_OUTPUT_MESSAGES in (span.attributes or {})  # the span itself is left as it was


def test_custom_events_and_summary(f: SpanFactory) -> None:
    """A summarization custom event becomes a trace event plus a summary message; others keep their name."""
    span = f.start("summarize", 0, attrs=common("r"))
    data = {"summary": "they talked", "replaced_count": 4}
    span.add_event(sc.EVENT_CUSTOM_PREFIX + "summarization", timestamp=T0 + 2 * 1_000_000)
    span.add_event(sc.EVENT_CUSTOM_PREFIX + "progress", timestamp=T0 + 3 * 1_000_000)
    events = [
        ("summarization", T0 + 2_000_000, json.dumps(data)),
        ("progress", T0 + 3_000_000, '{"pct": 50}'),
    ]
    mapped = m.map_span(f.end(span, 5, content={_content.KEY_CUSTOM_EVENTS: events}), "r", "r")
    rows = [
        (ev.event_type, ev.category, ev.content, ev.metadata)
        for _, ev in sorted(mapped.events, key=lambda k: k[0])
    ]
    assert rows == [
        ("summarization", "trace", "they talked", data),
        ("summary", "message", "they talked", {"replaced_count": 4}),
        ("progress", "trace", None, {"pct": 50}),
    ]


def test_custom_event_data_on_the_event(f: SpanFactory) -> None:
    """With capture_content the custom event's data is read from the span event's attribute."""
    span = f.start("summarize", 0, attrs=common("r"))
    span.add_event(
        sc.EVENT_CUSTOM_PREFIX + "summarization", {sc.RJ_CUSTOM_DATA: '{"summary": "s", "replaced_count": 2}'}
    )
    mapped = m.map_span(f.end(span, 5), "r", "r")
    assert _types(mapped) == ["summarization", "summary"]


@pytest.mark.parametrize(
    ("name", "attrs", "op", "genai"),
    [
        ("chat gpt-4o", {}, "chat", True),
        ("execute_tool search", {}, "execute_tool", True),
        ("invoke_agent planner", {}, "invoke_agent", True),
        ("whatever", {sc.GEN_AI_OPERATION_NAME: "embeddings"}, "embeddings", True),
        ("openai.chat", {"gen_ai.system": "openai"}, None, True),
        ("openai.chat", {"gen_ai.usage.prompt_tokens": 3}, "chat", True),
        ("node", {sc.RJ_RUN_TYPE: "tool"}, "execute_tool", True),
        ("get_weather.tool", {"traceloop.span.kind": "tool"}, "execute_tool", True),
        ("assistant.workflow", {"traceloop.span.kind": "workflow"}, "invoke_workflow", True),
        ("ChatOpenAI.chat", {"llm.request.type": "chat", "gen_ai.system": "openai"}, "chat", True),
        ("step.task", {"traceloop.span.kind": "task"}, None, False),
        ("GET /weather", {"http.request.method": "GET"}, None, False),
        ("chat", {}, None, False),
    ],
)
def test_operation_and_genai_detection(
    f: SpanFactory, name: str, attrs: dict[str, Any], op: str | None, genai: bool
) -> None:
    """GenAI spans are recognised by attribute, name or usage; an app's HTTP span is not."""
    span = _one(f, name, attrs)
    assert spanfacts.operation(span) == op
    assert spanfacts.is_genai(span) is genai


def test_span_record(f: SpanFactory) -> None:
    """The spans row keeps ids, parent, kind, status, times, attributes, events and resource."""
    parent = f.start("invoke_agent a", 0, attrs=common("r"))
    child = f.start("chat m", 1, parent=parent, kind=SpanKind.CLIENT, attrs={**common("r"), **CHAT})
    rec = m.span_record(f.end(child, 3.5, error=RuntimeError("x")), "r")
    ctx = child.get_span_context()
    assert (rec.trace_id, rec.span_id) == (format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"))
    assert rec.parent_span_id == format(parent.get_span_context().span_id, "016x")
    assert (rec.kind, rec.status_code, rec.status_message) == ("CLIENT", "ERROR", "x")
    assert rec.duration_ms == 2.5
    assert rec.start_time == datetime(2023, 11, 14, 22, 13, 20, 1000, tzinfo=timezone.utc)
    assert rec.attributes[sc.GEN_AI_REQUEST_MODEL] == "gpt-x"
    assert rec.events[0]["name"] == "exception"
    assert "service.name" in rec.resource


def test_utc_is_exact_to_the_microsecond() -> None:
    """Nanosecond timestamps convert to UTC datetimes without float rounding."""
    assert utc(1_700_000_000_123_456_789) == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=timezone.utc)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_utc_fast_path_matches_exact_arithmetic(ns: int) -> None:
    """The float fast path of utc() gives exactly the integer-arithmetic datetime, at any instant."""
    exact = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=ns // 1000)
    assert utc(ns) == exact
    assert utc(ns).tzinfo is timezone.utc


@pytest.mark.parametrize("ns", [0, 999, 1000, 2**33 * 10**9 - 1, 2**33 * 10**9, 2**33 * 10**9 + 1000])
def test_utc_at_the_fast_path_bounds(ns: int) -> None:
    """utc() is exact on both sides of the float fast path's range."""
    assert utc(ns) == datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=ns // 1000)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.integers(min_value=0, max_value=2**63 - 1),
        st.integers(min_value=2**33 * 10**9 - 10**4, max_value=2**33 * 10**9 + 10**4),
    ),
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=0, max_value=10**6),
)
def test_row_and_event_times_are_utc_of_their_ns(start: int, length: int, event_at: int) -> None:
    """A span's row times and its events' times (inlined conversions) are records.utc of their ns, on
    both sides of utc's fast-path bound."""
    end = min(start + length, 2**63 - 1)
    at = min(start + event_at, end)
    ctx = SpanContext(0x1234, 0x5678, False)
    span = ReadableSpan(
        name="summarize",
        context=ctx,
        attributes={**common("r"), sc.RJ_RUN_TYPE: "chain"},
        events=(Event(sc.EVENT_CUSTOM_PREFIX + "note", {sc.RJ_CUSTOM_DATA: '{"a": 1}'}, timestamp=at),),
        start_time=start,
        end_time=end,
    )
    mapped = m.map_span(span, "r", "t")
    row = mapped.record
    assert (row.start_time, row.end_time) == (utc(start), utc(end))
    assert row.start_time.tzinfo is timezone.utc and row.end_time.tzinfo is timezone.utc
    ((_, event),) = mapped.events
    ts = max(at, start)
    assert event.created_at == (utc(ts) if ts < end else utc(end))
    assert event.created_at.tzinfo is timezone.utc


def test_span_row_is_the_same_from_any_span_object(
    f: SpanFactory, span_exporter: InMemorySpanExporter
) -> None:
    """The live span, the ReadableSpan a processor gets, and a hand-built one give equal rows and events."""
    parent = f.start("invoke_agent a", 0, attrs=common("r"))
    child = f.start("execute_tool calc", 1, parent=parent, attrs={**common("r"), **TOOL})
    child.add_event("runjournal.custom.progress", {sc.RJ_CUSTOM_DATA: '{"pct": 5}'}, timestamp=T0 + 2 * MS)
    live = f.end(child, 3, error=RuntimeError("boom"), attrs={"tags": ("a", "b")})
    exported = span_exporter.get_finished_spans()[-1]
    assert exported is not live
    built = ReadableSpan(
        name=live.name,
        context=live.get_span_context(),
        parent=live.parent,
        resource=live.resource,
        attributes=dict(live.attributes or {}),
        events=tuple(live.events),
        kind=live.kind,
        status=live.status,
        start_time=live.start_time,
        end_time=live.end_time,
    )
    rows = [m.span_record(span, "r") for span in (live, exported, built)]
    assert rows[0] == rows[1] == rows[2]
    assert rows[0].attributes["tags"] == ("a", "b")  # arrays stay tuples (JSON arrays in the stores)
    assert [e["name"] for e in rows[0].events] == ["runjournal.custom.progress", "exception"]
    events = [
        [
            (k, ev.event_type, ev.content, ev.metadata, ev.created_at)
            for k, ev in m.map_span(s, "r", "t").events
        ]
        for s in (live, exported, built)
    ]
    assert events[0] == events[1] == events[2]
    assert [e[1] for e in sorted(events[0])] == ["tool_start", "progress", "tool_error"]


# --- one run ------------------------------------------------------------------------------------------
def _write(spans: list[ReadableSpan], **kw: Any) -> Any:
    mapped = [m.map_span(s, "run-1", "thread-1") for s in spans]
    root = next((x.root for x in mapped if x.is_root), None)
    return _runwrite.build_write("run-1", "thread-1", mapped, root=root, status="running", **kw)


def test_run_events_in_time_order_whatever_the_input_order(f: SpanFactory) -> None:
    """Events come out in time order with the contract's tie-breaks, for any order of the spans."""
    spans = handler_run(f, "run-1", thread_id="thread-1")
    handed = [(s, _content.peek(s)) for s in spans]
    for seed in range(5):
        for span, found in handed:  # the handler hands content over once; each mapping takes it
            if found is not None:
                _content.put(span, found)
        shuffled = spans[:]
        random.Random(seed).shuffle(shuffled)
        write = _write(shuffled)
        assert [ev.event_type for ev in write.events] == HANDLER_RUN_EVENTS
    times = [ev.created_at for ev in write.events]
    assert times == sorted(times)


def test_run_record_agrees_with_events(f: SpanFactory) -> None:
    """The runs row's totals, counts, messages and times agree with the events written."""
    write = _write(handler_run(f, "run-1", thread_id="thread-1"))
    run = write.run
    assert (run.run_id, run.thread_id, run.name, run.status) == (
        "run-1",
        "thread-1",
        "research_assistant",
        "success",
    )
    assert (run.input_tokens, run.output_tokens, run.total_tokens, run.llm_call_count) == (30, 12, 42, 2)
    assert (run.lead_agent_tokens, run.subagent_tokens, run.middleware_tokens) == (42, 0, 0)
    assert run.usage_by_caller == {"lead_agent": 42}
    assert run.message_count == sum(ev.category == "message" for ev in write.events) == 2
    assert (run.first_human_message, run.last_ai_message) == ("weather in Paris?", "It is sunny.")
    assert run.duration_ms == 100.0
    assert run.started_at == write.events[0].created_at and run.ended_at == write.events[-1].created_at
    start, end = write.events[0], write.events[-1]
    assert start.content == "weather in Paris?"
    assert start.metadata == {"name": "research_assistant", "input_preview": "weather in Paris?"}
    assert end.metadata["status"] == "success" and end.metadata["total_tokens"] == 42
    assert end.metadata["by_caller"] == {"lead_agent": 42} and end.metadata["llm_call_count"] == 2
    assert len(write.spans) == 4


@pytest.mark.parametrize(
    ("attrs", "error", "content", "last", "status", "text"),
    [
        ({}, RuntimeError("boom"), None, "run_error", "error", "boom"),
        (
            {sc.RJ_INTERRUPTED: True},
            None,
            {_content.KEY_INTERRUPT_VALUE: "approve?"},
            "run_interrupted",
            "interrupted",
            "approve?",
        ),
        ({sc.RJ_ABANDONED: True}, None, None, "run_end", "abandoned", None),
    ],
)
def test_root_outcomes(
    f: SpanFactory,
    attrs: dict[str, Any],
    error: BaseException | None,
    content: dict[str, Any] | None,
    last: str,
    status: str,
    text: str | None,
) -> None:
    """An errored, interrupted or abandoned root ends the run with the matching event and status."""
    root = f.start(
        "invoke_workflow g", 0, attrs={**common("run-1", "thread-1"), sc.RJ_IS_ROOT: True, **attrs}
    )
    write = _write([f.end(root, 10, error=error, content=content)])
    assert [ev.event_type for ev in write.events] == ["run_start", last]
    assert write.events[-1].content == text
    assert write.run.status == status
    if error is not None:
        assert write.events[-1].metadata["error_type"] == "RuntimeError"
        assert write.run.error == "boom"


def test_zero_duration_span_keeps_start_before_end(f: SpanFactory) -> None:
    """A span that starts and ends in the same nanosecond still has its start event first."""
    root = f.start("invoke_agent a", 0, attrs={**common("run-1", "thread-1"), sc.RJ_IS_ROOT: True})
    tool = f.start("execute_tool t", 5, parent=root, attrs={**common("run-1", "thread-1"), **TOOL})
    write = _write([f.end(tool, 5), f.end(root, 9)])
    assert [ev.event_type for ev in write.events] == ["run_start", "tool_start", "tool_end", "run_end"]


def test_prior_totals_carry_forward(f: SpanFactory) -> None:
    """A run written in parts: the second part's row carries the totals of the first."""
    spans = handler_run(f, "run-1", thread_id="thread-1")
    first = _write(spans[:1])
    assert first.run.status == "running" and first.run.total_tokens == 15
    second = _write(spans[1:], prior=first.run)
    assert second.run.total_tokens == 42 and second.run.llm_call_count == 2
    assert second.run.message_count == 2  # human + ai in the second part, none in the first
    assert [ev.event_type for ev in first.events + second.events].count("llm_end") == 2


def test_merge_roots_of_foreign_group() -> None:
    """Several top-level foreign spans make one synthetic root spanning them; an error wins."""
    a = spanfacts.RootInfo("chat a", "t" * 32, "1" * 16, 10, 20, "success", human_text="hi")
    b = spanfacts.RootInfo("chat b", "t" * 32, "2" * 16, 30, 40, "error", error_message="bad", error_type="E")
    root = _runwrite.merge_roots([a, b], "t" * 32, 10, 40)
    assert (root.status, root.error_message, root.human_text, root.span_id) == ("error", "bad", "hi", None)
    assert _runwrite.merge_roots([a], "t" * 32, 0, 0) is a
    assert RunRecord("x", "x").status == "running"


@pytest.mark.parametrize(
    ("text", "human", "output"),
    [
        (user_input("hi"), "hi", ("hi", [])),
        ('[{"role": "human", "content": "old style"}]', "old style", ("old style", [])),
        ("plain words", "plain words", ("plain words", [])),
        ("{not json", "{not json", ("{not json", [])),
        ('{"role": "system", "parts": []}', None, ("", [])),
        ("42", None, ("", [])),
        ("null", "null", ("null", [])),
        ("true story", "true story", ("true story", [])),
        ('[{"role": "user", "content": "nan", "x": NaN}]', "nan", ("nan", [])),
        ('[{"role": "user", "parts": [{"type": "text", "content": "\\ud800"}]}]', "\ud800", ("\ud800", [])),
        (
            assistant_output("ok", [("c1", "t", {"a": 1})]),
            None,
            ("ok", [{"id": "c1", "name": "t", "args": {"a": 1}}]),
        ),
    ],
)
def test_genai_json_is_lenient(text: str, human: str | None, output: tuple[str, list[Any]]) -> None:
    """Content JSON in the conventions' format, older formats, plain text and junk all read without errors."""
    assert gj.human_text(text) == human
    assert gj.output(text) == output


def test_genai_json_parse_is_exact() -> None:
    """Values orjson would read inexactly or refuse (big integers, NaN) parse as json.loads reads them."""
    assert gj.parse('{"n": 123456789012345678901234567890}') == {"n": 123456789012345678901234567890}
    assert gj.parse('{"n": -9223372036854775809, "m": 7}') == {"n": -9223372036854775809, "m": 7}
    assert math.isnan(gj.parse('{"x": NaN}')["x"])
    assert gj.parse("sunny") is None
    assert gj.parse(" \n[1, 2]") == [1, 2]


def test_abandoned_child_is_marked(f: SpanFactory) -> None:
    """A child span the handler ended on TTL marks its end event abandoned."""
    span = _one(f, "execute_tool calc", {**common("r"), **TOOL, sc.RJ_ABANDONED: True})
    events = {ev.event_type: ev for _, ev in m.map_span(span, "r", "r").events}
    assert events["tool_end"].metadata["abandoned"] is True
    assert "abandoned" not in events["tool_start"].metadata


@pytest.mark.parametrize(
    ("name", "attrs"),
    [
        ("invoke_agent helper", {sc.GEN_AI_OPERATION_NAME: "invoke_agent"}),  # a subagent: no events
        ("chat m", CHAT),  # events: its Emitter is its content
        ("execute_tool t", {sc.GEN_AI_OPERATION_NAME: "execute_tool", sc.GEN_AI_TOOL_NAME: "t"}),
    ],
)
def test_mapping_takes_the_content_of_every_span_that_reads_any(
    f: SpanFactory, name: str, attrs: dict[str, Any]
) -> None:
    """The content handed over for a span inside a run is taken when it is mapped, whether or not the
    span makes events, so nothing is left in the registry."""
    span = _one(f, name, {**common("r"), **attrs}, content={sc.GEN_AI_INPUT_MESSAGES: user_input("hi")})
    assert _content.peek(span) is not None
    m.map_span(span, "r", "r")
    assert _content.peek(span) is None
