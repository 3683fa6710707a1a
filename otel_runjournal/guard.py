"""One guard for telemetry's own errors: logged (once per place and type) and swallowed.

Telemetry must never break the host application. Tests set :data:`RAISE_INTERNAL_ERRORS` so that our
own bugs fail loudly instead of being logged.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

RAISE_INTERNAL_ERRORS = False
"""Re-raise internal errors instead of logging them (set by the test suite, never in production)."""

_logger = logging.getLogger("otel_runjournal")
_seen: set[tuple[str, str]] = set()
_seen_lock = threading.Lock()
_MAX_SEEN = 1024


def report_internal_error(where: str, exc: BaseException) -> None:
    """Log an internal error once per (place, exception type); re-raise under tests."""
    if RAISE_INTERNAL_ERRORS:
        raise exc
    key = (where, type(exc).__name__)
    with _seen_lock:
        if key in _seen:
            _logger.debug("otel_runjournal: %s failed again: %r", where, exc)
            return
        if len(_seen) < _MAX_SEEN:
            _seen.add(key)
    _logger.warning(
        "otel_runjournal: %s failed (%s: %s); your application still ran, telemetry for this run "
        "may be incomplete",
        where,
        type(exc).__name__,
        exc,
        exc_info=exc,
    )


F = TypeVar("F", bound=Callable[..., Any])


def guarded(where: str) -> Callable[[F], F]:
    """Decorate a callback so its internal errors go through :func:`report_internal_error`."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                report_internal_error(where, exc)
                return None

        return cast(F, inner)

    return wrap
