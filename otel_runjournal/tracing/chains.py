"""Chain callbacks: roots (``invoke_agent`` / ``invoke_workflow``), subagents, graph nodes and chains."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from opentelemetry.trace import SpanKind

from .. import content as _content
from .. import genai_json as gj
from .. import guard as _guard
from .. import semconv as sc
from . import classify as cl
from .current import activate
from .registry import RunState
from .runspans import RunSpans, last_output
from .serialize import snapshot

_INTERNAL = SpanKind.INTERNAL
_INTERRUPT_KEY = "__interrupt__"


class ChainCallbacks(RunSpans):
    """``on_chain_*``: one span per kept chain run; plumbing runs are dropped unless verbosity is ``all``."""

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
            self._root_start(name, inputs, run_id, tags, metadata, run_type)
            return
        root = parent.root
        if root.thread_from_config:
            self._thread_from_config(parent)
        own = cl.subagent_tags(tags) if tags else ()
        subagent = cl.new_subagent(own, parent.subagents) if own else None
        agent = parent.agent
        if subagent is not None:
            caller, tagged = cl.caller_of(tags, parent.caller), True
        else:
            caller, tagged = self._caller_of(parent, tags, metadata, model_call=False)
            if not tagged and metadata:
                named = metadata.get("lc_agent_name")
                if (named is not None and named != agent) or parent.tool_name is not None:
                    nested = cl.nested_agent(name, tags, metadata, agent, parent.tool_name)
                    if nested is not None:  # an agent graph running inside this run: a subagent
                        subagent, caller, agent = nested, sc.CALLER_SUBAGENT_PREFIX + nested, nested
                if agent is None and subagent is None and isinstance(named, str) and named:
                    agent = named  # a plain workflow's first agent: the lead, enclosing what it runs
        graph_node = cl.has_graph_step(tags)
        subagents = own or parent.subagents
        if subagent is not None:
            attributes = self._common(root, caller, run_type)
            attributes[sc.GEN_AI_OPERATION_NAME] = sc.OP_INVOKE_AGENT
            attributes[sc.GEN_AI_AGENT_NAME] = subagent
            span: Any = self._tracer.start_span(
                f"{sc.OP_INVOKE_AGENT} {subagent}", self._ctx(parent.kept), _INTERNAL, attributes
            )
            kept = None
        elif not self._keep_all and cl.is_plumbing(name, tags, parent.graph_node):
            span, kept = None, parent.kept
        else:
            attributes = self._common(root, caller, run_type)
            span, kept = self._tracer.start_span(name, self._ctx(parent.kept), _INTERNAL, attributes), None
        state = RunState(span, root, kept, caller, graph_node=graph_node, subagents=subagents)
        state.agent, state.tagged = agent, tagged
        if (
            caller.startswith(sc.CALLER_MIDDLEWARE_PREFIX)
            and metadata
            and metadata.get("langgraph_node") == name
        ):
            state.node_messages = _message_count(inputs)  # a middleware's node: it may summarise
        if not self._registry.add(run_id, state):
            if span is not None:
                span.end()
            return
        if span is not None:
            state.activation = activate(span)
        if subagent is not None:
            state.is_agent = True
            self._put_parsed(state, sc.GEN_AI_INPUT_MESSAGES, self._renderer.run_input_data, snapshot(inputs))

    def _root_start(
        self,
        name: str,
        inputs: Any,
        run_id: UUID,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        run_type: str,
    ) -> None:
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
            attributes[sc.GEN_AI_WORKFLOW_NAME] = name
            span_name = f"{sc.OP_INVOKE_WORKFLOW} {name}"
        resumed, resume = cl.resume_value(inputs)
        if resumed:
            attributes[sc.RJ_RESUMED] = True
        span = root.span = self._tracer.start_span(span_name, None, _INTERNAL, attributes)
        root.name = agent if agent is not None else name
        state = RunState(
            span,
            root,
            None,
            caller,
            is_root=True,
            graph_node=cl.has_graph_step(tags),
            subagents=cl.subagent_tags(tags),
        )
        state.agent = cl.agent_name_of(metadata) or agent  # an agent root encloses what it runs
        state.tagged = cl.tag_caller(tags) is not None
        if not self._registry.add(run_id, state):
            span.end()
            return
        state.activation = activate(span)
        if resumed:  # not a human message: the value the interrupted run is resumed with
            self._put(state, _content.KEY_RESUME_VALUE, self._renderer.json, snapshot(resume))
        elif self._on_run_end is not None:
            text = self._put_now(state, sc.GEN_AI_INPUT_MESSAGES, self._renderer.run_input, snapshot(inputs))
            root.human_text = gj.human_text(text)
        else:
            self._put_parsed(state, sc.GEN_AI_INPUT_MESSAGES, self._renderer.run_input_data, snapshot(inputs))

    @_guard.guarded("handler.on_chain_end")
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """End a chain span; a root also gets its token roll-up and final output."""
        ending = self._registry.get(run_id)
        if ending is not None and ending.node_messages >= 0:
            self._summary_of_node(ending, outputs)
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
                self._put(state, sc.GEN_AI_OUTPUT_MESSAGES, self._renderer.run_output, last_output(outputs))
            self._close(state)

    @_guard.guarded("handler.on_chain_error")
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """End a chain span with an error, or as interrupted for LangGraph control flow."""
        self._error(run_id, error)

    def _summary_of_node(self, state: RunState, outputs: Any) -> None:
        """A middleware node that replaced the conversation by a summary (LangChain 1.x
        ``SummarizationMiddleware``): journal it as the ``summarization`` event with its ``summary``."""
        messages = outputs.get("messages") if isinstance(outputs, Mapping) else None
        if not isinstance(messages, list):
            return
        for index, message in enumerate(messages):
            extra = getattr(message, "additional_kwargs", None)
            if isinstance(extra, Mapping) and extra.get("lc_source") == "summarization":
                text = getattr(message, "content", None)
                if isinstance(text, str):
                    kept = len(messages) - index - 1  # the messages kept after the summary
                    replaced = max(state.node_messages - kept, 0)
                    self._custom_event(state, "summarization", {"summary": text, "replaced_count": replaced})
                return


def _message_count(inputs: Any) -> int:
    messages = inputs.get("messages") if isinstance(inputs, Mapping) else None
    return len(messages) if isinstance(messages, list) else 0
