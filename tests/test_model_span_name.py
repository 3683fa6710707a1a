"""A model span is named by the model the response reports when the request did not say which."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import HumanMessage
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_runjournal import RunJournalCallbackHandler
from otel_runjournal import semconv as sc
from otel_runjournal.demo.model import ScriptedChatModel


class UnnamedRequestModel(ScriptedChatModel):
    """A provider model that names no model in its request (no ls_model_name, no model parameter)."""

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(ls_provider=self.provider, ls_model_type="chat")


def _chat_spans(exporter: InMemorySpanExporter) -> list[Any]:
    return [
        s for s in exporter.get_finished_spans() if s.attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_CHAT
    ]


def test_span_without_request_model_takes_the_response_model(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """No request model: the span is `chat <response model>`, not a bare `chat`."""
    handler = RunJournalCallbackHandler(tracer_provider)
    UnnamedRequestModel(model_name="resp-model-7").invoke([HumanMessage("hi")], {"callbacks": [handler]})
    (span,) = _chat_spans(span_exporter)
    assert sc.GEN_AI_REQUEST_MODEL not in span.attributes
    assert span.attributes[sc.GEN_AI_RESPONSE_MODEL] == "resp-model-7"
    assert span.name == "chat resp-model-7"


def test_span_with_request_model_keeps_its_name(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """A request model names the span, whatever the response reports."""
    handler = RunJournalCallbackHandler(tracer_provider)
    ScriptedChatModel(model_name="req-model").invoke([HumanMessage("hi")], {"callbacks": [handler]})
    (span,) = _chat_spans(span_exporter)
    assert span.attributes[sc.GEN_AI_REQUEST_MODEL] == "req-model"
    assert span.name == "chat req-model"
