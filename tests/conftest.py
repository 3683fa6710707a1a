"""Shared test set-up: internal telemetry errors fail loudly; real SDK providers, never the global one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_runjournal import guard as _guard

_guard.RAISE_INTERNAL_ERRORS = True


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    """An in-memory exporter collecting finished spans."""
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """A real SDK provider (not the global one) exporting synchronously into ``span_exporter``."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    yield provider
    provider.shutdown()
