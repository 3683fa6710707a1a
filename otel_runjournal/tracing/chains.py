"""Chain callbacks: roots (``invoke_agent`` / ``invoke_workflow``), subagents, graph nodes and chains."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from opentelemetry.trace import SpanKind

from .. import guard as _guard
from .. import semconv as sc
from . import classify as cl
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
                self._put(state, sc.GEN_AI_OUTPUT_MESSAGES, self._renderer.run_output, last_output(outputs))
            self._close(state)

    @_guard.guarded("handler.on_chain_error")
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """End a chain span with an error, or as interrupted for LangGraph control flow."""
        self._error(run_id, error)
