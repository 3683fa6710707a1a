"""Shared test set-up: internal telemetry errors fail loudly; real SDK providers, never the global one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_runjournal import guard as _guard

if TYPE_CHECKING:
    from pg_server import Schema

_guard.RAISE_INTERNAL_ERRORS = True


OTEL_ENV = (
    "OTEL_SERVICE_NAME",
    "OTEL_RUNJOURNAL_STORE",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
)
"""Variables a developer's shell may set that would change what configure() and the CLI do."""


@pytest.fixture
def clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of :data:`OTEL_ENV` set (for tests of defaults and of where things go)."""
    for name in OTEL_ENV:
        monkeypatch.delenv(name, raising=False)


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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the throw-away PostgreSQL server the session started (see ``pg_server``), if any."""
    import pg_server

    pg_server.stop_throwaway()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under CI (``CI=true``) a skipped test is a failure: the servers it needs are CI's to start."""
    if _in_ci():
        config.pluginmanager.register(_SkipIsFailure(), "skip-is-failure-in-ci")


class _SkipIsFailure:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        outcome = yield
        report = outcome.get_result()
        if report.skipped and not hasattr(report, "wasxfail"):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
            report.outcome = "failed"
            report.longrepr = f"skipped under CI=true (a skip in CI is a failure): {reason}"


# --- Under CI a whole-file skip at collection is a failure too (issue 22) ----------------------------------
# A module-level ``pytest.importorskip`` / ``pytest.skip(allow_module_level=True)`` happens while the file is
# collected, before any test report exists, so the run-time hook above never sees it.


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """Under ``CI=true`` a collector (a test file) that skips while being collected is reported as failed."""
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"{collector.nodeid}: skipped at collection under CI=true (a CI failure): {reason}"


@pytest.fixture
def schema() -> Iterator[Schema]:
    """A fresh schema on the tests' PostgreSQL server, dropped afterwards (``pg_server`` says what
    happens where there is no server)."""
    from pg_server import Schema

    made = Schema()
    yield made
    made.drop()
