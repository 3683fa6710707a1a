"""Every tracer variant the benchmark compares: how to set it up, switch it on/off, flush and close it.

A variant yields a :class:`Session` holding the callbacks to pass to ``invoke`` (empty for
instrumentors, which patch LangChain globally), ``activate``/``deactivate`` (instrument/uninstrument
for the patching peers, nothing for the rest), ``flush`` (drain the span pipeline: its cost is part
of the variant's time) and a span counter. Every traced variant exports through a
``BatchSpanProcessor`` on its own SDK ``TracerProvider`` (never the global one).

Peers that patch globally (:data:`GLOBAL_PATCHERS`) are run by ``run.py`` in a subprocess of their
own, with the untraced baseline re-measured in that same process, so no wrapper they leave behind
can touch another variant.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

VARIANTS: tuple[str, ...] = (
    "untraced",
    "noop_handler",
    "bare_spans",
    "ours_duckdb",
    "ours_jsonl",
    "ours_otlp",
    "ours_memory",
    "openinference",
    "openllmetry",
    "openllmetry_nocontent",
)
LABELS: dict[str, str] = {
    "untraced": "untraced",
    "noop_handler": "no-op BaseCallbackHandler",
    "bare_spans": "reference: bare span-per-run handler",
    "ours_duckdb": "otel_runjournal + journal (DuckDB)",
    "ours_jsonl": "otel_runjournal + journal (JSONL)",
    "ours_otlp": "otel_runjournal + OTLP only",
    "ours_memory": "otel_runjournal + in-memory (like the peers)",
    "openinference": "OpenInference",
    "openllmetry": "OpenLLMetry (content on)",
    "openllmetry_nocontent": "OpenLLMetry (content off)",
}
GLOBAL_PATCHERS = frozenset({"openinference", "openllmetry", "openllmetry_nocontent"})
OURS = frozenset({"ours_duckdb", "ours_jsonl", "ours_otlp", "ours_memory"})


class SpanCounter(SpanProcessor):
    """Counts finished spans (one integer add per span: the same negligible cost for every variant)."""

    def __init__(self) -> None:
        self.count = 0

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        self.count += 1


class NoopHandler(BaseCallbackHandler):
    """A handler that does nothing: the cost of LangChain dispatching callbacks at all."""

    run_inline = True


class BareSpanHandler(BaseCallbackHandler):
    """Reference floor: one span per run, parent from ``parent_run_id``, no attributes, no content."""

    run_inline = True

    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer("bench.bare")
        self._spans: dict[Any, Any] = {}

    def _start(self, name: str, run_id: Any, parent_run_id: Any) -> None:
        from opentelemetry import trace

        parent = self._spans.get(parent_run_id)
        context = trace.set_span_in_context(parent) if parent is not None else None
        self._spans[run_id] = self._tracer.start_span(name, context=context)

    def _end(self, _result: Any, *, run_id: Any, **_: Any) -> None:
        span = self._spans.pop(run_id, None)
        if span is not None:
            span.end()

    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: Any, parent_run_id: Any = None, **kw: Any
    ) -> None:
        self._start(kw.get("name") or "chain", run_id, parent_run_id)

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: Any, parent_run_id: Any = None, **kw: Any
    ) -> None:
        self._start("chat", run_id, parent_run_id)

    def on_tool_start(
        self, serialized: Any, input_str: Any, *, run_id: Any, parent_run_id: Any = None, **kw: Any
    ) -> None:
        self._start(kw.get("name") or "tool", run_id, parent_run_id)

    on_chain_end = on_chain_error = on_llm_end = on_llm_error = on_tool_end = on_tool_error = _end  # type: ignore[assignment]


@dataclass
class Session:
    """One set-up variant."""

    name: str
    callbacks: list[BaseCallbackHandler] = field(default_factory=list)
    counter: SpanCounter = field(default_factory=SpanCounter)
    activate: Callable[[], None] = lambda: None
    deactivate: Callable[[], None] = lambda: None
    flush: Callable[[], None] = lambda: None
    info: dict[str, Any] = field(default_factory=dict)
    """Extra facts to report (e.g. the OTLP sink's span count)."""


def missing(name: str) -> str | None:
    """Why ``name`` cannot run here (a missing module), or None when it can."""
    needs = {
        "ours_duckdb": ["otel_runjournal.tracing.handler", "otel_runjournal.journal.exporter"],
        "ours_jsonl": ["otel_runjournal.tracing.handler", "otel_runjournal.journal.exporter"],
        "ours_otlp": ["otel_runjournal.tracing.handler", "opentelemetry.exporter.otlp.proto.http"],
        "ours_memory": ["otel_runjournal.tracing.handler"],
        "openinference": ["openinference.instrumentation.langchain"],
        "openllmetry": ["opentelemetry.instrumentation.langchain"],
        "openllmetry_nocontent": ["opentelemetry.instrumentation.langchain"],
    }.get(name, [])
    for module in needs:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{module} not importable"
    if name in ("ours_duckdb", "ours_jsonl") and store_factory(name) is None:
        return "its store is not importable from otel_runjournal.stores"
    return None


def store_factory(name: str) -> Callable[[Path], Any] | None:
    """Open the store for ``ours_duckdb`` / ``ours_jsonl`` at a path (None while stores are missing)."""
    import importlib

    try:
        open_store = importlib.import_module("otel_runjournal.stores.location").open_store
    except ImportError:
        module, cls = {
            "ours_duckdb": ("otel_runjournal.stores.duckdb.store", "DuckDBStore"),
            "ours_jsonl": ("otel_runjournal.stores.jsonl.store", "JsonlStore"),
        }[name]
        try:
            factory: Callable[[Path], Any] = getattr(importlib.import_module(module), cls)
            return factory
        except (ImportError, AttributeError):
            return None
    if name == "ours_duckdb":
        return lambda path: open_store(str(path))
    return lambda path: open_store(f"jsonl://{path}")


def _provider(stack: ExitStack, counter: SpanCounter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(counter)
    stack.callback(provider.shutdown)
    return provider


def _ours(name: str, stack: ExitStack, workdir: Path, session: Session) -> None:
    from otel_runjournal.tracing.handler import RunJournalCallbackHandler

    provider = _provider(stack, session.counter)

    def flush() -> None:
        _flush(provider)

    if name == "ours_memory":
        flush = _in_memory_pipeline(provider)
    elif name == "ours_otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from otlp_sink import running_sink, stats

        endpoint = stack.enter_context(running_sink())
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        session.info["sink_spans"] = lambda: stats(endpoint)["spans"]
    else:
        from otel_runjournal.journal.exporter import RunJournalExporter
        from otel_runjournal.wiring import journal_span_processor

        factory = store_factory(name)
        assert factory is not None
        location = workdir / ("journal.duckdb" if name == "ours_duckdb" else "journal-jsonl")
        store = factory(location)
        # the processor configure() builds for the journal (2048-span exports, 8192-span queue)
        provider.add_span_processor(journal_span_processor(RunJournalExporter(store)))
        stack.callback(_close_quietly, store)
        session.info["store"] = store
    # Without a journal exporter the handler keeps no content for one (journal_content's default);
    # here the journal variants share the process, so say it explicitly for the others.
    journal = name in ("ours_duckdb", "ours_jsonl")
    handler = RunJournalCallbackHandler(tracer_provider=provider, journal_content=None if journal else False)
    session.callbacks = [handler]
    session.flush = flush
    stack.callback(_shutdown_handler, handler)


def _close_quietly(store: Any) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


def _shutdown_handler(handler: Any) -> None:
    shutdown = getattr(handler, "shutdown", None)
    if shutdown is not None:
        shutdown()


def _flush(provider: TracerProvider) -> None:
    if not provider.force_flush(timeout_millis=60_000):
        raise RuntimeError("span pipeline did not drain in 60 s")


def _in_memory_pipeline(provider: TracerProvider) -> Callable[[], None]:
    """Export ``provider``'s spans to memory behind a BatchSpanProcessor; return its flush."""
    memory = InMemorySpanExporter()
    provider.add_span_processor(BatchSpanProcessor(memory))

    def flush() -> None:
        _flush(provider)
        memory.clear()

    return flush


def _peer(name: str, stack: ExitStack, session: Session) -> None:
    provider = _provider(stack, session.counter)
    flush = _in_memory_pipeline(provider)
    instrumentor: Any
    if name == "openinference":
        from openinference.instrumentation.langchain import LangChainInstrumentor

        instrumentor = LangChainInstrumentor()
    else:
        # read per call by OpenLLMetry; this process runs only this variant (see GLOBAL_PATCHERS)
        os.environ["TRACELOOP_TRACE_CONTENT"] = "false" if name == "openllmetry_nocontent" else "true"
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor

        instrumentor = LangchainInstrumentor()

    patched = _patch_targets()
    originals = {cls: dict(vars(cls)) for cls in patched}

    def deactivate() -> None:
        instrumentor.uninstrument()
        # OpenLLMetry 0.62's uninstrument() leaves its wrappers in place (its unwrap() paths do not
        # resolve), so put back whatever instrument() replaced and check that nothing is left.
        for cls, before in originals.items():
            for key, value in before.items():
                if vars(cls).get(key) is not value:
                    setattr(cls, key, value)
            if any(vars(cls).get(k) is not v for k, v in before.items()):
                raise RuntimeError(f"{name}: could not restore {cls.__name__} after uninstrument()")

    session.activate = lambda: instrumentor.instrument(tracer_provider=provider)
    session.deactivate = deactivate
    session.flush = flush
    stack.callback(lambda: instrumentor.is_instrumented_by_opentelemetry and instrumentor.uninstrument())


def _patch_targets() -> list[type]:
    """Classes the peers patch on our workload's path (restored after each measurement)."""
    from langchain_core.callbacks import BaseCallbackManager
    from langgraph.pregel import Pregel
    from langgraph.types import Command

    return [BaseCallbackManager, Pregel, Command]


@contextmanager
def open_session(name: str, workdir: Path | None = None) -> Iterator[Session]:
    """Set up variant ``name``; tear everything down (providers, stores, sink) on exit."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    reason = missing(name)
    if reason:
        raise RuntimeError(f"{name} unavailable: {reason}")
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{name}-")))
        session = Session(name)
        if name == "noop_handler":
            session.callbacks = [NoopHandler()]
        elif name == "bare_spans":
            provider = _provider(stack, session.counter)
            session.callbacks = [BareSpanHandler(provider)]
            session.flush = _in_memory_pipeline(provider)
        elif name in OURS:
            _ours(name, stack, workdir, session)
        elif name in GLOBAL_PATCHERS:
            _peer(name, stack, session)
        yield session
