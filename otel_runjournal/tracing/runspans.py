"""The span plumbing every family of callbacks shares: open a run's span under its parent, put content,
end it (a root with its token roll-up), fail it, and end what a root leaves behind.

Parents come from the run registry by ``parent_run_id`` (never from the current OTel context, so
concurrent runs keep one tree each); root runs take the current OTel context as parent, so they nest
under the application's own request span. While a run's step runs, its span is the current span
(:mod:`.current`), so spans the step's code opens nest under it.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import content as _content
from .. import semconv as sc
from ..pricing import Pricer
from ..records import caller_roll_up
from . import classify as cl
from .callcontext import calling_middleware, thread_of_current_config
from .current import activate, deactivate
from .metrics import GenAIMetrics
from .registry import RootState, RunRegistry, RunState
from .runsummary import OnRunEnd, deliver, run_name
from .serialize import Renderer, snapshot
from .usage import Usage


class RunSpans:
    """Span plumbing over a :class:`RunRegistry`; the handler's callback families build on it."""

    _tracer: trace.Tracer
    _registry: RunRegistry
    _renderer: Renderer
    _capture: bool
    _side: bool | None
    _keep_all: bool
    _metrics: GenAIMetrics | None
    _on_run_end: OnRunEnd | None
    _pricer: Pricer | None

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
        *,
        model_call: bool = False,
    ) -> RunState | None:
        """Start a (non-chain) run's span under its parent, or as a root."""
        parent = self._registry.get(parent_run_id) if parent_run_id is not None else None
        if parent is None:
            root, caller = self._new_root(run_id, tags, metadata)
            attributes.update(self._common(root, caller, run_type))
            attributes[sc.RJ_IS_ROOT] = True
            span = root.span = self._tracer.start_span(name, None, kind, attributes)
            root.name = run_name(name)
            state = RunState(span, root, None, caller, is_root=True)
            state.tagged = cl.tag_caller(tags) is not None
        else:
            root = parent.root
            if root.thread_from_config:
                self._thread_from_config(parent)
            caller, tagged = self._caller_of(parent, tags, metadata, model_call=model_call)
            attributes.update(self._common(root, caller, run_type))
            span = self._tracer.start_span(name, self._ctx(parent.kept), kind, attributes)
            state = RunState(span, root, None, caller, subagents=parent.subagents)
            state.agent, state.tagged = parent.agent, tagged
        if not self._registry.add(run_id, state):
            span.end()  # duplicate start: the first span stays authoritative
            return None
        state.activation = activate(span)
        return state

    @staticmethod
    def _caller_of(
        parent: RunState, tags: list[str] | None, metadata: dict[str, Any] | None, *, model_call: bool
    ) -> tuple[str, bool]:
        """``(caller, from a tag)`` of a child run: the rules in :mod:`.classify` but nested agents
        (chains only, see ``ChainCallbacks``)."""
        if tags:
            tag = cl.tag_caller(tags)
            if tag is not None:
                return tag, True
        caller = parent.caller
        if not metadata or cl.blocks_inference(caller, parent.tagged):  # rule 2: tags decide
            return caller, parent.tagged
        if caller.startswith(sc.CALLER_SUBAGENT_PREFIX):
            return caller, False  # inside a nested agent all is the subagent's, its middleware too
        # every callback of every run comes here: the common case (no marker, an ordinary node) is
        # two dict look-ups and one suffix test
        middleware = cl.middleware_of_metadata(metadata) if "lc_source" in metadata else None
        if middleware is None:
            node = metadata.get("langgraph_node")
            if type(node) is str:
                if node.endswith(cl.MIDDLEWARE_NODE_SUFFIXES):
                    middleware = cl.middleware_of_node(node)
                elif model_call and node in cl.AGENT_NODES:
                    middleware = calling_middleware()
        if middleware is not None:
            return sc.CALLER_MIDDLEWARE_PREFIX + middleware, False
        return caller, parent.tagged

    def _thread_from_config(self, parent: RunState) -> None:
        """Item of LangChain's config that callbacks never see: ``configurable.thread_id`` of a plain
        runnable (LangGraph copies it into metadata; others do not). The root's children run with its
        config as the current one, so the first child reads it there and fixes the root's thread."""
        root = parent.root
        root.thread_from_config = False
        thread = thread_of_current_config()
        if thread is None:
            return
        root.thread_id = thread
        if root.span is not None:
            root.span.set_attributes({sc.RJ_THREAD_ID: thread, sc.GEN_AI_CONVERSATION_ID: thread})

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
        root = RootState(run_key, thread_id if isinstance(thread_id, str) and thread_id else run_key)
        root.thread_from_config = root.thread_id is run_key  # no thread in metadata: look in the config
        return root, cl.caller_of(tags, sc.CALLER_LEAD_AGENT)

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

    @staticmethod
    def _close(state: RunState) -> None:
        """End the run's span, handing its content to the journal first (the end may export it), and
        stop it being the current span."""
        if state.content is not None:
            _content.put(state.span, state.content)
        state.span.end()
        if state.activation is not None:
            deactivate(state.activation)

    def _end(self, state: RunState) -> None:
        """End the run's span, a root with its token roll-up."""
        if state.is_root:
            self._roll_up(state)
            self._close(state)
            self._root_done(state)
        else:
            self._close(state)

    def _root_done(self, state: RunState) -> None:
        """After a root's span ended: hand the application the run's summary (``on_run_end``)."""
        if self._on_run_end is not None:
            deliver(self._on_run_end, state.root, state.span, self._pricer)

    def _end_leftovers(self, root: RootState) -> None:
        leftovers, root.leftovers = root.leftovers, []
        for child in leftovers:
            if child.span is not None:
                child.span.set_attribute(sc.RJ_ABANDONED, True)
                self._close(child)

    def _abandon_root(self, state: RunState) -> None:
        self._end_leftovers(state.root)
        state.span.set_attribute(sc.RJ_ABANDONED, True)
        self._roll_up(state)
        self._close(state)
        self._root_done(state)

    def _roll_up(self, state: RunState) -> None:
        root = state.root
        by_caller = dict(root.by_caller)
        lead, sub, middleware = caller_roll_up(by_caller)

        state.span.set_attributes(
            {
                sc.RJ_USAGE_INPUT_TOKENS: root.input_tokens,
                sc.RJ_USAGE_OUTPUT_TOKENS: root.output_tokens,
                sc.RJ_USAGE_TOTAL_TOKENS: root.total_tokens,
                sc.RJ_USAGE_CACHED_INPUT_TOKENS: root.cache_read_tokens,
                sc.RJ_USAGE_REASONING_TOKENS: root.reasoning_tokens,
                sc.RJ_LLM_CALL_COUNT: root.llm_calls,
                sc.RJ_SPAN_COUNT: root.span_count,
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

    def _put_parsed(
        self, state: RunState, key: str, render: Callable[[Any], tuple[Any, str]], value: Any
    ) -> None:
        """:meth:`_put` of a value whose rendering also gives its parsed JSON (the journal reads that)."""
        if self._capture:
            state.span.set_attribute(key, render(value)[1])
        elif self._journaling():
            self._side_content(state)[key] = _content.Parsed(render, value)

    def _put_now(self, state: RunState, key: str, render: Callable[[Any], str], value: Any) -> str | None:
        """:meth:`_put`, rendered now (for ``on_run_end``, which reports the texts the journal will
        hold); ``None`` when no content is recorded."""
        if self._capture:
            text = render(value)
            state.span.set_attribute(key, text)
            return text
        if self._journaling():
            text = render(value)
            self._side_content(state)[key] = text
            return text
        return None

    def _custom_event(self, state: RunState, name: str, data: Any) -> None:
        """Add span event ``runjournal.custom.<name>`` (content: ``data``) to the nearest kept span."""
        target = state.kept
        when = time.time_ns()
        event_name = f"{sc.EVENT_CUSTOM_PREFIX}{name}"
        if self._capture:
            target.span.add_event(event_name, {sc.RJ_CUSTOM_DATA: self._renderer.json(data)}, when)
        else:
            target.span.add_event(event_name, None, when)
            if not self._journaling():
                return
            events = self._side_content(target).setdefault(_content.KEY_CUSTOM_EVENTS, [])
            events.append((name, when, functools.partial(self._renderer.json, snapshot(data))))
        if name == "summarization" and isinstance(data, Mapping) and isinstance(data.get("summary"), str):
            state.root.summaries += 1  # the journal's summary message

    def _error(self, run_id: UUID, error: BaseException) -> None:
        state = self._registry.finish(run_id)
        if state is None:
            return
        control_flow, interrupt = cl.control_flow(error)
        if state.is_root:
            self._end_leftovers(state.root)
        if not control_flow:
            if state.is_model:
                self._registry.add_failed_call(state)
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
            if interrupt:  # e.g. a tool that asked a human: it returned nothing
                state.span.set_attribute(sc.RJ_INTERRUPTED, True)
                if error.args:
                    values = _interrupt_values(error.args[0])
                    self._put(state, _content.KEY_INTERRUPT_VALUE, self._renderer.json, values)
            self._close(state)

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
            self._put(state, sc.GEN_AI_OUTPUT_MESSAGES, self._renderer.run_output, last_output(outputs))
        self._roll_up(state)
        self._close(state)
        self._root_done(state)

    def _record_metrics(self, state: RunState, usage: Usage | None, error_type: str | None) -> None:
        assert self._metrics is not None and state.metric_attrs is not None
        attrs = state.metric_attrs
        if error_type is not None:
            attrs[sc.ERROR_TYPE] = error_type
        now = time.monotonic_ns()
        ttfc = (state.first_chunk_ns - state.start_ns) / 1e9 if state.first_chunk_ns else None
        self._metrics.record(attrs, (now - state.start_ns) / 1e9, usage, ttfc)


def last_output(outputs: Any) -> Any:
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
