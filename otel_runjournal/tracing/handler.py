"""``RunJournalCallbackHandler``: LangChain / LangGraph runs → OpenTelemetry GenAI spans.

Each ``on_*_start`` looks the parent up in the run registry by ``parent_run_id`` (never from the
current OTel context, so concurrent runs keep one tree each) and starts a span with every common
attribute set; each ``on_*_end`` / ``on_*_error`` forgets the run and ends its span. Root runs
(no known parent) take the current OTel context as parent, so they nest under the application's own
request span. Classification lives in :mod:`._classify`, usage in :mod:`._usage`, rendering in
:mod:`._serialize`, the map in :mod:`._registry`.

``run_inline = True``: LangChain otherwise runs a sync handler's callbacks in a thread pool in async
code, a thread hop per callback. Our callbacks never block (no I/O; span processors do their own
batching) and are short, so running them inline is both faster and keeps their order.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import content as _content
from .. import guard as _guard
from .. import semconv as sc
from .. import settings as _env
from . import classify as cl
from . import metrics as _metrics
from .registry import RootState, RunRegistry, RunState
from .serialize import Renderer, snapshot
from .usage import Usage, add, chunk_usage, response_info, usage_of

_INTERNAL = SpanKind.INTERNAL
_CLIENT = SpanKind.CLIENT
_INTERRUPT_KEY = "__interrupt__"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("otel-runjournal")
    except Exception:
        return "0.0.0"


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be positive")
    return value


def _verbosity(text: str) -> str:
    value = text.strip().lower()
    if value not in cl.VERBOSITIES:
        raise ValueError(f"verbosity must be one of {cl.VERBOSITIES}")
    return value


class RunJournalCallbackHandler(BaseCallbackHandler):
    """LangChain callback handler producing OpenTelemetry GenAI spans (see DESIGN.md "Spans").

    Args:
        tracer_provider: provider to make spans on (default: the global one).
        capture_content: put content on spans as ``gen_ai.*`` attributes (every exporter sees it).
            Env ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``; default false.
        journal_content: hand content to the local journal through the span side channel.
            Env ``OTEL_RUNJOURNAL_JOURNAL_CONTENT``; default: while a ``RunJournalExporter`` that
            records content exists in the process (with OTLP alone nothing would read it).
        content_max_length: truncation limit of every content value (characters).
            Env ``OTEL_RUNJOURNAL_CONTENT_MAX_LENGTH``; default 65536.
        redact: ``str -> str`` applied to every content string before it is recorded anywhere.
        verbosity: ``genai`` (drop plumbing runs) or ``all``. Env ``OTEL_RUNJOURNAL_VERBOSITY``.
        run_ttl: seconds after which an idle run is ended as abandoned. Env ``OTEL_RUNJOURNAL_RUN_TTL``;
            default 3600.
        meter_provider: provider for GenAI metrics (default: the global one if it is an SDK provider).
    """

    run_inline = True

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        *,
        capture_content: bool | None = None,
        journal_content: bool | None = None,
        content_max_length: int | None = None,
        redact: Callable[[str], str] | None = None,
        verbosity: str | None = None,
        run_ttl: float | None = None,
        meter_provider: Any | None = None,
    ) -> None:
        super().__init__()
        if verbosity is not None:
            verbosity = _verbosity(verbosity)
        if content_max_length is not None and content_max_length <= 0:
            raise ValueError("content_max_length must be positive")
        if run_ttl is not None and not run_ttl > 0:
            raise ValueError("run_ttl must be positive")
        if redact is not None and not callable(redact):
            raise ValueError("redact must be a callable str -> str")
        self._capture = _env.resolve(
            capture_content, _env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, False, _env.parse_bool
        )
        journal = _env.resolve(journal_content, _env.OTEL_RUNJOURNAL_JOURNAL_CONTENT, None, _env.parse_bool)
        # with capture_content the content travels on the spans instead of the side channel;
        # None: only while a journal exporter reads it (checked per value, see _content.has_readers)
        self._side: bool | None = False if self._capture else journal
        limit = _env.resolve(
            content_max_length,
            _env.OTEL_RUNJOURNAL_CONTENT_MAX_LENGTH,
            _env.DEFAULT_CONTENT_MAX_LENGTH,
            _positive_int,
        )
        self._renderer = Renderer(limit, redact)
        self._keep_all = (
            _env.resolve(verbosity, _env.OTEL_RUNJOURNAL_VERBOSITY, cl.VERBOSITY_GENAI, _verbosity)
            == cl.VERBOSITY_ALL
        )
        ttl = _env.resolve(run_ttl, _env.OTEL_RUNJOURNAL_RUN_TTL, 3600.0, _positive_float)
        self._registry = RunRegistry(float(ttl))
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        self._tracer = provider.get_tracer(sc.INSTRUMENTATION_NAME, _version(), schema_url=sc.SCHEMA_URL)
        self._metrics = _metrics.build(meter_provider)

    @property
    def raise_error(self) -> bool:  # type: ignore[override]
        """Let LangChain propagate our errors only when the test suite asks for loud failures."""
        return _guard.RAISE_INTERNAL_ERRORS

    @property
    def open_run_count(self) -> int:
        """Runs started and not yet ended (including the tiny records of runs dropped by verbosity)."""
        return len(self._registry)

    # -- lifecycle -------------------------------------------------------------------------------
    @_guard.guarded("handler.flush")
    def flush(self) -> None:
        """End every open run now, marked ``runjournal.abandoned=true``."""
        for state in self._registry.drain():
            self._abandon_root(state)

    def shutdown(self) -> None:
        """End what is left (as :meth:`flush`); the handler stays usable."""
        self.flush()

    # -- span plumbing ---------------------------------------------------------------------------
    def _open(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        run_type: str,
        name: str,
        kind: SpanKind,
        attributes: dict[str, Any],
    ) -> RunState | None:
        """Start a (non-chain) run's span under its parent, or as a root."""
        parent = self._registry.get(parent_run_id) if parent_run_id is not None else None
        if parent is None:
            root, caller = self._new_root(run_id, tags, metadata)
            attributes.update(self._common(root, caller, run_type))
            attributes[sc.RJ_IS_ROOT] = True
            span = self._tracer.start_span(name, None, kind, attributes)
            state = RunState(span, root, None, caller, is_root=True)
        else:
            caller = cl.caller_of(tags, parent.caller) if tags else parent.caller
            root = parent.root
            attributes.update(self._common(root, caller, run_type))
            span = self._tracer.start_span(name, self._ctx(parent.kept), kind, attributes)
            state = RunState(span, root, None, caller, subagents=parent.subagents)
        if not self._registry.add(run_id, state):
            span.end()  # duplicate start: the first span stays authoritative
            return None
        return state

    @staticmethod
    def _common(root: RootState, caller: str, run_type: str) -> dict[str, Any]:
        return {
            sc.RJ_RUN_ID: root.run_key,
            sc.RJ_THREAD_ID: root.thread_id,
            sc.GEN_AI_CONVERSATION_ID: root.thread_id,
            sc.RJ_CALLER: caller,
            sc.RJ_RUN_TYPE: run_type,
        }

    def _new_root(
        self, run_id: UUID, tags: list[str] | None, metadata: dict[str, Any] | None
    ) -> tuple[RootState, str]:
        for state in self._registry.expired():
            self._abandon_root(state)
        run_key = None
        thread_id = None
        if metadata:
            run_key = metadata.get("run_id")
            thread_id = metadata.get("thread_id")
        run_key = run_key if isinstance(run_key, str) and run_key else str(run_id)
        if isinstance(thread_id, int) and not isinstance(thread_id, bool):
            thread_id = str(thread_id)
        thread_id = thread_id if isinstance(thread_id, str) and thread_id else run_key
        return RootState(run_key, thread_id), cl.caller_of(tags, sc.CALLER_LEAD_AGENT)

    @staticmethod
    def _ctx(kept: RunState) -> Any:
        ctx = kept.ctx
        if ctx is None:
            ctx = kept.ctx = trace.set_span_in_context(kept.span)
        return ctx

    def _journaling(self) -> bool:
        """Whether content goes to the side channel now (see ``journal_content``)."""
        side = self._side
        return _content.has_readers() if side is None else side

    def _side_content(self, state: RunState) -> dict[str, Any]:
        content = state.content
        if content is None:
            content = state.content = {}
            _content.attach(state.span, content)
        return content

    def _fail(self, state: RunState, error: BaseException) -> None:
        span = state.span
        if span is None:
            return
        etype = cl.error_type(error)
        span.set_attribute(sc.ERROR_TYPE, etype)
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{etype}: {error}"[:1024]))
        self._end(state)

    def _finish(self, run_id: UUID) -> RunState | None:
        """Forget an ending run that has a span; a root's still-open descendants are ended first."""
        state = self._registry.finish(run_id)
        if state is None or state.span is None:
            return None
        if state.is_root:
            self._end_leftovers(state.root)
        return state

    def _end(self, state: RunState) -> None:
        """End the run's span, a root with its token roll-up."""
        if state.is_root:
            self._roll_up(state)
        state.span.end()

    def _end_leftovers(self, root: RootState) -> None:
        leftovers, root.leftovers = root.leftovers, []
        for child in leftovers:
            if child.span is not None:
                child.span.set_attribute(sc.RJ_ABANDONED, True)
                child.span.end()

    def _abandon_root(self, state: RunState) -> None:
        self._end_leftovers(state.root)
        state.span.set_attribute(sc.RJ_ABANDONED, True)
        self._roll_up(state)
        state.span.end()

    def _roll_up(self, state: RunState) -> None:
        root = state.root
        by_caller = dict(root.by_caller)
        lead = sub = middleware = 0
        for caller, tokens in by_caller.items():
            if caller.startswith(sc.CALLER_SUBAGENT_PREFIX):
                sub += tokens
            elif caller.startswith(sc.CALLER_MIDDLEWARE_PREFIX):
                middleware += tokens
            else:
                lead += tokens
        import json

        state.span.set_attributes(
            {
                sc.RJ_USAGE_INPUT_TOKENS: root.input_tokens,
                sc.RJ_USAGE_OUTPUT_TOKENS: root.output_tokens,
                sc.RJ_USAGE_TOTAL_TOKENS: root.total_tokens,
                sc.RJ_USAGE_CACHED_INPUT_TOKENS: root.cache_read_tokens,
                sc.RJ_USAGE_REASONING_TOKENS: root.reasoning_tokens,
                sc.RJ_LLM_CALL_COUNT: root.llm_calls,
                sc.RJ_USAGE_LEAD_AGENT_TOKENS: lead,
                sc.RJ_USAGE_SUBAGENT_TOKENS: sub,
                sc.RJ_USAGE_MIDDLEWARE_TOKENS: middleware,
                sc.RJ_USAGE_BY_CALLER: json.dumps(by_caller, sort_keys=True, separators=(",", ":")),
            }
        )

    def _put(self, state: RunState, key: str, render: Callable[[Any], str], value: Any) -> None:
        """Record one content value: on the span when capturing, else lazily in the side channel."""
        if self._capture:
            state.span.set_attribute(key, render(value))
        elif self._journaling():
            self._side_content(state)[key] = functools.partial(render, value)

    # -- chains ----------------------------------------------------------------------------------
    @_guard.guarded("handler.on_chain_start")
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start a root (``invoke_agent`` / ``invoke_workflow``), subagent, node or other chain span."""
        self._chain_start(serialized, inputs, run_id, parent_run_id, tags, metadata, kwargs)

    def _chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> None:
        name = cl.run_name(serialized, kwargs, "chain")
        run_type = kwargs.get("run_type") or "chain"
        if not isinstance(run_type, str):
            run_type = "chain"
        parent = self._registry.get(parent_run_id) if parent_run_id is not None else None
        if parent is None:
            root, caller = self._new_root(run_id, tags, metadata)
            attributes = self._common(root, caller, run_type)
            attributes[sc.RJ_IS_ROOT] = True
            agent = cl.root_agent_name(name, tags, metadata)
            if agent is not None:
                attributes[sc.GEN_AI_OPERATION_NAME] = sc.OP_INVOKE_AGENT
                attributes[sc.GEN_AI_AGENT_NAME] = agent
                span_name = f"{sc.OP_INVOKE_AGENT} {agent}"
            else:
                attributes[sc.GEN_AI_OPERATION_NAME] = sc.OP_INVOKE_WORKFLOW
                span_name = f"{sc.OP_INVOKE_WORKFLOW} {name}"
            span = self._tracer.start_span(span_name, None, _INTERNAL, attributes)
            state = RunState(
                span,
                root,
                None,
                caller,
                is_root=True,
                graph_node=cl.has_graph_step(tags),
                subagents=cl.subagent_tags(tags),
            )
            if self._registry.add(run_id, state):
                self._put(state, sc.GEN_AI_INPUT_MESSAGES, self._renderer.run_input, snapshot(inputs))
            else:
                span.end()
            return
        root = parent.root
        if not tags:
            caller, subagent, graph_node, subagents = parent.caller, None, False, parent.subagents
        else:
            caller = cl.caller_of(tags, parent.caller)
            own = cl.subagent_tags(tags)
            subagent = cl.new_subagent(own, parent.subagents) if own else None
            graph_node = cl.has_graph_step(tags)
            subagents = own or parent.subagents
        if subagent is not None:
            attributes = self._common(root, caller, run_type)
            attributes[sc.GEN_AI_OPERATION_NAME] = sc.OP_INVOKE_AGENT
            attributes[sc.GEN_AI_AGENT_NAME] = subagent
            span_name = f"{sc.OP_INVOKE_AGENT} {subagent}"
        elif not self._keep_all and cl.is_plumbing(name, tags, parent.graph_node):
            dropped = RunState(None, root, parent.kept, caller, graph_node=graph_node, subagents=subagents)
            self._registry.add(run_id, dropped)
            return
        else:
            attributes = self._common(root, caller, run_type)
            span_name = name
        span = self._tracer.start_span(span_name, self._ctx(parent.kept), _INTERNAL, attributes)
        state = RunState(span, root, None, caller, graph_node=graph_node, subagents=subagents)
        if not self._registry.add(run_id, state):
            span.end()
        elif subagent is not None:
            state.is_agent = True
            self._put(state, sc.GEN_AI_INPUT_MESSAGES, self._renderer.run_input, snapshot(inputs))

    @_guard.guarded("handler.on_chain_end")
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """End a chain span; a root also gets its token roll-up and final output."""
        state = self._finish(run_id)
        if state is None:
            return
        if state.is_root:
            interrupts = outputs.get(_INTERRUPT_KEY) if isinstance(outputs, Mapping) else None
            if interrupts:
                state.root.interrupted = True
                state.root.interrupt_value = interrupts
            self._end_root(state, outputs)
        else:
            if state.is_agent:
                self._put(state, sc.GEN_AI_OUTPUT_MESSAGES, self._renderer.run_output, _last(outputs))
            state.span.end()

    def _end_root(self, state: RunState, outputs: Any) -> None:
        root = state.root
        span = state.span
        if root.interrupted:
            span.set_attribute(sc.RJ_INTERRUPTED, True)
            span.set_status(Status(StatusCode.OK))
            if root.interrupt_value is not None:
                values = _interrupt_values(root.interrupt_value)
                self._put(state, _content.KEY_INTERRUPT_VALUE, self._renderer.json, values)
        elif outputs is not None:
            self._put(state, sc.GEN_AI_OUTPUT_MESSAGES, self._renderer.run_output, _last(outputs))
        self._roll_up(state)
        span.end()

    @_guard.guarded("handler.on_chain_error")
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """End a chain span with an error, or as interrupted for LangGraph control flow."""
        self._error(run_id, error)

    def _error(self, run_id: UUID, error: BaseException) -> None:
        state = self._registry.finish(run_id)
        if state is None:
            return
        control_flow, interrupt = cl.control_flow(error)
        if state.is_root:
            self._end_leftovers(state.root)
        if not control_flow:
            if state.metric_attrs is not None and self._metrics is not None:
                self._record_metrics(state, None, cl.error_type(error))
            self._fail(state, error)
            return
        root = state.root
        if interrupt:
            root.interrupted = True
            if root.interrupt_value is None and error.args:
                root.interrupt_value = error.args[0]
        if state.span is None:
            return
        if state.is_root:
            self._end_root(state, None)
        else:
            if interrupt:
                state.span.set_attribute(sc.RJ_INTERRUPTED, True)
            state.span.end()

    # -- models ----------------------------------------------------------------------------------
    @_guard.guarded("handler.on_chat_model_start")
    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start a ``chat {model}`` CLIENT span."""
        prompt = list(messages[0]) if messages else []
        self._model_start(sc.OP_CHAT, serialized, prompt, run_id, parent_run_id, tags, metadata, kwargs)

    @_guard.guarded("handler.on_llm_start")
    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start a ``text_completion {model}`` CLIENT span."""
        prompt = list(prompts) if isinstance(prompts, list) else []
        self._model_start(
            sc.OP_TEXT_COMPLETION, serialized, prompt, run_id, parent_run_id, tags, metadata, kwargs
        )

    def _model_start(
        self,
        operation: str,
        serialized: dict[str, Any] | None,
        prompt: list[Any],
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> None:
        params = kwargs.get("invocation_params")
        if not isinstance(params, Mapping):
            params = None
        model = cl.request_model(metadata, params)
        provider = cl.provider_of(metadata, serialized, params)
        attributes: dict[str, Any] = {sc.GEN_AI_OPERATION_NAME: operation, sc.GEN_AI_PROVIDER_NAME: provider}
        if model is not None:
            attributes[sc.GEN_AI_REQUEST_MODEL] = model
        stream = cl.request_params(attributes, metadata, params)
        if stream:
            attributes[sc.GEN_AI_REQUEST_STREAM] = True
        name = f"{operation} {model}" if model else operation
        run_type = "chat_model" if operation == sc.OP_CHAT else "llm"
        state = self._open(run_id, parent_run_id, tags, metadata, run_type, name, _CLIENT, attributes)
        if state is None:
            return
        state.start_ns = time.monotonic_ns()
        state.stream = stream
        self._put(state, sc.GEN_AI_INPUT_MESSAGES, self._renderer.input_messages, prompt)
        if self._metrics is not None:
            state.metric_attrs = {
                sc.GEN_AI_OPERATION_NAME: operation,
                sc.GEN_AI_PROVIDER_NAME: provider,
            }
            if model is not None:
                state.metric_attrs[sc.GEN_AI_REQUEST_MODEL] = model

    @_guard.guarded("handler.on_llm_new_token")
    def on_llm_new_token(self, token: Any, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        """Note the first chunk's time and any usage a chunk carries; no span event per token."""
        state = self._registry.get(run_id)
        if state is None:
            return
        if not state.first_chunk_ns:
            state.first_chunk_ns = time.monotonic_ns()
            state.stream = True
        if chunk is not None:
            usage = chunk_usage(chunk)
            if usage is not None:
                state.chunk_usage = add(state.chunk_usage, usage)

    @_guard.guarded("handler.on_llm_end")
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """End a model span with response facts, token usage (rolled up to the root) and output."""
        state = self._finish(run_id)
        if state is None:
            return
        usage = usage_of(response, state.chunk_usage)
        info = response_info(response)
        attributes: dict[str, Any] = {}
        if info.model is not None:
            attributes[sc.GEN_AI_RESPONSE_MODEL] = info.model
        if info.response_id is not None:
            attributes[sc.GEN_AI_RESPONSE_ID] = info.response_id
        if info.finish_reasons:
            attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = info.finish_reasons
        if state.stream:
            attributes[sc.GEN_AI_REQUEST_STREAM] = True
        if state.first_chunk_ns:
            attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (state.first_chunk_ns - state.start_ns) / 1e9
        if usage is not None:
            _usage_attributes(attributes, usage)
            self._registry.add_usage(state, usage)
        state.span.set_attributes(attributes)
        if self._capture or self._journaling():
            self._put(state, sc.GEN_AI_OUTPUT_MESSAGES, self._renderer.output_messages, _outputs(response))
        self._end(state)
        if state.metric_attrs is not None and self._metrics is not None:
            if info.model is not None:
                state.metric_attrs[sc.GEN_AI_RESPONSE_MODEL] = info.model
            self._record_metrics(state, usage, None)

    def _record_metrics(self, state: RunState, usage: Usage | None, error_type: str | None) -> None:
        assert self._metrics is not None and state.metric_attrs is not None
        attrs = state.metric_attrs
        if error_type is not None:
            attrs[sc.ERROR_TYPE] = error_type
        now = time.monotonic_ns()
        ttfc = (state.first_chunk_ns - state.start_ns) / 1e9 if state.first_chunk_ns else None
        self._metrics.record(attrs, (now - state.start_ns) / 1e9, usage, ttfc)

    @_guard.guarded("handler.on_llm_error")
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """End a model span with an error."""
        self._error(run_id, error)

    # -- tools -----------------------------------------------------------------------------------
    @_guard.guarded("handler.on_tool_start")
    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start an ``execute_tool {name}`` span."""
        name = cl.run_name(serialized, kwargs, "tool")
        attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
            sc.GEN_AI_TOOL_NAME: name,
            sc.GEN_AI_TOOL_TYPE: "function",
        }
        call_id = kwargs.get("tool_call_id")
        if isinstance(call_id, str) and call_id:
            attributes[sc.GEN_AI_TOOL_CALL_ID] = call_id
        args = snapshot(inputs) if inputs is not None else input_str
        state = self._open(
            run_id,
            parent_run_id,
            tags,
            metadata,
            "tool",
            f"{sc.OP_EXECUTE_TOOL} {name}",
            _INTERNAL,
            attributes,
        )
        if state is not None:
            self._put(state, sc.GEN_AI_TOOL_CALL_ARGUMENTS, self._renderer.value, args)

    @_guard.guarded("handler.on_tool_end")
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """End a tool span with its result (a tool message with status ``error`` marks an error)."""
        state = self._finish(run_id)
        if state is None:
            return
        self._put(state, sc.GEN_AI_TOOL_CALL_RESULT, self._renderer.value, output)
        if getattr(output, "status", None) == "error" and getattr(output, "type", None) == "tool":
            state.span.set_attribute(sc.ERROR_TYPE, "tool_error")
            state.span.set_status(Status(StatusCode.ERROR, "tool returned an error"))
        self._end(state)

    @_guard.guarded("handler.on_tool_error")
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """End a tool span with an error."""
        self._error(run_id, error)

    # -- retrievers ------------------------------------------------------------------------------
    @_guard.guarded("handler.on_retriever_start")
    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start a ``retrieval {name}`` span."""
        name = cl.run_name(serialized, kwargs, "retriever")
        attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_RETRIEVAL,
            sc.GEN_AI_DATA_SOURCE_ID: name,
        }
        state = self._open(
            run_id,
            parent_run_id,
            tags,
            metadata,
            "retriever",
            f"{sc.OP_RETRIEVAL} {name}",
            _INTERNAL,
            attributes,
        )
        if state is not None:
            self._put(state, _content.KEY_RETRIEVAL_QUERY, self._renderer.value, query)

    @_guard.guarded("handler.on_retriever_end")
    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, **kwargs: Any) -> None:
        """End a retriever span with the document count and a documents preview."""
        state = self._finish(run_id)
        if state is None:
            return
        docs = list(documents) if isinstance(documents, (list, tuple)) else []
        state.span.set_attribute(sc.RJ_RETRIEVER_DOCUMENT_COUNT, len(docs))
        self._put(state, _content.KEY_RETRIEVAL_DOCUMENTS, self._renderer.json, docs)
        self._end(state)

    @_guard.guarded("handler.on_retriever_error")
    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """End a retriever span with an error."""
        self._error(run_id, error)

    # -- custom events ---------------------------------------------------------------------------
    @_guard.guarded("handler.on_custom_event")
    def on_custom_event(
        self, name: str, data: Any, *, run_id: UUID, tags: list[str] | None = None, **kwargs: Any
    ) -> None:
        """Add span event ``runjournal.custom.<name>`` to the run's (nearest kept) span."""
        state = self._registry.get(run_id)
        if state is None:
            return
        target = state.kept
        when = time.time_ns()
        event_name = f"{sc.EVENT_CUSTOM_PREFIX}{name}"
        if self._capture:
            target.span.add_event(event_name, {sc.RJ_CUSTOM_DATA: self._renderer.json(data)}, when)
            return
        target.span.add_event(event_name, None, when)
        if self._journaling():
            events = self._side_content(target).setdefault(_content.KEY_CUSTOM_EVENTS, [])
            events.append((name, when, functools.partial(self._renderer.json, snapshot(data))))


def _usage_attributes(attributes: dict[str, Any], usage: Usage) -> None:
    if usage.input_tokens is not None:
        attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
    if usage.output_tokens is not None:
        attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
    if usage.cache_read_tokens is not None:
        attributes[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
    if usage.cache_write_tokens is not None:
        attributes[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = usage.cache_write_tokens
    if usage.reasoning_tokens is not None:
        attributes[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens


def _outputs(response: Any) -> list[tuple[Any, str | None]]:
    """``(message-or-text, finish_reason)`` of each prompt's first generation (references only)."""
    out: list[tuple[Any, str | None]] = []
    gens = getattr(response, "generations", None)
    if not isinstance(gens, list):
        return out
    for per_prompt in gens:
        if not isinstance(per_prompt, list) or not per_prompt:
            continue
        gen = per_prompt[0]
        message = getattr(gen, "message", None)
        info = getattr(gen, "generation_info", None)
        finish = info.get("finish_reason") if isinstance(info, Mapping) else None
        if message is not None:
            if finish is None:
                meta = getattr(message, "response_metadata", None)
                finish = meta.get("finish_reason") if isinstance(meta, Mapping) else None
            out.append((message, finish if isinstance(finish, str) else None))
        else:
            text = getattr(gen, "text", None)
            out.append((text if isinstance(text, str) else "", finish if isinstance(finish, str) else None))
    return out


def _last(outputs: Any) -> Any:
    """What a run's output rendering needs: the last message of a ``messages`` list, else the output."""
    if isinstance(outputs, Mapping):
        messages = outputs.get("messages")
        if isinstance(messages, list) and messages:
            return {"messages": [messages[-1]]}
        return dict(outputs)
    return snapshot(outputs)


def _interrupt_values(interrupts: Any) -> Any:
    if isinstance(interrupts, (list, tuple)):
        return [getattr(i, "value", i) for i in interrupts]
    return getattr(interrupts, "value", interrupts)
