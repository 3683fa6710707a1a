"""Cheap, copy-free reads of finished SDK spans (the exporter reads every span it gets).

The SDK's ``ReadableSpan`` properties copy: ``attributes`` wraps ``BoundedAttributes`` in a proxy
whose every lookup and iteration runs Python code (and a lock), ``events`` builds a new tuple. A
finished span never changes, so the containers inside are read directly, with the public properties
as the fallback for other span types; callers must never modify what they get. Ids, timestamps and
the resource are converted with memos and fast paths that give exactly the plain conversion.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode


def hex_trace_id(trace_id: int) -> str:
    return trace_id.to_bytes(16, "big").hex()  # twice as fast as format(trace_id, "032x")


def hex_span_id(span_id: int) -> str:
    return span_id.to_bytes(8, "big").hex()


_trace_memo: tuple[int, str] = (0, hex_trace_id(0))


def trace_hex(trace_id: int) -> str:
    """Hex of a trace id; the last one is remembered (a run's spans arrive together)."""
    global _trace_memo
    memo = _trace_memo  # one read: another thread may swap the tuple, never tear it
    if memo[0] == trace_id:
        return memo[1]
    text = hex_trace_id(trace_id)
    _trace_memo = (trace_id, text)
    return text


def trace_id_of(span: ReadableSpan) -> str:
    """The span's trace id as lowercase hex."""
    ctx = span.get_span_context()
    return trace_hex(ctx.trace_id if ctx is not None else 0)


def span_ids(span: ReadableSpan) -> tuple[str, str]:
    """(trace id, span id) of a span as lowercase hex."""
    ctx = span.get_span_context()
    if ctx is None:
        return hex_trace_id(0), hex_span_id(0)
    return trace_hex(ctx.trace_id), hex_span_id(ctx.span_id)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def plain(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in (attributes or {}).items()}


def attributes_of(span: ReadableSpan) -> dict[str, Any]:
    """A span's attributes as a plain dict, without copying (read-only: it is the span's own).

    ``ReadableSpan.attributes`` wraps the SDK's ``BoundedAttributes`` in a proxy whose every lookup
    and iteration runs Python code (and a lock); a finished span's attributes are immutable, so the
    dict inside is read directly, falling back to the public property for other span types.
    """
    raw = getattr(span, "_attributes", None)
    inner = getattr(raw, "_dict", None)
    if isinstance(inner, dict):  # an OrderedDict in older SDKs
        return inner
    if isinstance(raw, dict):
        return raw
    return dict(span.attributes or {})


_resource_memo: tuple[Any, dict[str, Any]] = (None, {})


def resource_of(span: ReadableSpan) -> dict[str, Any]:
    """The span's resource as a dict, converted once per resource object (all spans share one;
    so do their rows: treat it as read-only)."""
    global _resource_memo
    memo = _resource_memo
    if memo[0] is not span.resource:
        memo = _resource_memo = (span.resource, plain(span.resource.attributes))
    return memo[1]


# by id: enum members are singletons, and hashing an enum member runs Python code
KIND_NAMES = {id(kind): kind.name for kind in SpanKind}
STATUS_NAMES = {id(code): code.name for code in StatusCode}


def events_of(span: ReadableSpan) -> Sequence[Any]:
    """A finished span's OTel events without the copy the SDK's ``events`` property makes."""
    raw = getattr(span, "_events", None)
    inner = getattr(raw, "_dq", None)  # the SDK's BoundedList keeps them in a deque
    if type(inner) is deque:
        return inner
    if type(raw) is tuple or type(raw) is list:
        return raw
    return span.events
