"""Zero-code: `opentelemetry-instrument` + env vars journal a LangGraph app and export it over OTLP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from otlp_receiver import ReceiverProcess

pytest.importorskip("opentelemetry.distro", reason="zero-code needs opentelemetry-distro")

from otel_runjournal.stores.location import open_store

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "zero_code.py"
INSTRUMENT = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))


def _run_example(cwd: Path, **otel_env: str) -> subprocess.CompletedProcess[str]:
    """``opentelemetry-instrument python examples/zero_code.py`` with only these OTEL_* variables (no
    metrics or logs exporters); it must exit 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none", **otel_env)
    assert INSTRUMENT is not None
    out = subprocess.run(
        [INSTRUMENT, sys.executable, str(EXAMPLE)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    return out


@pytest.mark.skipif(INSTRUMENT is None, reason="opentelemetry-instrument not installed")
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_zero_code_journals_and_exports(tmp_path: Path, protocol: str) -> None:
    """With only env vars, the unmodified app's run lands in the journal AND at the OTLP receiver."""
    store = tmp_path / "zero.duckdb"
    with ReceiverProcess(tmp_path / "otlp") as rx:
        out = _run_example(
            tmp_path,
            OTEL_SERVICE_NAME="zero-code-test",
            OTEL_TRACES_EXPORTER="otlp,runjournal",
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
            OTEL_EXPORTER_OTLP_ENDPOINT=rx.grpc_endpoint if protocol == "grpc" else rx.http_endpoint,
            OTEL_RUNJOURNAL_STORE=str(store),
        )
        assert "Paris" in out.stdout
        spans = rx.wait_for_spans(6)
    names = [s.name for s in spans]
    assert "invoke_agent research_assistant" in names
    assert len([n for n in names if n.startswith("chat ")]) == 3
    assert {s.resource["service.name"] for s in spans} == {"zero-code-test"}
    assert {s.transport for s in spans} == {"grpc" if protocol == "grpc" else "http"}
    journal = open_store(str(store))
    try:
        runs = journal.list_runs(thread_id="zero-code")
        assert [(r.status, r.llm_call_count) for r in runs] == [("success", 3)], (runs, out.stderr[-2000:])
        assert runs[0].trace_id == spans[0].trace_id  # the journal and the collector saw the same trace
        messages = journal.list_messages("zero-code")
        assert [m.event_type for m in messages][:1] == ["human_message"]
    finally:
        journal.close()


@pytest.mark.skipif(INSTRUMENT is None, reason="opentelemetry-instrument not installed")
def test_zero_code_exit_is_quiet_and_the_run_whole(tmp_path: Path) -> None:
    """The README's journal-only command: the process exits without a word on stderr about the journal
    (DuckDB refuses Python scans after its own atexit handler; the last flush must still succeed), and
    the run is in the journal, complete."""
    store = tmp_path / "zero.duckdb"
    out = _run_example(
        tmp_path,
        OTEL_SERVICE_NAME="zero-code-quiet",
        OTEL_TRACES_EXPORTER="runjournal",
        OTEL_RUNJOURNAL_STORE=str(store),
    )
    assert "RunJournalExporter" not in out.stderr and "failed" not in out.stderr.lower(), out.stderr
    journal = open_store(str(store))
    try:
        runs = journal.list_runs(thread_id="zero-code")
        assert [(r.status, r.llm_call_count) for r in runs] == [("success", 3)]
        assert len(journal.list_spans(runs[0].run_id)) >= 6
    finally:
        journal.close()
