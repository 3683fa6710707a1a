"""How content travels from the handler to the journal without going onto spans.

By default no content attribute is put on any span, so no exporter (OTLP, console, the user's own)
ever sees prompts or completions. The handler instead hands each span's content to this module's
registry, keyed by the span's context (trace id, span id), just before it ends the span; the
:class:`~otel_runjournal.RunJournalExporter` takes it out when it maps the finished span. Nothing rides
on the SDK's span objects, so processors that run first, wrap spans or copy their attributes change
nothing. The values are captured cheaply (references / shallow copies) on the hot path and rendered
(serialised, redacted, truncated) by the exporter on its own thread. Unless told otherwise
(``journal_content``), the handler collects content only while a journal exporter that records
content exists in the process (:func:`add_reader`): with OTLP alone nothing reads the registry, so
nothing is kept for it.

The registry is bounded: an entry lives until a reader takes it, and at most between one and two
:data:`TTL_SECONDS` otherwise (a span the sampler, a full queue or a failed exporter never delivered),
with at most :data:`MAX_ENTRIES` entries at any time (two generations of dicts, the older dropped
whole: no per-entry timestamps or scans on the hot path).

With ``capture_content=True`` (or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``) the
rendered content is put on the span as the standard ``gen_ai.*`` content attributes instead, and the
exporter reads it from there (as it does for spans of other instrumentations).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

_READERS: weakref.WeakSet[Any] = weakref.WeakSet()


def add_reader(reader: Any) -> None:
    """Count ``reader`` (a journal exporter) as reading the side channel while it is alive."""
    _READERS.add(reader)


def remove_reader(reader: Any) -> None:
    """Stop counting ``reader`` (its shutdown)."""
    _READERS.discard(reader)


def has_readers() -> bool:
    """Whether any side-channel reader exists in this process."""
    return len(_READERS) > 0


# Keys of a span's content dict (values: ``str`` or a zero-argument callable returning ``str | None``,
# rendered with the handler's truncation limit and redaction function):
#   gen_ai.input.messages   chat/LLM prompt; on root / agent spans the run input, in the GenAI JSON
#                           message format ``[{"role": "user", "parts": [{"type": "text", "content": ...}]}]``
#                           (a non-message input becomes one user message whose text is its JSON)
#   gen_ai.output.messages  chat/LLM output, GenAI JSON format with "tool_call" parts and
#                           "finish_reason"; on root spans the run's final output
#   gen_ai.tool.call.arguments / gen_ai.tool.call.result   tool input / output (JSON or text)
#   runjournal.retrieval.query / runjournal.retrieval.documents   retriever query / docs preview
#   runjournal.interrupt_value   preview of a LangGraph interrupt's value (root or interrupted tool)
#   runjournal.resume_value      on a root that resumes a run: the Command(resume=...) value
#   runjournal.custom_events     list of (name, time_unix_nano, data) for on_custom_event calls,
#                                data rendered JSON; span events "runjournal.custom.<name>" mark them
KEY_RETRIEVAL_QUERY = "runjournal.retrieval.query"
KEY_RETRIEVAL_DOCUMENTS = "runjournal.retrieval.documents"
KEY_INTERRUPT_VALUE = "runjournal.interrupt_value"
KEY_RESUME_VALUE = "runjournal.resume_value"
KEY_CUSTOM_EVENTS = "runjournal.custom_events"


TTL_SECONDS = 300.0
"""How long an entry nobody takes may stay (between one and two of these): far longer than a
``BatchSpanProcessor`` holds a span before exporting it."""
MAX_ENTRIES = 100_000
"""Entries held at most (spans whose content was not taken yet), like the exporter's pending spans."""

Key = tuple[int, int]


class ContentRegistry:
    """Content of ended spans by ``(trace_id, span_id)``, until a journal exporter takes it."""

    __slots__ = ("_lock", "_old", "_rotate_at", "_young", "max_entries", "ttl")

    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._young: dict[Key, dict[str, Any]] = {}
        self._old: dict[Key, dict[str, Any]] = {}
        self._rotate_at = time.monotonic() + ttl
        self._lock = threading.Lock()

    def put(self, key: Key, content: dict[str, Any]) -> None:
        """Hold ``content`` for the span ``key`` (the handler, before it ends the span)."""
        young = self._young
        if len(young) * 2 >= self.max_entries or time.monotonic() >= self._rotate_at:
            self._rotate(young)  # first, so that every entry lives at least one TTL
            young = self._young
        young[key] = content

    def _rotate(self, seen: dict[Key, dict[str, Any]]) -> None:
        with self._lock:
            if self._young is seen:  # another thread has not rotated it already
                self._old, self._young = seen, {}
                self._rotate_at = time.monotonic() + self.ttl

    def take(self, key: Key) -> dict[str, Any] | None:
        """The content of span ``key``, removed unless several readers exist (then the TTL drops it)."""
        if len(_READERS) > 1:
            return self.peek(key)
        content = self._young.pop(key, None)
        return content if content is not None else self._old.pop(key, None)

    def peek(self, key: Key) -> dict[str, Any] | None:
        """The content of span ``key``, left in place."""
        content = self._young.get(key)
        return content if content is not None else self._old.get(key)

    def __len__(self) -> int:
        return len(self._young) + len(self._old)


REGISTRY = ContentRegistry()


def key_of(span: Any) -> Key | None:
    """A span's registry key, from its public span context (live SDK span or finished ReadableSpan)."""
    try:
        ctx = span.get_span_context()
    except Exception:  # not an OTel span
        return None
    return None if ctx is None else (ctx.trace_id, ctx.span_id)


def put(span: Any, content: dict[str, Any]) -> None:
    """Hand ``content`` (attribute name → raw or rendered value) for ``span`` to the journal."""
    key = key_of(span)
    if key is not None:
        REGISTRY.put(key, content)


def take(span: Any) -> dict[str, Any] | None:
    """The content handed over for a finished span (removed), or ``None``."""
    key = key_of(span)
    return None if key is None else REGISTRY.take(key)


def peek(span: Any) -> dict[str, Any] | None:
    """The content handed over for a span, left in place (for tests and diagnostics)."""
    key = key_of(span)
    return None if key is None else REGISTRY.peek(key)


class Parsed:
    """A content value rendered by the journal with the value its JSON parses to: ``render(value)``
    returns ``(data, json_text)``. Calling it gives the text (as any side-channel callable); the
    journal reads ``data`` instead of parsing back the JSON it just had made (:func:`render_parsed`)."""

    __slots__ = ("_render", "_value")

    def __init__(self, render: Callable[[Any], tuple[Any, str]], value: Any) -> None:
        self._render, self._value = render, value

    def __call__(self) -> str:
        return self._render(self._value)[1]

    def parsed(self) -> tuple[Any, str]:
        return self._render(self._value)


def render(value: Any) -> str | None:
    """Resolve a side-channel value: call it if lazy; never raises."""
    if value is None or isinstance(value, str):
        return value
    try:
        out = value() if callable(value) else value
    except Exception:  # telemetry never breaks the app; a bad payload becomes a marker
        return '"<unrenderable>"'
    return out if out is None or isinstance(out, str) else str(out)


def render_parsed(value: Parsed) -> tuple[Any, str] | None:
    """``(data, text)`` of a :class:`Parsed` value; ``None`` when rendering failed (then
    :func:`render` gives the marker text to parse instead); never raises."""
    try:
        data, text = value.parsed()
    except Exception:
        return None
    return (data, text) if isinstance(text, str) else None
