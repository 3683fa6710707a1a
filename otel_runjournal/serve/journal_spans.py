"""The journal process's finished spans: what the journal's mapping reads of a ``ReadableSpan``, as slots.

The in-process exporter gets its SDK ``ReadableSpan``s from the application for free; ``serve`` would
build them from every request (``SpanContext`` validates its ids in Python, ``ReadableSpan.__init__``
sets fourteen fields, ``Event`` and ``Status`` are Python classes too) and then read each value back
through the SDK's Python properties (~450 instructions a read, ~20 reads a span in the mapping, the
dedupe and the run assembly). A :class:`JournalSpan` is one ``__init__`` and every read is a slot.

It is a duck type of a finished ``ReadableSpan`` for the journal (:mod:`otel_runjournal.journal`),
offering exactly what that reads: ``get_span_context()`` (the span is its own context: ``trace_id``,
``span_id``, ``is_remote``, ``trace_flags``), ``parent`` (a context or ``None``), ``kind`` (the SDK's
``SpanKind`` member), ``status`` (``.status_code``, the SDK's ``StatusCode`` member, and
``.description``), ``name``, ``start_time``, ``end_time``, ``resource`` (the SDK's ``Resource``, one
per ``ResourceSpans`` of a request, as :func:`~.otlp_spans.spans_of` makes it), ``_attributes`` (the
plain attribute dict :func:`~otel_runjournal.journal.spanread.attributes_of` reads without a copy),
``_events`` (a tuple of events with ``name`` / ``attributes`` / ``timestamp``, which
:func:`~otel_runjournal.journal.spanread.events_of` reads as it is) and ``instrumentation_scope``.
The values are those :func:`~.otlp_spans.spans_of` puts in the SDK spans, so the journal writes the
same rows from either (``tests/test_serve_journal_spans.py`` journals both and compares every field).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, TraceFlags
from opentelemetry.trace.status import StatusCode

from .otlp_spans import Decoded

__all__ = ["JournalSpan", "JournalSpans", "journal_spans_of"]

# OTLP SpanKind (0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer) → SDK SpanKind
_KINDS = {
    0: SpanKind.INTERNAL,
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_TRACE_FLAGS = [TraceFlags(flags) for flags in range(256)]


class SpanRef:
    """A span context: a parent's (``is_remote`` from the OTLP span flags)."""

    __slots__ = ("is_remote", "span_id", "trace_flags", "trace_id")

    def __init__(self, trace_id: int, span_id: int, is_remote: bool, trace_flags: TraceFlags) -> None:
        self.trace_id, self.span_id = trace_id, span_id
        self.is_remote, self.trace_flags = is_remote, trace_flags


class SpanStatus:
    """A span's status as the SDK's ``Status`` offers it: the ``StatusCode`` member and the
    description (kept only for ``ERROR``, as the SDK keeps it)."""

    __slots__ = ("description", "status_code")

    def __init__(self, status_code: StatusCode, description: str | None = None) -> None:
        self.status_code, self.description = status_code, description


class SpanEvent:
    """An OTel span event: ``name``, ``attributes`` (a plain dict), ``timestamp`` (ns)."""

    __slots__ = ("attributes", "name", "timestamp")

    def __init__(self, name: str, attributes: dict[str, Any], timestamp: int) -> None:
        self.name, self.attributes, self.timestamp = name, attributes, timestamp


_STATUS_CODES = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}
_PLAIN_STATUS = {number: SpanStatus(code) for number, code in _STATUS_CODES.items()}  # shared, by number


class JournalSpan:
    """A finished span as the journal reads it (see the module docstring); never modified once built."""

    __slots__ = (
        "_attributes",
        "_events",
        "end_time",
        "instrumentation_scope",
        "kind",
        "name",
        "parent",
        "resource",
        "span_id",
        "start_time",
        "status",
        "trace_flags",
        "trace_id",
    )

    is_remote = False  # as its own context: the span of this process's request, not a remote parent

    def __init__(
        self,
        name: str,
        trace_id: int,
        span_id: int,
        trace_flags: TraceFlags,
        parent: SpanRef | None,
        kind: SpanKind,
        status: SpanStatus,
        start_time: int,
        end_time: int,
        attributes: dict[str, Any],
        events: tuple[SpanEvent, ...],
        resource: Resource,
        instrumentation_scope: InstrumentationScope | None,
    ) -> None:
        self.name = name
        self.trace_id = trace_id
        self.span_id = span_id
        self.trace_flags = trace_flags
        self.parent = parent
        self.kind = kind
        self.status = status
        self.start_time = start_time
        self.end_time = end_time
        self._attributes = attributes
        self._events = events
        self.resource = resource
        self.instrumentation_scope = instrumentation_scope

    def get_span_context(self) -> JournalSpan:
        """The span's context (``trace_id``, ``span_id``, ``is_remote``, ``trace_flags``): itself."""
        return self

    @property
    def context(self) -> JournalSpan:
        return self

    @property
    def attributes(self) -> Mapping[str, Any]:
        """Read-only, as the SDK's property (the journal reads ``_attributes``, the dict itself)."""
        return MappingProxyType(self._attributes)

    @property
    def events(self) -> tuple[SpanEvent, ...]:
        return self._events

    def __repr__(self) -> str:
        return f"JournalSpan({self.name!r}, trace_id={self.trace_id:032x}, span_id={self.span_id:016x})"


@dataclass(slots=True)
class JournalSpans:
    """The spans of one request for the journal and what was rejected (for the protocol's partial
    success): :class:`~.otlp_spans.Converted` with :class:`JournalSpan`s."""

    spans: list[JournalSpan]
    rejected: int = 0
    reason: str | None = None


def journal_spans_of(decoded: Decoded) -> JournalSpans:
    """The decoded request's spans as :class:`JournalSpan`s (what :func:`~.otlp_spans.spans_of` makes
    as SDK spans, for the journal process). Runs in the journal process for every span."""
    resources = [Resource(attrs, schema_url) for attrs, schema_url in decoded.resources]
    scopes = [InstrumentationScope(*scope) for scope in decoded.scopes]
    kinds, plain, flags_of, internal = _KINDS.get, _PLAIN_STATUS.get, _TRACE_FLAGS, SpanKind.INTERNAL
    unset, error = _PLAIN_STATUS[0], StatusCode.ERROR
    refs: dict[int, SpanRef] = {}  # parent id → its context, shared by its children in the request
    out: list[JournalSpan] = []
    append = out.append
    for (
        name,
        trace_id,
        span_id,
        parent_id,
        remote,
        flags,
        kind,
        code,
        message,
        start,
        end,
        attrs,
        events,
        resource,
        scope,
    ) in decoded.spans:
        trace_flags = flags_of[flags]
        if parent_id:
            parent = refs.get(parent_id)
            if (
                parent is None
                or parent.is_remote is not remote
                or parent.trace_flags is not trace_flags
                or parent.trace_id != trace_id
            ):
                parent = refs[parent_id] = SpanRef(trace_id, parent_id, remote, trace_flags)
        else:
            parent = None
        span = JournalSpan(
            name,
            trace_id,
            span_id,
            trace_flags,
            parent,
            kinds(kind, internal),
            SpanStatus(error, message) if code == 2 and message else plain(code, unset),
            start,
            end,
            attrs,
            tuple([SpanEvent(*event) for event in events]) if events else (),
            resources[resource],
            scopes[scope],
        )
        append(span)
    return JournalSpans(out, decoded.rejected, decoded.reason)
