"""The public surface: pinned names, typed package, no environment read at import."""

from __future__ import annotations

import importlib.resources
import os
import subprocess
import sys

import otel_runjournal

EXPECTED = [
    "Configured",
    "DuckDBStore",
    "JsonlStore",
    "RunEvent",
    "RunJournalCallbackHandler",
    "RunJournalExporter",
    "RunJournalInstrumentor",
    "RunRecord",
    "RunStore",
    "RunWrite",
    "SpanRecord",
    "StoreError",
    "StoreLockedError",
    "TokenUsage",
    "configure",
    "instrument",
    "open_store",
    "uninstrument",
]


def test_all_is_pinned_and_sorted() -> None:
    """`__all__` is exactly the documented names, sorted, and each one resolves."""
    assert otel_runjournal.__all__ == EXPECTED
    for name in EXPECTED:
        assert getattr(otel_runjournal, name) is not None


def test_package_is_typed() -> None:
    """The package ships `py.typed` so users' type checkers read our hints."""
    assert importlib.resources.files("otel_runjournal").joinpath("py.typed").is_file()


def test_import_reads_no_environment(tmp_path) -> None:
    """Importing the package with hostile OTEL_RUNJOURNAL_* values neither fails nor creates a store."""
    env = {**os.environ, "OTEL_RUNJOURNAL_STORE": "mysql://nope", "OTEL_RUNJOURNAL_RUN_TTL": "x"}
    proc = subprocess.run(
        [sys.executable, "-c", "import otel_runjournal, otel_runjournal.cli.main"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []
