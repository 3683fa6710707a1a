"""GenAI client metrics (semconv): operation duration, token usage, time to first chunk.

Built only when a ``MeterProvider`` is given or the global one is an SDK provider, so an application
without metrics pays nothing.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics

from .. import semconv as sc
from .usage import Usage

# bucket boundaries the GenAI conventions recommend
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


class GenAIMetrics:
    """The three GenAI client histograms on one meter."""

    __slots__ = ("_duration", "_tokens", "_ttfc")

    def __init__(self, meter_provider: Any) -> None:
        meter = meter_provider.get_meter(sc.INSTRUMENTATION_NAME, schema_url=sc.SCHEMA_URL)
        self._duration = meter.create_histogram(
            sc.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            sc.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self._ttfc = meter.create_histogram(
            sc.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )

    def record(
        self,
        attributes: dict[str, Any],
        duration_s: float,
        usage: Usage | None,
        ttfc_s: float | None,
    ) -> None:
        """Record one finished model call (``attributes`` carry ``error.type`` when it failed)."""
        self._duration.record(duration_s, attributes)
        if ttfc_s is not None:
            self._ttfc.record(ttfc_s, attributes)
        if usage is not None:
            if usage.input_tokens is not None:
                self._tokens.record(usage.input_tokens, {**attributes, sc.GEN_AI_TOKEN_TYPE: "input"})
            if usage.output_tokens is not None:
                self._tokens.record(usage.output_tokens, {**attributes, sc.GEN_AI_TOKEN_TYPE: "output"})


def build(meter_provider: Any | None) -> GenAIMetrics | None:
    """Metrics on ``meter_provider``, else on the global provider when it is an SDK one, else ``None``."""
    if meter_provider is None:
        try:
            from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
        except ImportError:  # pragma: no cover - the SDK is a dependency
            return None
        meter_provider = metrics.get_meter_provider()
        if not isinstance(meter_provider, SdkMeterProvider):
            return None
    return GenAIMetrics(meter_provider)
