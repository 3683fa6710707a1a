"""Zero-code: this app never imports otel_runjournal's API; ``opentelemetry-instrument`` wires it all.

    pip install 'otel-runjournal[demo,zero-code]'     # from a clone: pip install -e '.[demo,zero-code]'
    OTEL_SERVICE_NAME=zero-code-app OTEL_TRACES_EXPORTER=runjournal \
    OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none OTEL_RUNJOURNAL_STORE=./runjournal.duckdb \
      opentelemetry-instrument python examples/zero_code.py

``OTEL_TRACES_EXPORTER=runjournal`` loads the ``runjournal`` exporter (an ``opentelemetry_traces_exporter``
entry point) into the SDK provider; the ``langchain_runjournal`` ``opentelemetry_instrumentor`` entry
point attaches the callback handler to every LangChain run. Then ``otel-runjournal runs`` lists the run.
To also send the trace to a collector or Jaeger, say ``OTEL_TRACES_EXPORTER=otlp,runjournal`` and
``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318`` — only
where something listens there (otherwise the OTLP exporter retries for seconds at exit and logs it).
"""

from __future__ import annotations

from otel_runjournal.demo.agent import build_agent  # stands in for your own LangGraph app


def main() -> None:
    agent = build_agent(subagent=False, failing_tool=False, middleware=False)
    result = agent.invoke(
        {"messages": [("user", "What's the weather in Paris?")]},
        {"configurable": {"thread_id": "zero-code"}},
    )
    print(result["messages"][-1].content)


if __name__ == "__main__":
    main()
