"""How content travels from the handler to the journal without going onto spans.

By default no content attribute is put on any span, so no exporter (OTLP, console, the user's own)
ever sees prompts or completions. The handler instead attaches content to the SDK span as a plain
Python attribute (``_runjournal_content``) of the span's attributes *object*: ``Span.end()`` hands
processors a new ``ReadableSpan`` sharing that object (not the span itself), so
:class:`~otel_runjournal.RunJournalExporter` reads it there and nothing else does. The values are
captured cheaply (references / shallow copies) on the hot path and rendered (serialised, redacted,
truncated) by the exporter on its own thread. Unless told otherwise (``journal_content``), the handler
collects content only while a journal exporter that records content exists in the process
(:func:`add_reader`): with OTLP alone nothing reads the side channel, so nothing is kept for it.

With ``capture_content=True`` (or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``) the
rendered content is put on the span as the standard ``gen_ai.*`` content attributes instead, and the
exporter reads it from there (as it does for spans of other instrumentations).
"""

from __future__ import annotations

import weakref
from typing import Any

SIDE_CHANNEL_ATTR = "_runjournal_content"

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


# Keys of the side-channel dict (values: ``str`` or a zero-argument callable returning ``str | None``,
# rendered with the handler's truncation limit and redaction function):
#   gen_ai.input.messages   chat/LLM prompt; on root / agent spans the run input, in the GenAI JSON
#                           message format ``[{"role": "user", "parts": [{"type": "text", "content": ...}]}]``
#                           (a non-message input becomes one user message whose text is its JSON)
#   gen_ai.output.messages  chat/LLM output, GenAI JSON format with "tool_call" parts and
#                           "finish_reason"; on root spans the run's final output
#   gen_ai.tool.call.arguments / gen_ai.tool.call.result   tool input / output (JSON or text)
#   runjournal.retrieval.query / runjournal.retrieval.documents   retriever query / docs preview
#   runjournal.interrupt_value   preview of a LangGraph interrupt's value
#   runjournal.custom_events     list of (name, time_unix_nano, data) for on_custom_event calls,
#                                data rendered JSON; span events "runjournal.custom.<name>" mark them
KEY_RETRIEVAL_QUERY = "runjournal.retrieval.query"
KEY_RETRIEVAL_DOCUMENTS = "runjournal.retrieval.documents"
KEY_INTERRUPT_VALUE = "runjournal.interrupt_value"
KEY_CUSTOM_EVENTS = "runjournal.custom_events"


def _carriers(span: Any) -> tuple[Any, ...]:
    # The SDK's ``Span.end()`` hands processors a *new* ``ReadableSpan`` built around the span's own
    # attributes object, so that shared object is the carrier that reaches ``on_end``; the span
    # object itself is the fallback (a hand-built ``ReadableSpan`` whose attributes are a dict).
    return (getattr(span, "_attributes", None), span)


def attach(span: Any, content: dict[str, Any]) -> None:
    """Attach ``content`` (attribute name → raw or rendered value) to an SDK span object."""
    existing = read(span)
    if existing is not None:
        existing.update(content)
        return
    for carrier in _carriers(span):
        try:
            setattr(carrier, SIDE_CHANNEL_ATTR, content)
            return
        except (AttributeError, TypeError):  # a dict / NonRecordingSpan: try the next, else nothing reads it
            continue


def read(span: Any) -> dict[str, Any] | None:
    """The content attached to a finished span (or the live span it came from), or ``None``."""
    for carrier in _carriers(span):
        content = getattr(carrier, SIDE_CHANNEL_ATTR, None)
        if content is not None:
            return content
    return None


def render(value: Any) -> str | None:
    """Resolve a side-channel value: call it if lazy; never raises."""
    if value is None or isinstance(value, str):
        return value
    try:
        out = value() if callable(value) else value
    except Exception:  # telemetry never breaks the app; a bad payload becomes a marker
        return '"<unrenderable>"'
    return out if out is None or isinstance(out, str) else str(out)
