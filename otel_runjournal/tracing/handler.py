"""``RunJournalCallbackHandler``: LangChain / LangGraph runs → OpenTelemetry GenAI spans.

The handler is its settings plus three families of callbacks, each in a module of its own:
:mod:`.chains` (roots, subagents, nodes), :mod:`.models` (chat / LLM calls), :mod:`.tools` (tools,
retrievers, custom events), all built on the span plumbing of :mod:`.runspans`. Classification lives
in :mod:`.classify`, usage in :mod:`.usage`, rendering in :mod:`.serialize`, the run map in
:mod:`.registry`.

``run_inline = True``: LangChain otherwise runs a sync handler's callbacks in a thread pool in async
code, a thread hop per callback. Our callbacks never block (no I/O; span processors do their own
batching) and are short, so running them inline is both faster and keeps their order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry import trace

from .. import guard as _guard
from .. import semconv as sc
from .. import settings as _env
from ..pricing import resolve_pricer
from ..records import RunRecord
from . import classify as cl
from . import metrics as _metrics
from .chains import ChainCallbacks
from .models import ModelCallbacks
from .registry import RunRegistry
from .serialize import Renderer
from .tools import ToolCallbacks


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("otel-runjournal")
    except Exception:
        return "0.0.0"


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be positive")
    return value


def _verbosity(text: str) -> str:
    value = text.strip().lower()
    if value not in cl.VERBOSITIES:
        raise ValueError(f"verbosity must be one of {cl.VERBOSITIES}")
    return value


class RunJournalCallbackHandler(ChainCallbacks, ModelCallbacks, ToolCallbacks, BaseCallbackHandler):
    """LangChain callback handler producing OpenTelemetry GenAI spans (see DESIGN.md "Spans").

    Args:
        tracer_provider: provider to make spans on (default: the global one).
        capture_content: put content on spans as ``gen_ai.*`` attributes (every exporter sees it).
            Env ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``; default false.
        journal_content: hand content to the local journal through the span side channel.
            Env ``OTEL_RUNJOURNAL_JOURNAL_CONTENT``; default: while a ``RunJournalExporter`` that
            records content exists in the process (with OTLP alone nothing would read it).
        content_max_length: truncation limit of every content value (characters).
            Env ``OTEL_RUNJOURNAL_CONTENT_MAX_LENGTH``; default 65536.
        redact: ``str -> str`` applied to every content string before it is recorded anywhere.
        verbosity: ``genai`` (drop plumbing runs) or ``all``. Env ``OTEL_RUNJOURNAL_VERBOSITY``.
        run_ttl: seconds after which an idle run is ended as abandoned. Env ``OTEL_RUNJOURNAL_RUN_TTL``;
            default 3600.
        meter_provider: provider for GenAI metrics (default: the global one if it is an SDK provider).
        on_run_end: called with the run's :class:`~otel_runjournal.RunRecord` (as the journal's ``runs``
            row will hold it) when a root run ends, on that thread, before ``invoke`` returns; no I/O
            is done for it, and whatever it raises is logged and swallowed. Its ``cost_usd`` /
            ``unpriced_call_count`` are priced as the journal prices them (same function, same prices).
        prices: the user's model prices for ``on_run_end``'s cost (see :mod:`otel_runjournal.pricing`);
            env ``OTEL_RUNJOURNAL_PRICES``. ``configure(prices=...)`` passes them here and to the journal.
    """

    run_inline = True

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        *,
        capture_content: bool | None = None,
        journal_content: bool | None = None,
        content_max_length: int | None = None,
        redact: Callable[[str], str] | None = None,
        verbosity: str | None = None,
        run_ttl: float | None = None,
        meter_provider: Any | None = None,
        on_run_end: Callable[[RunRecord], Any] | None = None,
        prices: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if verbosity is not None:
            verbosity = _verbosity(verbosity)
        if content_max_length is not None and content_max_length <= 0:
            raise ValueError("content_max_length must be positive")
        if run_ttl is not None and not run_ttl > 0:
            raise ValueError("run_ttl must be positive")
        if redact is not None and not callable(redact):
            raise ValueError("redact must be a callable str -> str")
        if on_run_end is not None and not callable(on_run_end):
            raise ValueError("on_run_end must be a callable taking the run's RunRecord")
        self._on_run_end = on_run_end
        # on_run_end's cost: the journal's pricing function and prices (priced at the root's end,
        # only when there is an on_run_end; the table is loaded now, not on the run's thread)
        self._pricer = resolve_pricer(prices) if on_run_end is not None else None
        if self._pricer is not None:
            self._pricer.warm()
        self._capture = _env.resolve(
            capture_content, _env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, False, _env.parse_bool
        )
        journal = _env.resolve(journal_content, _env.OTEL_RUNJOURNAL_JOURNAL_CONTENT, None, _env.parse_bool)
        # with capture_content the content travels on the spans instead of the side channel;
        # None: only while a journal exporter reads it (checked per value, see _content.has_readers)
        self._side: bool | None = False if self._capture else journal
        limit = _env.resolve(
            content_max_length,
            _env.OTEL_RUNJOURNAL_CONTENT_MAX_LENGTH,
            _env.DEFAULT_CONTENT_MAX_LENGTH,
            _positive_int,
        )
        self._renderer = Renderer(limit, redact)
        self._keep_all = (
            _env.resolve(verbosity, _env.OTEL_RUNJOURNAL_VERBOSITY, cl.VERBOSITY_GENAI, _verbosity)
            == cl.VERBOSITY_ALL
        )
        ttl = _env.resolve(run_ttl, _env.OTEL_RUNJOURNAL_RUN_TTL, 3600.0, _positive_float)
        self._registry = RunRegistry(float(ttl))
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        self._tracer = provider.get_tracer(sc.INSTRUMENTATION_NAME, _version(), schema_url=sc.SCHEMA_URL)
        self._metrics = _metrics.build(meter_provider)

    @property
    def raise_error(self) -> bool:  # type: ignore[override]
        """Let LangChain propagate our errors only when the test suite asks for loud failures."""
        return _guard.RAISE_INTERNAL_ERRORS

    @property
    def open_run_count(self) -> int:
        """Runs started and not yet ended (including the tiny records of runs dropped by verbosity)."""
        return len(self._registry)

    @_guard.guarded("handler.flush")
    def flush(self) -> None:
        """End every open run now, marked ``runjournal.abandoned=true``."""
        for state in self._registry.drain():
            self._abandon_root(state)

    def shutdown(self) -> None:
        """End what is left (as :meth:`flush`); the handler stays usable."""
        self.flush()
