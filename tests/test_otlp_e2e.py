"""Spans leave over real OTLP (gRPC and HTTP) to a receiving process on loopback and decode intact."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from otlp_receiver import ReceivedSpan, ReceiverProcess

from otel_runjournal import semconv as sc
from otel_runjournal.demo.agent import build_agent
from otel_runjournal.tracing.handler import RunJournalCallbackHandler

PROTOCOLS = ["grpc", "http/protobuf"]


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverProcess]:
    """One OTLP receiver process (gRPC + HTTP) for the module."""
    with ReceiverProcess(tmp_path_factory.mktemp("otlp")) as rx:
        yield rx


def _exporter(receiver: ReceiverProcess, protocol: str) -> SpanExporter:
    if protocol == "grpc":
        return GrpcExporter(endpoint=receiver.grpc_endpoint, insecure=True)
    return HttpExporter(endpoint=f"{receiver.http_endpoint}/v1/traces")


def _provider(receiver: ReceiverProcess, protocol: str, service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(_exporter(receiver, protocol)))
    return provider


def _of_service(spans: list[ReceivedSpan], service: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.resource.get("service.name") == service]


def _wait(receiver: ReceiverProcess, service: str, count: int) -> list[ReceivedSpan]:
    deadline = time.monotonic() + 30
    while len(found := _of_service(receiver.spans(), service)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_agent_run_arrives(receiver: ReceiverProcess, protocol: str) -> None:
    """A traced demo agent run (subagent, failing tool, middleware) arrives as one well-formed trace."""
    service = f"agent-{protocol}"
    provider = _provider(receiver, protocol, service)
    handler = RunJournalCallbackHandler(tracer_provider=provider)
    agent = build_agent()
    agent.invoke({"messages": [("user", "weather in Paris?")]}, {"callbacks": [handler]})
    handler.shutdown()
    provider.shutdown()
    spans = _wait(receiver, service, 8)
    names = [s.name for s in spans]
    roots = [s for s in spans if s.parent_span_id is None]
    assert [r.name for r in roots] == ["invoke_agent research_assistant"]
    by_id = {s.span_id: s for s in spans}
    for s in spans:
        assert s.trace_id == roots[0].trace_id
        assert s.parent_span_id is None or s.parent_span_id in by_id, f"{s.name} has a dangling parent"
    assert "execute_tool lookup_order" in names
    assert "invoke_agent researcher" in names
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert chats and all(s.kind == 3 for s in chats)
    assert all(s.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0 for s in chats)
    assert all(s.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] > 0 for s in chats)
    failing = next(s for s in spans if s.name == "execute_tool lookup_order")
    assert failing.status_code == 2  # STATUS_CODE_ERROR
    assert sc.EVENT_EXCEPTION in failing.events
    callers = {s.attributes.get(sc.RJ_CALLER) for s in chats}
    assert {"lead_agent", "subagent:researcher", "middleware:summarization"} <= callers
    assert roots[0].attributes[sc.RJ_USAGE_TOTAL_TOKENS] == sum(
        s.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] + s.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS]
        for s in chats
    )
    for s in spans:  # content stays off the wire by default
        assert not set(sc.CONTENT_ATTRIBUTES) & set(s.attributes), s.name
