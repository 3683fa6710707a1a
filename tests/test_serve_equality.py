"""The same runs journaled in-process and through ``serve`` (OTLP, same provider) give the same rows."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import serving
from serve_sender import make_exporter

from otel_runjournal import RunJournalCallbackHandler, RunJournalExporter, open_store
from otel_runjournal.records import RunEvent, RunRecord


def _rows(location: str) -> tuple[list[RunRecord], list[RunEvent], list[tuple[Any, ...]]]:
    store = open_store(location)
    try:
        runs = sorted(store.list_runs(limit=1000), key=lambda r: r.run_id)
        events = [e for r in runs for e in store.list_events(r.run_id, limit=1000)]
        spans = store.sql(  # type: ignore[attr-defined]
            "select trace_id, span_id, parent_span_id, run_id, name, kind, start_time, end_time, duration_ms,"
            " status_code, status_message, attributes, events, resource from spans order by span_id"
        )
        return runs, events, spans
    finally:
        store.close()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_in_process_and_served_rows_are_identical(tmp_path: Path, protocol: str) -> None:
    """With capture_content=True, every runs / run_events / spans row journaled through serve equals the
    in-process one (same spans, so even ids and timestamps agree): messages, tool args, custom events,
    errors, token roll-ups, seq order."""
    from langchain_core.messages import HumanMessage
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otel_runjournal.demo.agent import build_agent
    from otel_runjournal.demo.model import ScriptedChatModel, ScriptedModelError

    local, served = str(tmp_path / "local.duckdb"), str(tmp_path / "served.duckdb")
    with serving(served, tmp_path / "spool") as server:
        port = server.grpc_port if protocol == "grpc" else server.http_port
        provider = TracerProvider(resource=Resource.create({"service.name": "equality"}))
        provider.add_span_processor(BatchSpanProcessor(RunJournalExporter(local)))
        provider.add_span_processor(
            BatchSpanProcessor(make_exporter(protocol, f"http://127.0.0.1:{port}", None))
        )
        handler = RunJournalCallbackHandler(provider, capture_content=True)
        agent = build_agent()  # subagent, failing tool, summarization middleware + custom event
        for i in range(3):
            agent.invoke(
                {"messages": [HumanMessage(f"question {i}: weather in Paris?")]},
                {"callbacks": [handler], "run_id": uuid.uuid4(), "configurable": {"thread_id": "t1"}},
            )
        failing = build_agent(ScriptedChatModel(fail_on="[crash]"))
        with contextlib.suppress(ScriptedModelError):
            failing.invoke(
                {"messages": [HumanMessage("book a flight [crash]")]},
                {"callbacks": [handler], "configurable": {"thread_id": "t1"}},
            )
        handler.shutdown()
        provider.shutdown()
    local_rows, served_rows = _rows(local), _rows(served)
    runs, events, _ = served_rows
    assert len(runs) == 4 and {r.status for r in runs} == {"success", "error"}
    assert {e.event_type for e in events} >= {
        "human_message",
        "ai_message",
        "tool_start",
        "summary",
        "run_error",
    }
    assert any(e.content for e in events if e.event_type == "ai_message")  # content travelled on the spans
    assert served_rows[0] == local_rows[0]
    assert served_rows[1] == local_rows[1]
    assert served_rows[2] == local_rows[2]
