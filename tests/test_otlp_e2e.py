"""Spans leave over real OTLP (gRPC and HTTP) to a receiving process on loopback and decode intact."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind
from otlp_receiver import ReceivedSpan, ReceiverProcess

from otel_runjournal import semconv as sc

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
def test_plain_sdk_spans_arrive(receiver: ReceiverProcess, protocol: str) -> None:
    """A parent/child pair from a plain SDK tracer arrives with names, parent link and usage attributes."""
    service = f"plain-{protocol}"
    provider = _provider(receiver, protocol, service)
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("invoke_agent demo") as root,
        tracer.start_as_current_span("chat m", kind=SpanKind.CLIENT) as chat,
    ):
        chat.set_attribute(sc.GEN_AI_USAGE_INPUT_TOKENS, 12)
        chat.set_attribute(sc.GEN_AI_RESPONSE_FINISH_REASONS, ["stop"])
    provider.shutdown()
    spans = {s.name: s for s in _wait(receiver, service, 2)}
    assert set(spans) == {"invoke_agent demo", "chat m"}
    assert spans["chat m"].parent_span_id == format(root.get_span_context().span_id, "016x")
    assert spans["chat m"].trace_id == spans["invoke_agent demo"].trace_id
    assert spans["chat m"].attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 12
    assert spans["chat m"].attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
    assert spans["chat m"].kind == 3  # SPAN_KIND_CLIENT
    assert {s.transport for s in spans.values()} == {"grpc" if protocol == "grpc" else "http"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_agent_run_arrives(receiver: ReceiverProcess, protocol: str) -> None:
    """A traced demo agent run (subagent, failing tool, middleware) arrives as one well-formed trace."""
    handler_mod = pytest.importorskip("otel_runjournal.tracing.handler", reason="handler not built yet")
    agent_mod = pytest.importorskip("otel_runjournal.demo.agent")
    service = f"agent-{protocol}"
    provider = _provider(receiver, protocol, service)
    handler = handler_mod.RunJournalCallbackHandler(tracer_provider=provider)
    agent = agent_mod.build_agent()
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


def test_receiver_routes_by_path(receiver: ReceiverProcess) -> None:
    """The HTTP receiver rejects a request to a path other than /v1/traces (it really routes by path)."""
    req = urllib.request.Request(
        f"{receiver.http_endpoint}/v1/logs",
        data=b"",
        headers={"Content-Type": "application/x-protobuf"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 404
