"""The journal's BatchSpanProcessor: large exports (few store transactions), env still wins."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_runjournal.wiring import journal_span_processor


class _BatchSizes(SpanExporter):
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.sizes.append(len(spans))
        return SpanExportResult.SUCCESS


def _burst(count: int) -> list[int]:
    exporter = _BatchSizes()
    provider = TracerProvider()
    provider.add_span_processor(journal_span_processor(exporter))
    tracer = provider.get_tracer("t")
    for i in range(count):
        tracer.start_span(f"s{i}").end()
    provider.shutdown()
    return exporter.sizes


def test_burst_is_exported_whole_in_large_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """5000 spans ended at once all reach the exporter, in batches larger than the SDK's 512."""
    monkeypatch.delenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", raising=False)
    monkeypatch.delenv("OTEL_BSP_MAX_QUEUE_SIZE", raising=False)
    sizes = _burst(5000)
    assert sum(sizes) == 5000
    assert max(sizes) > 512


def test_environment_overrides_the_batch_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_BSP_MAX_EXPORT_BATCH_SIZE still decides the export size when set."""
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100")
    sizes = _burst(1000)
    assert sum(sizes) == 1000
    assert max(sizes) <= 100
