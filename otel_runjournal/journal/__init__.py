"""Spans → rows: the ``SpanExporter`` that turns finished spans into RunEvents, run summaries and span rows.

``exporter`` (the SDK-facing exporter) → ``assembler`` (holds a run's spans until its root ends) →
``spanread`` / ``mapping`` (one span → events, pure) → ``runwrite`` (a run's events, summary and spans
as one write). ``genai_json`` reads GenAI message JSON. Rows go to any :mod:`otel_runjournal.stores`
store; nothing here imports ``otel_runjournal.tracing``.
"""
