"""Reading GenAI content JSON (``gen_ai.input.messages`` / ``gen_ai.output.messages``) leniently.

The conventions' format is ``[{"role": ..., "parts": [{"type": "text", "content": ...},
{"type": "tool_call", "id": ..., "name": ..., "arguments": ...}], "finish_reason": ...}]``; older and
foreign instrumentations put ``content`` on the message, or plain text instead of JSON. Nothing here
raises on malformed input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def parse(text: str | None) -> Any:
    """``json.loads`` or ``None``."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def messages(text: str | None) -> list[dict[str, Any]]:
    """The message objects of a messages JSON (a single object counts as one message)."""
    data = parse(text)
    if isinstance(data, dict):
        data = [data]
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []


def message_text(message: Mapping[str, Any]) -> str:
    """The text parts of one message, joined."""
    parts = message.get("parts")
    if isinstance(parts, list):
        return "".join(
            p["content"]
            for p in parts
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("content"), str)
        )
    content = message.get("content")  # older / foreign formats
    return content if isinstance(content, str) else ""


def human_text(input_content: str | None) -> str | None:
    """Text of the first user message of an input-messages JSON (plain text is returned as is)."""
    if input_content is None:
        return None
    found = messages(input_content)
    if not found and parse(input_content) is None:
        return input_content
    for message in found:
        if message.get("role") in ("user", "human"):
            return message_text(message)
    return None


def output(text: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Response text and tool calls (``{"id", "name", "args"}``) of an output-messages JSON."""
    if text is None:
        return "", []
    found = messages(text)
    if not found:
        return (text if parse(text) is None else ""), []
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for message in found:
        texts.append(message_text(message))
        for part in message.get("parts") or ():
            if isinstance(part, dict) and part.get("type") == "tool_call":
                calls.append({"id": part.get("id"), "name": part.get("name"), "args": part.get("arguments")})
    return "".join(texts), calls
