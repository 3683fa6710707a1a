"""Tool, retriever and custom-event callbacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import content as _content
from .. import guard as _guard
from .. import semconv as sc
from . import classify as cl
from .runspans import RunSpans
from .serialize import snapshot

_INTERNAL = SpanKind.INTERNAL


class ToolCallbacks(RunSpans):
    """``on_tool_*`` (``execute_tool {name}``), ``on_retriever_*`` (``retrieval``), ``on_custom_event``."""

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
            state.tool_name = name
            self._put_parsed(state, sc.GEN_AI_TOOL_CALL_ARGUMENTS, self._renderer.value_data, args)

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

    @_guard.guarded("handler.on_custom_event")
    def on_custom_event(
        self, name: str, data: Any, *, run_id: UUID, tags: list[str] | None = None, **kwargs: Any
    ) -> None:
        """Add span event ``runjournal.custom.<name>`` to the run's (nearest kept) span."""
        state = self._registry.get(run_id)
        if state is not None:
            self._custom_event(state, name, data)
