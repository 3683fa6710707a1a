"""How content travels from the handler to the journal without going onto spans.

By default no content attribute is put on any span, so no exporter (OTLP, console, the user's own)
ever sees prompts or completions. The handler instead attaches content to the SDK span *object* as a
plain Python attribute (``_runjournal_content``) before ending it; the SDK hands that same object
to every processor's ``on_end``, so :class:`~otel_runjournal.RunJournalExporter` reads it there and
nothing else does. The values are captured cheaply (references / shallow copies) on the hot path and
rendered (serialised, redacted, truncated) by the exporter on its own thread.

With ``capture_content=True`` (or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``) the
rendered content is put on the span as the standard ``gen_ai.*`` content attributes instead, and the
exporter reads it from there (as it does for spans of other instrumentations).
"""

from __future__ import annotations

from typing import Any

SIDE_CHANNEL_ATTR = "_runjournal_content"

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


def attach(span: Any, content: dict[str, Any]) -> None:
    """Attach ``content`` (attribute name → raw or rendered value) to an SDK span object."""
    try:
        existing = getattr(span, SIDE_CHANNEL_ATTR, None)
        if existing is None:
            setattr(span, SIDE_CHANNEL_ATTR, content)
        else:
            existing.update(content)
    except AttributeError:  # a non-SDK span (e.g. NonRecordingSpan): nothing will read it
        pass


def read(span: Any) -> dict[str, Any] | None:
    """The content attached to a finished span, or ``None``."""
    return getattr(span, SIDE_CHANNEL_ATTR, None)


def render(value: Any) -> str | None:
    """Resolve a side-channel value: call it if lazy; never raises."""
    if value is None or isinstance(value, str):
        return value
    try:
        out = value() if callable(value) else value
    except Exception:  # telemetry never breaks the app; a bad payload becomes a marker
        return '"<unrenderable>"'
    return out if out is None or isinstance(out, str) else str(out)
