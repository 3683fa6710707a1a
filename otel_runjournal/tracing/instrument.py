"""``instrument()`` / ``uninstrument()``: trace every LangChain run in the process without ``callbacks=``.

How: langchain-core's callback configuration consults its registered *configure hooks* every time a
callback manager is built (every ``invoke``/``stream``/... of any runnable). We register one hook,
once, whose variable is a process-wide slot holding the current handler (or ``None``); so
``uninstrument()`` only empties the slot. The slot is process-wide rather than a ``ContextVar`` so
runs started on plain threads are traced too. The hook adds the handler as *inheritable* (children
get it through their parent's manager) and only when the run's callbacks do not already contain a
:class:`RunJournalCallbackHandler` — passing ``callbacks=[handler]`` explicitly never traces a run twice.

``RunJournalInstrumentor`` exposes the same through OpenTelemetry's ``BaseInstrumentor`` and the
``opentelemetry_instrumentor`` entry point, so ``opentelemetry-instrument python app.py`` picks it up.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, cast

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

if TYPE_CHECKING:
    from .handler import RunJournalCallbackHandler

_INSTRUMENTS = ("langchain-core >= 0.3",)


class _HandlerSlot:
    """Duck-types the ``ContextVar.get()`` langchain-core calls on a configure hook's variable."""

    def __init__(self) -> None:
        self.handler: RunJournalCallbackHandler | None = None
        self.owned = False

    def get(self, default: Any = None) -> RunJournalCallbackHandler | None:
        return self.handler


_slot = _HandlerSlot()
_lock = threading.Lock()
_hook_registered = False


def _register_hook() -> None:
    global _hook_registered
    if _hook_registered:
        return
    from contextvars import ContextVar

    from langchain_core.tracers.context import register_configure_hook

    from .handler import RunJournalCallbackHandler

    register_configure_hook(cast(ContextVar[Any], _slot), True, handle_class=RunJournalCallbackHandler)
    _hook_registered = True


def instrument(
    handler: RunJournalCallbackHandler | None = None, *, tracer_provider: Any = None, **handler_kwargs: Any
) -> RunJournalCallbackHandler:
    """Attach ``handler`` (or a new one built from ``tracer_provider`` and ``handler_kwargs``) to every
    LangChain run in the process. Calling it again without a handler returns the active one."""
    from .handler import RunJournalCallbackHandler

    with _lock:
        _register_hook()
        if handler is None and _slot.handler is not None:
            return _slot.handler
        previous, previous_owned = _slot.handler, _slot.owned
        if handler is None:
            handler = RunJournalCallbackHandler(tracer_provider=tracer_provider, **handler_kwargs)
            _slot.owned = True
        else:
            _slot.owned = False
        _slot.handler = handler
    if previous is not None and previous_owned and previous is not handler:
        previous.shutdown()
    return handler


def uninstrument() -> None:
    """Stop tracing runs that do not pass the handler explicitly; ends a handler ``instrument()`` built."""
    with _lock:
        handler, owned = _slot.handler, _slot.owned
        _slot.handler, _slot.owned = None, False
    if handler is not None and owned:
        handler.shutdown()


def instrumented_handler() -> RunJournalCallbackHandler | None:
    """The handler :func:`instrument` attached, if any."""
    return _slot.handler


class RunJournalInstrumentor(BaseInstrumentor):
    """OpenTelemetry instrumentor: ``RunJournalInstrumentor().instrument(tracer_provider=...)``.

    Keyword arguments other than ``tracer_provider`` go to :class:`RunJournalCallbackHandler`
    (``capture_content``, ``meter_provider``, ...). Without a provider the global one is used.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        handler_kwargs = {k: v for k, v in kwargs.items() if k in _HANDLER_KWARGS}
        instrument(tracer_provider=kwargs.get("tracer_provider"), **handler_kwargs)

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument()


_HANDLER_KWARGS = frozenset(
    {
        "capture_content",
        "journal_content",
        "content_max_length",
        "redact",
        "verbosity",
        "run_ttl",
        "meter_provider",
    }
)
