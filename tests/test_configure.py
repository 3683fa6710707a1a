"""configure(): builds or extends a provider, adds OTLP per arguments/env, wires once per store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import OTEL_ENV
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otlp_receiver import OtlpReceiver

from otel_runjournal import semconv as sc
from otel_runjournal.demo.agent import build_agent
from otel_runjournal.journal.exporter import RunJournalExporter
from otel_runjournal.stores.location import open_store
from otel_runjournal.wiring import Configured, configure, store_key

pytestmark = pytest.mark.usefixtures("clean_otel_env")


@pytest.fixture
def wire() -> Iterator[Callable[..., Configured]]:
    """configure() that never sets the global provider and is shut down after the test."""
    made: list[Configured] = []

    def _wire(*args: Any, **kwargs: Any) -> Configured:
        kwargs.setdefault("set_global", False)
        wired = configure(*args, **kwargs)
        made.append(wired)
        return wired

    yield _wire
    for wired in made:
        wired.shutdown()


def _run(handler: Any, thread_id: str = "t1", *, question: str = "weather in Paris?") -> None:
    agent = build_agent(subagent=False, failing_tool=False, middleware=False)
    agent.invoke(
        {"messages": [("user", question)]},
        {"callbacks": [handler], "configurable": {"thread_id": thread_id}},
    )


def _event_types(wired: Configured, thread_id: str = "t1") -> list[str]:
    wired.force_flush()
    runs = wired.store.list_runs(thread_id=thread_id)
    return [e.event_type for r in runs for e in wired.store.list_events(r.run_id, limit=1000)]


def test_builds_provider_with_journal(wire: Callable[..., Configured], tmp_path: Path) -> None:
    """Without a provider, configure builds one whose spans land in the journal, named by service_name."""
    wired = wire(tmp_path / "j.duckdb", service_name="svc-a")
    assert wired.owns_provider
    assert wired.tracer_provider.resource.attributes["service.name"] == "svc-a"
    assert wired.otlp_exporter is None
    _run(wired.handler)
    types = _event_types(wired)
    assert types[0] == "run_start" and types[-1] == "run_end"
    assert types.count("llm_end") == 3 and types.count("tool_end") == 2
    run = wired.store.list_runs(thread_id="t1")[0]
    assert run.status == "success" and run.total_tokens > 0


def test_service_name_precedence(
    wire: Callable[..., Configured], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """service.name: argument, then OTEL_SERVICE_NAME, then "otel-runjournal"."""
    assert (
        wire(tmp_path / "a.duckdb").tracer_provider.resource.attributes["service.name"] == "otel-runjournal"
    )
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    assert wire(tmp_path / "b.duckdb").tracer_provider.resource.attributes["service.name"] == "from-env"
    named = wire(tmp_path / "c.duckdb", service_name="from-arg")
    assert named.tracer_provider.resource.attributes["service.name"] == "from-arg"


def test_store_from_env(
    wire: Callable[..., Configured], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no store argument the journal goes to OTEL_RUNJOURNAL_STORE."""
    target = tmp_path / "env.duckdb"
    monkeypatch.setenv("OTEL_RUNJOURNAL_STORE", str(target))
    wired = wire()
    _run(wired.handler)
    assert "run_end" in _event_types(wired)
    assert target.exists()


def test_twice_reuses_wiring(wire: Callable[..., Configured], tmp_path: Path) -> None:
    """A second configure() for the same location (any spelling) returns the first; nothing doubles."""
    path = tmp_path / "j.duckdb"
    first = wire(path)
    assert wire(str(path)) is first
    assert wire(f"duckdb://{path}") is first
    _run(first.handler)
    assert _event_types(first).count("llm_end") == 3


def test_other_provider_for_wired_store_is_refused(wire: Callable[..., Configured], tmp_path: Path) -> None:
    """Re-wiring a journal that is already wired to another provider raises instead of double-exporting."""
    first = wire(tmp_path / "j.duckdb")
    with pytest.raises(ValueError, match="already wired"):
        configure(tmp_path / "j.duckdb", tracer_provider=TracerProvider())
    assert wire(tmp_path / "j.duckdb", tracer_provider=first.tracer_provider) is first


def test_after_shutdown_configure_rewires(wire: Callable[..., Configured], tmp_path: Path) -> None:
    """shutdown() is idempotent and frees the location for a fresh wiring."""
    first = wire(tmp_path / "j.duckdb")
    first.shutdown()
    first.shutdown()
    second = wire(tmp_path / "j.duckdb")
    assert second is not first
    _run(second.handler)
    assert "run_end" in _event_types(second)


def test_existing_provider_is_extended_not_changed(
    wire: Callable[..., Configured], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's provider keeps its resource and exporters, gains the journal, and no OTLP from env."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # must NOT be added
    app_exporter = InMemorySpanExporter()
    resource = Resource.create({"service.name": "the-app"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(app_exporter))
    wired = wire(tmp_path / "j.duckdb", tracer_provider=provider, service_name="ignored")
    assert wired.tracer_provider is provider and not wired.owns_provider
    assert wired.otlp_exporter is None
    assert provider.resource is resource
    _run(wired.handler)
    assert "run_end" in _event_types(wired)
    names = [s.name for s in app_exporter.get_finished_spans()]
    assert "invoke_agent research_assistant" in names and len(names) >= 6
    wired.shutdown()
    assert len(app_exporter.get_finished_spans()) == len(names)  # the app's processor still works...
    provider.get_tracer("x").start_span("after").end()
    assert len(app_exporter.get_finished_spans()) == len(names) + 1  # ...after our shutdown too


def test_existing_journal_exporter_is_reused(wire: Callable[..., Configured], tmp_path: Path) -> None:
    """A provider that already feeds a RunJournalExporter gets no second one (no double journal)."""
    store = open_store(str(tmp_path / "j.duckdb"))
    exporter = RunJournalExporter(store)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        wired = wire(tmp_path / "other.duckdb", tracer_provider=provider)
        assert wired.exporter is exporter and wired.store is store
        _run(wired.handler)
        assert _event_types(wired).count("llm_end") == 3
        assert not (tmp_path / "other.duckdb").exists()
    finally:
        provider.shutdown()
        store.close()


@pytest.mark.parametrize("capture", [None, True])
def test_content_reaches_otlp_only_on_opt_in(
    wire: Callable[..., Configured], tmp_path: Path, capture: bool | None
) -> None:
    """An app's OTLP exporter gets no content attributes by default, and gets them with capture_content=True;
    the journal records the messages either way."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    with OtlpReceiver() as rx:
        provider = TracerProvider()
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{rx.http_endpoint}/v1/traces"))
        )
        wired = wire(tmp_path / "j.duckdb", tracer_provider=provider, capture_content=capture)
        _run(wired.handler)
        spans = rx.wait_for_spans(6)
        provider.shutdown()
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert len(chats) == 3
    carried = {k for s in spans for k in s.attributes if k in sc.CONTENT_ATTRIBUTES}
    if capture:
        assert {sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES} <= carried
        assert "weather in Paris?" in chats[0].attributes[sc.GEN_AI_INPUT_MESSAGES]
    else:
        assert carried == set()
    wired.force_flush()
    messages = wired.store.list_messages("t1")
    assert messages[0].event_type == "human_message" and messages[0].content == "weather in Paris?"
    assert any(m.event_type == "ai_message" for m in messages)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_otlp_from_env(
    wire: Callable[..., Configured], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT + _PROTOCOL add an OTLP exporter of that protocol to a built provider."""
    with OtlpReceiver() as rx:
        endpoint = rx.grpc_endpoint if protocol == "grpc" else rx.http_endpoint
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        wired = wire(tmp_path / "j.duckdb", service_name="env-otlp")
        assert wired.otlp_exporter is not None
        _run(wired.handler)
        wired.force_flush()
        spans = rx.wait_for_spans(6)
    assert {s.transport for s in spans} == {"grpc" if protocol == "grpc" else "http"}
    assert {s.resource["service.name"] for s in spans} == {"env-otlp"}
    assert "invoke_agent research_assistant" in [s.name for s in spans]


def test_otlp_endpoint_argument_is_a_base_url(wire: Callable[..., Configured], tmp_path: Path) -> None:
    """otlp_endpoint="http://host:port" (like the env var) sends HTTP OTLP to /v1/traces there."""
    with OtlpReceiver() as rx:
        wired = wire(tmp_path / "j.duckdb", otlp_endpoint=rx.http_endpoint)
        _run(wired.handler)
        wired.force_flush()
        spans = rx.wait_for_spans(6)
    assert len([s for s in spans if s.name.startswith("chat ")]) == 3


def test_bad_protocol_is_rejected(tmp_path: Path) -> None:
    """An unknown otlp_protocol argument is a ValueError at configure time."""
    with pytest.raises(ValueError, match="otlp_protocol"):
        configure(tmp_path / "j.duckdb", otlp_protocol="carrier-pigeon", set_global=False)


def test_store_key_normalises_spellings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative, absolute and URL spellings of one file give one key; different stores differ."""
    monkeypatch.chdir(tmp_path)
    assert store_key("j.duckdb") == store_key(str(tmp_path / "j.duckdb")) == store_key("duckdb:j.duckdb")
    assert store_key("jsonl:///x") != store_key("/x.duckdb")
    assert store_key("jsonl:///x") == store_key("/x")


_EXIT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from otel_runjournal.wiring import configure
    from otel_runjournal.demo.agent import build_agent

    wired = configure(sys.argv[1], set_global={set_global})
    agent = build_agent(subagent=False, failing_tool=False, middleware=False)
    agent.invoke({{"messages": [("user", "hi")]}}, {{"callbacks": [wired.handler],
                  "configurable": {{"thread_id": "exit"}}}})
    print(json.dumps({{"global": trace.get_tracer_provider() is wired.tracer_provider}}))
    # no shutdown(): the atexit hook must flush the journal
    """
)


@pytest.mark.parametrize("set_global", [None, False])
def test_process_exit_flushes_and_global_rule(tmp_path: Path, set_global: bool | None) -> None:
    """At exit the journal is flushed without an explicit shutdown(); the built provider becomes global
    only when set_global is not False (and no global was set)."""
    path = tmp_path / "exit.duckdb"
    out = subprocess.run(
        [sys.executable, "-c", _EXIT_SCRIPT.format(set_global=set_global), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k not in OTEL_ENV},
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"global": set_global is None}
    store = open_store(str(path))
    try:
        runs = store.list_runs(thread_id="exit")
        assert [r.status for r in runs] == ["success"]
    finally:
        store.close()


@pytest.mark.parametrize("how", ["argument", "env"])
def test_otlp_only_to_serve_writes_no_local_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """configure(store=False, otlp_endpoint=serve) or OTEL_RUNJOURNAL_STORE=none: the app sends its runs
    to `serve`, which journals them (content too with capture_content=True); no local journal appears."""
    from serve_helpers import serving

    monkeypatch.chdir(tmp_path)
    served = str(tmp_path / "served" / "journal.duckdb")
    (tmp_path / "served").mkdir()
    with serving(served, tmp_path / "spool", settle=0.2) as server:
        endpoint = f"http://127.0.0.1:{server.http_port}"
        if how == "env":
            monkeypatch.setenv("OTEL_RUNJOURNAL_STORE", "none")
            wired = configure(otlp_endpoint=endpoint, capture_content=True, set_global=False)
        else:
            wired = configure(store=False, otlp_endpoint=endpoint, capture_content=True, set_global=False)
        try:
            assert wired.store is None and wired.exporter is None and wired.otlp_exporter is not None
            _run(wired.handler, "otlp-only")
            assert wired.force_flush()
        finally:
            wired.shutdown()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served", "spool"]  # nothing written locally
    journal = open_store(served)
    try:
        runs = journal.list_runs(thread_id="otlp-only")
        assert [(r.status, r.llm_call_count) for r in runs] == [("success", 3)]
        messages = journal.list_messages("otlp-only")
        assert messages[0].content == "weather in Paris?"
    finally:
        journal.close()


def test_no_journal_and_nowhere_to_send_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """store=False with no OTLP endpoint and no provider of the app's own: a one-line ValueError, no file."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="otlp_endpoint"):
        configure(store=False, set_global=False)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="no run journal"):
        open_store("none")


def test_no_journal_into_the_apps_provider(
    span_exporter: InMemorySpanExporter, tracer_provider: TracerProvider
) -> None:
    """store=False with the app's own provider: only the handler is wired; its exporters get the spans."""
    wired = configure(store=False, tracer_provider=tracer_provider)
    try:
        assert wired.store is None and wired.exporter is None
        _run(wired.handler)
        assert "invoke_agent research_assistant" in [s.name for s in span_exporter.get_finished_spans()]
    finally:
        wired.shutdown()
