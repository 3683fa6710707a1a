"""``configure()``: one call that wires the handler, the journal exporter and (optionally) OTLP.

Rules (documented in the README):

- **No provider given** → a new ``TracerProvider`` is built (resource ``service.name`` from the
  argument → ``OTEL_SERVICE_NAME`` → ``"otel-runjournal"``) with the journal exporter behind a
  ``BatchSpanProcessor``, plus an OTLP exporter when ``otlp_endpoint`` is given or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (protocol from
  ``otlp_protocol`` → ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` → ``OTEL_EXPORTER_OTLP_PROTOCOL`` →
  ``http/protobuf``). It becomes the global provider only if no global SDK provider is set yet
  (``set_global=None``); ``set_global=False`` never sets it.
- **The application's provider given** → the journal exporter is added to it and nothing else there
  changes: its processors, resource and the global provider are left alone. OTLP is added only when
  ``otlp_endpoint`` is passed explicitly (the application already decides where its spans go). If the
  provider already feeds a ``RunJournalExporter`` (e.g. ``OTEL_TRACES_EXPORTER=runjournal``), that one
  is reused instead of adding a second.
- **Called twice** with the same store location → the first wiring is returned unchanged (no second
  exporter, no double export). Passing a different provider for a location already wired raises
  ``ValueError``; call ``.shutdown()`` first to rewire.
- **No journal** (``store=False``, ``store="none"`` or ``OTEL_RUNJOURNAL_STORE=none``) → an OTLP-only
  application (e.g. sending to ``otel-runjournal serve``): the handler and OTLP are wired, no local
  journal is opened; ``store`` and ``exporter`` are then ``None``. A new provider then needs an OTLP
  endpoint (spans would go nowhere otherwise: ``ValueError``).
- Process exit flushes: ``shutdown()`` is registered with :mod:`atexit` (and is idempotent).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from . import settings as _env
from .stores.location import split_location

if TYPE_CHECKING:
    from .journal.exporter import RunJournalExporter
    from .records import RunRecord
    from .stores.base import RunStore
    from .tracing.handler import RunJournalCallbackHandler

_logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "otel-runjournal"
OTLP_PROTOCOLS = ("http/protobuf", "grpc")


JOURNAL_BATCH_SIZE = 2048
JOURNAL_QUEUE_SIZE = 8192


@dataclass(eq=False)
class Configured:
    """What :func:`configure` wired. ``shutdown()`` flushes and closes what configure created."""

    handler: RunJournalCallbackHandler
    store: RunStore | None  # None: no local journal (OTLP only)
    tracer_provider: TracerProvider
    exporter: RunJournalExporter | None
    otlp_exporter: SpanExporter | None = None
    owns_provider: bool = False
    _owned_store: bool = False
    _processors: list[BatchSpanProcessor] = field(default_factory=list)
    _key: str = ""
    _done: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every finished span now (journal and OTLP)."""
        return all(p.force_flush(timeout_millis) for p in self._processors)

    def shutdown(self) -> None:
        """End open runs, flush, stop our processors, close the store if we opened it. Idempotent."""
        with self._lock:
            if self._done:
                return
            self._done = True
        atexit.unregister(self.shutdown)
        with _registry_lock:
            if _registry.get(self._key) is self:
                del _registry[self._key]
        try:
            self.handler.shutdown()
        finally:
            if self.owns_provider:
                self.tracer_provider.shutdown()
            else:
                for processor in self._processors:
                    processor.shutdown()
            if self._owned_store and self.store is not None:
                self.store.close()


_registry: dict[str, Configured] = {}
_registry_lock = threading.Lock()


NO_STORE = "none"
"""The store location meaning "no local journal" (argument or ``OTEL_RUNJOURNAL_STORE``)."""


def configure(
    store: RunStore | str | os.PathLike[str] | Literal[False] | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
    service_name: str | None = None,
    otlp_endpoint: str | None = None,
    otlp_protocol: str | None = None,
    capture_content: bool | None = None,
    journal_content: bool | None = None,
    content_max_length: int | None = None,
    redact: Callable[[str], str] | None = None,
    verbosity: str | None = None,
    run_ttl: float | None = None,
    meter_provider: Any = None,
    set_global: bool | None = None,
    on_run_end: Callable[[RunRecord], Any] | None = None,
    prices: Mapping[str, Any] | None = None,
) -> Configured:
    """Wire handler → provider → journal exporter (→ OTLP) and return the pieces; see the module doc.

    ``store``: a :class:`RunStore` or a location (``x.duckdb``, ``duckdb:///x.duckdb``, a directory,
    ``jsonl:///dir``); default ``OTEL_RUNJOURNAL_STORE`` → ``./runjournal.duckdb``; ``False`` or
    ``"none"``: no local journal (OTLP only). The content arguments and ``on_run_end`` are passed to
    :class:`RunJournalCallbackHandler`. ``prices``: the user's model prices, overriding genai-prices'
    table (else ``OTEL_RUNJOURNAL_PRICES``; see :mod:`otel_runjournal.pricing`).
    """
    from .journal.exporter import RunJournalExporter
    from .tracing.handler import RunJournalCallbackHandler

    if otlp_protocol is not None and otlp_protocol not in OTLP_PROTOCOLS:
        raise ValueError(f"otlp_protocol must be one of {OTLP_PROTOCOLS}, got {otlp_protocol!r}")
    location: Any = (
        store if store is not None else _env.resolve(None, _env.OTEL_RUNJOURNAL_STORE, _env.DEFAULT_STORE)
    )
    journal = not (location is False or (isinstance(location, str) and location.strip().lower() == NO_STORE))
    key = store_key(location) if journal else f"no-journal:{id(tracer_provider)}"
    with _registry_lock:
        existing = _registry.get(key)
        if existing is not None:
            if tracer_provider is not None and tracer_provider is not existing.tracer_provider:
                raise ValueError(
                    f"the run journal {key} is already wired to another TracerProvider; "
                    "call .shutdown() on the first configure() result to rewire it"
                )
            _logger.debug("configure(): %s already wired; returning the existing wiring", key)
            return existing

        owns_provider = tracer_provider is None
        provider = tracer_provider or TracerProvider(resource=_resource(service_name))
        processors: list[BatchSpanProcessor] = []
        exporter = None if owns_provider or not journal else _existing_journal_exporter(provider)
        owned_store = False
        run_store: RunStore | None = None
        if not journal:
            pass  # OTLP only: no journal exporter, no store
        elif exporter is not None and getattr(exporter, "store", None) is not None:
            run_store = exporter.store  # the provider already journals: reuse it
        else:
            owned_store = isinstance(location, (str, os.PathLike))
            if owned_store:
                from .stores.location import open_store

                run_store = open_store(os.fspath(location))
            else:
                run_store = location
            exporter = RunJournalExporter(run_store, prices=prices)
            processors.append(journal_span_processor(exporter))
        otlp = _otlp_exporter(otlp_endpoint, otlp_protocol, from_env=owns_provider)
        if not journal and owns_provider and otlp is None:
            raise ValueError(
                "configure() without a journal (store=False / 'none') needs somewhere to send spans: "
                "otlp_endpoint=..., OTEL_EXPORTER_OTLP_ENDPOINT, or tracer_provider= of your own"
            )
        if otlp is not None:
            processors.append(BatchSpanProcessor(otlp))
        for processor in processors:
            provider.add_span_processor(processor)
        handler = RunJournalCallbackHandler(
            tracer_provider=provider,
            capture_content=capture_content,
            journal_content=journal_content,
            content_max_length=content_max_length,
            redact=redact,
            verbosity=verbosity,
            run_ttl=run_ttl,
            meter_provider=meter_provider,
            on_run_end=on_run_end,
            prices=prices,
        )
        wired = Configured(
            handler=handler,
            store=run_store,
            tracer_provider=provider,
            exporter=exporter,
            otlp_exporter=otlp,
            owns_provider=owns_provider,
            _owned_store=owned_store,
            _processors=processors,
            _key=key,
        )
        _registry[key] = wired
    if owns_provider and set_global is not False:
        _maybe_set_global(provider, force=set_global is True)
    atexit.register(wired.shutdown)
    return wired


def journal_span_processor(exporter: SpanExporter) -> BatchSpanProcessor:
    """A ``BatchSpanProcessor`` sized for the journal: every export is one store transaction with a
    fixed cost (a DuckDB commit is milliseconds), so it exports up to 2048 spans at a time from a
    queue of 8192 instead of the SDK's 512 / 2048. ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` and
    ``OTEL_BSP_MAX_QUEUE_SIZE`` still win when set."""
    batch = _env.resolve(None, _env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, JOURNAL_BATCH_SIZE, int)
    queue = _env.resolve(None, _env.OTEL_BSP_MAX_QUEUE_SIZE, max(JOURNAL_QUEUE_SIZE, batch), int)
    return BatchSpanProcessor(exporter, max_queue_size=max(queue, batch), max_export_batch_size=batch)


def store_key(location: Any) -> str:
    """A canonical key for a store location (its absolute path), or the store object's identity."""
    if not isinstance(location, (str, os.PathLike)):
        return f"object:{id(location)}"
    try:
        path = split_location(location)[1]
    except ValueError:
        return f"raw:{os.fspath(location)}"  # open_store will reject it with the precise message
    return f"path:{os.path.abspath(os.path.expanduser(path))}"


def _resource(service_name: str | None) -> Resource:
    name = _env.resolve(service_name, _env.OTEL_SERVICE_NAME, DEFAULT_SERVICE_NAME)
    return Resource.create({SERVICE_NAME: name})


def otlp_protocol_from_env(arg: str | None = None) -> str:
    """``arg`` → ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` → ``OTEL_EXPORTER_OTLP_PROTOCOL`` → http/protobuf."""
    default = _env.resolve(None, _env.OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf")
    protocol = _env.resolve(arg, _env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, default)
    if protocol not in OTLP_PROTOCOLS:
        _logger.warning("unsupported OTLP protocol %r; using http/protobuf", protocol)
        return "http/protobuf"
    return protocol


def _otlp_exporter(endpoint: str | None, protocol: str | None, *, from_env: bool) -> SpanExporter | None:
    env_endpoint = os.environ.get(_env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or os.environ.get(
        _env.OTEL_EXPORTER_OTLP_ENDPOINT
    )
    if endpoint is None and not (from_env and env_endpoint):
        return None
    proto = otlp_protocol_from_env(protocol)
    if proto == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        return Grpc(endpoint=endpoint) if endpoint else Grpc()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    if endpoint is None:  # the exporter reads the env itself (base endpoint + /v1/traces rules)
        return Http()
    # like OTEL_EXPORTER_OTLP_ENDPOINT, the argument is the base URL
    url = endpoint if endpoint.rstrip("/").endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"
    return Http(endpoint=url)


def _existing_journal_exporter(provider: TracerProvider) -> RunJournalExporter | None:
    """The RunJournalExporter already fed by ``provider`` (best effort: SDK internals), if any."""
    from .journal.exporter import RunJournalExporter

    try:
        processors = provider._active_span_processor._span_processors
    except AttributeError:
        return None
    for processor in processors:
        exporter = getattr(processor, "span_exporter", None)
        if isinstance(exporter, RunJournalExporter):
            return exporter
    return None


def _maybe_set_global(provider: TracerProvider, *, force: bool) -> None:
    current = trace.get_tracer_provider()
    if isinstance(current, trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    elif force:
        _logger.warning("configure(set_global=True): a global TracerProvider is already set; left as is")
