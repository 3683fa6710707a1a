"""Reading GenAI content JSON (``gen_ai.input.messages`` / ``gen_ai.output.messages``) leniently.

The conventions' format is ``[{"role": ..., "parts": [{"type": "text", "content": ...},
{"type": "tool_call", "id": ..., "name": ..., "arguments": ...}], "finish_reason": ...}]``; older and
foreign instrumentations put ``content`` on the message, or plain text instead of JSON. Nothing here
raises on malformed input. Each text is parsed at most once, with ``orjson``; the standard library's
parser reads what orjson refuses (``NaN``, lone surrogates) or reads inexactly (integers beyond 64
bits), with the same results as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import orjson

_NOT_JSON: Any = object()
NOT_JSON = _NOT_JSON  # what load() gives for a text that is not JSON
_JSON_STARTS = frozenset('[{"-0123456789')
_JSON_WORDS = ("true", "false", "null", "NaN", "Infinity")  # what else a JSON text may start with
_SPACE = " \t\n\r"
_LONG_DIGITS = re.compile(r"[0-9]{19}")
_DIGITS = b"0123456789"


def _may_have_long_int(text: str) -> bool:
    """Whether ``text`` has a run of 19 digits (one that orjson might read inexactly). A text with
    fewer than 19 digits in all cannot (counting them in bytes is ~6x faster than the regex)."""
    try:
        data = text.encode()
    except UnicodeEncodeError:  # lone surrogates: orjson refuses the text anyway
        return True
    return len(data) - len(data.translate(None, _DIGITS)) >= 19 and _LONG_DIGITS.search(text) is not None


def _load(text: str) -> Any:
    """The value of a JSON text, or :data:`_NOT_JSON`."""
    if text[:1] not in _JSON_STARTS:  # cheap: plain text is never JSON (nor does orjson read it)
        text_start = text.lstrip(_SPACE)
        if text_start[:1] not in _JSON_STARTS and not text_start.startswith(_JSON_WORDS):
            return _NOT_JSON
    if not _may_have_long_int(text):  # orjson reads integers beyond 64 bits as floats
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


def parse(text: str | None) -> Any:
    """``json.loads`` or ``None``."""
    if text is None:
        return None
    data = _load(text)
    return None if data is _NOT_JSON else data


def _messages(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        return [data]
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []


def messages(text: str | None) -> list[dict[str, Any]]:
    """The message objects of a messages JSON (a single object counts as one message)."""
    return _messages(parse(text))


def message_text(message: Mapping[str, Any]) -> str:
    """The text parts of one message, joined."""
    parts = message.get("parts")
    if isinstance(parts, list):
        texts = []
        for p in parts:
            if isinstance(p, dict) and p.get("type") == "text":
                content = p.get("content")
                if isinstance(content, str):
                    texts.append(content)
        return texts[0] if len(texts) == 1 else "".join(texts)
    content = message.get("content")  # older / foreign formats
    return content if isinstance(content, str) else ""


def load(text: str) -> Any:
    """The value of a JSON text, or :data:`NOT_JSON` (what the ``*_of`` readers take)."""
    return _load(text)


def human_text(input_content: str | None) -> str | None:
    """Text of the first user message of an input-messages JSON (plain text is returned as is)."""
    if input_content is None:
        return None
    return human_text_of(input_content, _load(input_content))


def human_text_of(input_content: str, data: Any) -> str | None:
    """:func:`human_text` of a text whose value (:func:`load`) is ``data``."""
    if data is _NOT_JSON or data is None:
        return input_content
    for message in _messages(data):
        if message.get("role") in ("user", "human"):
            return message_text(message)
    return None


def output(text: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Response text and tool calls (``{"id", "name", "args"}``) of an output-messages JSON."""
    if text is None:
        return "", []
    return output_of(text, _load(text))


def output_of(text: str, data: Any) -> tuple[str, list[dict[str, Any]]]:
    """:func:`output` of a text whose value (:func:`load`) is ``data``."""
    if data is _NOT_JSON or data is None:
        return text, []
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for message in _messages(data):
        parts = message.get("parts")
        if not isinstance(parts, list):  # no tool calls then (a JSON string / object has no dict items)
            texts.append(message_text(message))
            continue
        found = []  # message_text and the tool calls in one pass over the parts
        for part in parts:
            if isinstance(part, dict):
                kind = part.get("type")
                if kind == "text":
                    content = part.get("content")
                    if isinstance(content, str):
                        found.append(content)
                elif kind == "tool_call":
                    calls.append(
                        {"id": part.get("id"), "name": part.get("name"), "args": part.get("arguments")}
                    )
        texts.append(found[0] if len(found) == 1 else "".join(found))
    return "".join(texts), calls
