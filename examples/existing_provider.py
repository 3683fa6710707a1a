"""Add the run journal to an application that already has its own OpenTelemetry setup.

    python examples/existing_provider.py
    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 python examples/existing_provider.py   # to a collector

The application's provider keeps exporting as before (OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set,
else the console, so you can see what leaves the process). ``configure(tracer_provider=...)`` only adds
the journal exporter: prompts and completions go to the local journal but are NOT put on the spans your
OTLP/console exporter sends, unless you opt in with ``capture_content=True`` (or
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``).
"""

from __future__ import annotations

import os

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from otel_runjournal import configure
from otel_runjournal.demo.agent import build_agent


def app_tracer_provider() -> TracerProvider:
    """What the application already had before adopting otel_runjournal."""
    exporter: SpanExporter
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "existing-app"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def main() -> None:
    provider = app_tracer_provider()
    journal = configure(tracer_provider=provider)  # adds the journal; changes nothing else on `provider`
    agent = build_agent(subagent=False, failing_tool=False, middleware=False)
    agent.invoke(
        {"messages": [("user", "Is it sunny in Paris?")]},
        {"callbacks": [journal.handler], "configurable": {"thread_id": "existing-app"}},
    )
    journal.force_flush()
    for message in journal.store.list_messages("existing-app", limit=10):
        print(f"journal message {message.seq}: {message.event_type}: {message.content}")
    journal.shutdown()  # flushes and closes the journal; the app's own exporters are the app's to shut down
    provider.shutdown()


if __name__ == "__main__":
    main()
