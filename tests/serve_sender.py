"""An app process for the serve tests: runs the offline demo agent N times, exporting spans over OTLP.

``python tests/serve_sender.py --endpoint E --protocol grpc|http/protobuf|http/json --runs N [--light]
[--capture-content] [--token T] [--thread-prefix P]`` prints one JSON line ``{"run_ids": [...]}``
after the provider has flushed. ``--light``: the agent without subagent / failing tool / middleware
(3 model calls + 2 tool calls). The SDK's own OTLP exporters are the senders (they retry retryable
answers with backoff).
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any


def make_exporter(protocol: str, endpoint: str, token: str | None, timeout: float = 30.0) -> Any:
    headers = {"authorization": f"Bearer {token}"} if token else None
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        return Grpc(endpoint=endpoint, insecure=True, headers=headers, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    return Http(endpoint=f"{endpoint}/v1/traces", headers=headers, timeout=timeout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--protocol", default="grpc")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--light", action="store_true")
    parser.add_argument("--capture-content", action="store_true")
    parser.add_argument("--token", default=None)
    parser.add_argument("--thread-prefix", default="t")
    parser.add_argument("--service", default="serve-sender")
    args = parser.parse_args()

    from langchain_core.messages import HumanMessage
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otel_runjournal import RunJournalCallbackHandler
    from otel_runjournal.demo.agent import build_agent

    provider = TracerProvider(resource=Resource.create({"service.name": args.service}))
    provider.add_span_processor(
        BatchSpanProcessor(make_exporter(args.protocol, args.endpoint, args.token), schedule_delay_millis=200)
    )
    handler = RunJournalCallbackHandler(provider, capture_content=args.capture_content or None)
    agent = build_agent(subagent=False, failing_tool=False, middleware=False) if args.light else build_agent()
    run_ids = []
    for i in range(args.runs):
        run_id = str(uuid.uuid4())
        run_ids.append(run_id)
        agent.invoke(
            {"messages": [HumanMessage(f"question {i}: weather in Paris?")]},
            {
                "callbacks": [handler],
                "run_id": uuid.UUID(run_id),
                "configurable": {"thread_id": f"{args.thread_prefix}-{i % 3}"},
            },
        )
    handler.shutdown()
    provider.shutdown()
    print(json.dumps({"run_ids": run_ids}), flush=True)


if __name__ == "__main__":
    main()
