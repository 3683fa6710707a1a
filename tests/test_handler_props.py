"""Property tests: odd payloads and odd callback orders never raise into the application."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_runjournal import content as _content
from otel_runjournal import guard as _guard
from otel_runjournal.tracing.handler import RunJournalCallbackHandler

RUN_IDS = [uuid.UUID(int=i + 1) for i in range(4)]


class _Hostile:
    """An object whose str/repr/iteration all fail."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("no iter")


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),  # includes surrogates-free odd unicode
    st.just("\u0000\ud7ff\ufeff\u202e" * 3),
    st.just("x" * 200_000),
    st.binary(max_size=20),
    st.builds(object),
    st.builds(_Hostile),
    st.uuids(),
)
_payloads = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), children, max_size=4),
        st.tuples(children, children),
    ),
    max_leaves=12,
)
_messages = st.lists(
    st.one_of(
        st.builds(HumanMessage, content=st.text()),
        st.builds(AIMessage, content=st.text()),
        st.builds(ToolMessage, content=st.text(), tool_call_id=st.text(max_size=4)),
        _payloads,
    ),
    max_size=4,
)
_usage = st.one_of(
    st.none(),
    _payloads,
    st.fixed_dictionaries(
        {},
        optional={
            "prompt_tokens": _scalars,
            "completion_tokens": _scalars,
            "total_tokens": _scalars,
            "input_tokens": _scalars,
            "prompt_tokens_details": _payloads,
        },
    ),
)
_responses = st.one_of(
    _payloads,
    st.builds(
        lambda text, usage: LLMResult(
            generations=[[Generation(text=text)]], llm_output={"token_usage": usage}
        ),
        st.text(),
        _usage,
    ),
    st.builds(
        lambda text: LLMResult(generations=[[ChatGeneration(message=AIMessage(text))]]),
        st.text(),
    ),
)
_ids = st.sampled_from(RUN_IDS)
_parents = st.one_of(st.none(), _ids)
_tags = st.one_of(
    st.none(),
    st.lists(
        st.sampled_from(["subagent:a", "middleware:m", "lead_agent", "graph:step:1", "seq:step:1", "agent"])
    ),
)
_metadata = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["thread_id", "run_id", "agent_name", "ls_provider"]), _scalars),
)
_names = st.one_of(st.text(max_size=10), st.sampled_from(["RunnableSequence", "tools_condition", "agent"]))

_actions = st.one_of(
    st.tuples(st.just("chain_start"), _ids, _parents, _payloads, _tags, _metadata, _names),
    st.tuples(st.just("chat_start"), _ids, _parents, _messages, _tags, _metadata, _payloads),
    st.tuples(
        st.just("llm_start"), _ids, _parents, st.lists(st.text(), max_size=2), _tags, _metadata, _payloads
    ),
    st.tuples(st.just("tool_start"), _ids, _parents, _payloads, _tags, _metadata, _names),
    st.tuples(st.just("retriever_start"), _ids, _parents, st.text(), _tags, _metadata, _names),
    st.tuples(st.just("new_token"), _ids, st.text()),
    st.tuples(st.just("llm_end"), _ids, _responses),
    st.tuples(st.just("chain_end"), _ids, _payloads),
    st.tuples(st.just("tool_end"), _ids, _payloads),
    st.tuples(st.just("retriever_end"), _ids, _payloads),
    st.tuples(st.just("error"), _ids, st.sampled_from(["chain", "llm", "tool", "retriever"])),
    st.tuples(st.just("custom"), _ids, st.text(max_size=10), _payloads),
)


def _apply(handler: RunJournalCallbackHandler, action: tuple[Any, ...]) -> None:
    kind = action[0]
    if kind == "chain_start":
        _, rid, parent, inputs, tags, metadata, name = action
        handler.on_chain_start(
            {}, inputs, run_id=rid, parent_run_id=parent, tags=tags, metadata=metadata, name=name
        )
    elif kind == "chat_start":
        _, rid, parent, messages, tags, metadata, params = action
        handler.on_chat_model_start(
            None,
            [messages],
            run_id=rid,
            parent_run_id=parent,
            tags=tags,
            metadata=metadata,
            invocation_params=params,
        )
    elif kind == "llm_start":
        _, rid, parent, prompts, tags, metadata, params = action
        handler.on_llm_start(
            {},
            prompts,
            run_id=rid,
            parent_run_id=parent,
            tags=tags,
            metadata=metadata,
            invocation_params=params,
        )
    elif kind == "tool_start":
        _, rid, parent, inputs, tags, metadata, name = action
        handler.on_tool_start(
            {"name": name}, "x", run_id=rid, parent_run_id=parent, tags=tags, metadata=metadata, inputs=inputs
        )
    elif kind == "retriever_start":
        _, rid, parent, query, tags, metadata, name = action
        handler.on_retriever_start(
            {}, query, run_id=rid, parent_run_id=parent, tags=tags, metadata=metadata, name=name
        )
    elif kind == "new_token":
        handler.on_llm_new_token(action[2], run_id=action[1])
    elif kind == "llm_end":
        handler.on_llm_end(action[2], run_id=action[1])
    elif kind == "chain_end":
        handler.on_chain_end(action[2], run_id=action[1])
    elif kind == "tool_end":
        handler.on_tool_end(action[2], run_id=action[1])
    elif kind == "retriever_end":
        handler.on_retriever_end(action[2], run_id=action[1])
    elif kind == "error":
        getattr(handler, f"on_{action[2]}_error")(ValueError("boom"), run_id=action[1])
    elif kind == "custom":
        handler.on_custom_event(action[2], action[3], run_id=action[1])


@contextmanager
def _internal_errors() -> Iterator[list[logging.LogRecord]]:
    """Errors re-raising off (production behaviour); collect what the guard logs."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("otel_runjournal")
    collector = Collect(level=logging.DEBUG)
    old_level = logger.level
    logger.addHandler(collector)
    logger.setLevel(logging.DEBUG)
    _guard.RAISE_INTERNAL_ERRORS = False
    try:
        yield records
    finally:
        _guard.RAISE_INTERNAL_ERRORS = True
        logger.removeHandler(collector)
        logger.setLevel(old_level)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    actions=st.lists(_actions, max_size=25),
    capture=st.booleans(),
    limit=st.integers(min_value=1, max_value=300),
)
def test_odd_payloads_and_orders_never_raise(
    actions: list[tuple[Any, ...]], capture: bool, limit: int
) -> None:
    """Any sequence of callbacks (unknown ids, end without start, duplicate starts) with odd payloads
    (unserialisable objects, huge strings, odd unicode, None usage) raises nothing, logs no internal
    error, renders every recorded content value to a string, and shutdown leaves nothing open."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with _internal_errors() as errors:
        handler = RunJournalCallbackHandler(  # journal_content: no exporter reads it here
            provider,
            capture_content=capture,
            journal_content=True,
            content_max_length=limit,
            verbosity="genai",
        )
        for action in actions:
            _apply(handler, action)
        handler.shutdown()
        assert handler.open_run_count == 0
        for span in exporter.get_finished_spans():
            for key, value in (_content.peek(span) or {}).items():
                if key == _content.KEY_CUSTOM_EVENTS:
                    assert all(isinstance(_content.render(data), str) for _, _, data in value)
                else:
                    rendered = _content.render(value)
                    assert rendered is None or isinstance(rendered, str)
                    assert rendered != '"<unrenderable>"', key
    provider.shutdown()
    assert not errors, [r.getMessage() for r in errors]


_child = st.tuples(
    st.sampled_from(["chat", "llm", "tool", "retriever", "chain"]),
    _payloads,  # input
    _responses,  # output / response
    _tags,
    _metadata,
    st.sampled_from(["end", "error", "none", "end_twice"]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    root_inputs=_payloads,
    kids=st.lists(_child, max_size=6),
    events=st.lists(st.tuples(st.text(max_size=8), _payloads), max_size=3),
    root_end=st.sampled_from(["end", "error", "none"]),
    capture=st.booleans(),
    limit=st.integers(min_value=1, max_value=500),
)
def test_odd_payloads_in_well_formed_runs(
    root_inputs: Any,
    kids: list[tuple[Any, ...]],
    events: list[tuple[str, Any]],
    root_end: str,
    capture: bool,
    limit: int,
) -> None:
    """Well-formed runs whose children carry odd inputs, outputs and usage raise nothing, log no
    internal error, render all content, and leave nothing open."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    root = uuid.uuid4()
    with _internal_errors() as errors:
        handler = RunJournalCallbackHandler(
            provider, capture_content=capture, journal_content=True, content_max_length=limit
        )
        handler.on_chain_start({}, root_inputs, run_id=root, metadata={"agent_name": "a"})
        for kind, payload, response, tags, metadata, ending in kids:
            rid = uuid.uuid4()
            common: dict[str, Any] = {
                "run_id": rid,
                "parent_run_id": root,
                "tags": tags,
                "metadata": metadata,
            }
            if kind == "chat":
                handler.on_chat_model_start(
                    {}, [[HumanMessage("q"), payload]], invocation_params=payload, **common
                )
                handler.on_llm_new_token("t", run_id=rid)
            elif kind == "llm":
                handler.on_llm_start({}, ["p"], **common)
            elif kind == "tool":
                handler.on_tool_start({"name": "t"}, "x", inputs=payload, tool_call_id="c", **common)
            elif kind == "retriever":
                handler.on_retriever_start({}, "q", name="r", **common)
            else:
                handler.on_chain_start({}, payload, name="step", **common)
            for name, data in events:
                handler.on_custom_event(name, data, run_id=rid)
            end = {
                "chat": handler.on_llm_end,
                "llm": handler.on_llm_end,
                "tool": handler.on_tool_end,
                "retriever": handler.on_retriever_end,
                "chain": handler.on_chain_end,
            }[kind]
            error = {
                "chat": handler.on_llm_error,
                "llm": handler.on_llm_error,
                "tool": handler.on_tool_error,
                "retriever": handler.on_retriever_error,
                "chain": handler.on_chain_error,
            }[kind]
            if ending in ("end", "end_twice"):
                end(response if kind in ("chat", "llm") else payload, run_id=rid)
            if ending == "end_twice":
                end(response, run_id=rid)
            if ending == "error":
                error(KeyError(payload) if isinstance(payload, str) else RuntimeError("x"), run_id=rid)
        if root_end == "end":
            handler.on_chain_end(root_inputs, run_id=root)
        elif root_end == "error":
            handler.on_chain_error(ValueError("root"), run_id=root)
        handler.flush()
        assert handler.open_run_count == 0
        spans = exporter.get_finished_spans()
        assert len(spans) == 1 + len(kids)
        for span in spans:
            for key, value in (_content.peek(span) or {}).items():
                if key == _content.KEY_CUSTOM_EVENTS:
                    assert all(isinstance(_content.render(data), str) for _, _, data in value)
                else:
                    rendered = _content.render(value)
                    assert rendered is None or isinstance(rendered, str)
                    assert rendered != '"<unrenderable>"', key
    provider.shutdown()
    assert not errors, [r.getMessage() for r in errors]
