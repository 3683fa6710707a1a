"""The exporter's fast paths give exactly what the general paths give (rendering and content JSON)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import BaseModel, PrivateAttr

from otel_runjournal import genai_json as gj
from otel_runjournal.tracing.serialize import Renderer, _attr


class _Private(BaseModel):
    x: int = 1
    _secret: int = PrivateAttr(default=3)


class _Extra(BaseModel, extra="allow"):
    content: str = "c"
    type: str = "human"


@pytest.mark.parametrize(
    ("obj", "name"),
    [
        (HumanMessage("hi"), "tool_calls"),  # a model lacking it: the fast path
        (HumanMessage("hi"), "tool_call_id"),
        (HumanMessage("hi", tool_calls=[{"name": "t"}]), "tool_calls"),  # an extra
        (AIMessage("a", tool_calls=[{"name": "t", "args": {}, "id": "1"}]), "tool_calls"),  # a field
        (ToolMessage("r", tool_call_id="c1"), "tool_call_id"),
        (_Private(), "_secret"),  # a private attribute
        (_Private(), "model_fields_set"),  # a class attribute
        (_Extra.model_validate({"tool_call_id": "q"}), "tool_call_id"),
        (_Extra(), "nothing"),
        ("text", "tool_calls"),  # not a model
    ],
)
def test_attr_reads_what_getattr_reads(obj: Any, name: str) -> None:
    """``_attr`` equals ``getattr(obj, name, None)``, also for extras, private and class attributes."""
    assert _attr(obj, name) == getattr(obj, name, None)


class _Custom(BaseModel):
    content: str = "c"

    def __getattr__(self, name: str) -> Any:  # a model answering every name itself
        return f"custom {name}"


def test_attr_leaves_a_custom_getattr_alone() -> None:
    """A model with its own ``__getattr__`` is read through it (no fast path)."""
    assert _attr(_Custom(), "tool_calls") == getattr(_Custom(), "tool_calls", None) == "custom tool_calls"


def test_attr_sees_an_instance_dict_entry() -> None:
    """An attribute set on the instance itself (not a field, not an extra) is read as getattr reads it."""
    message = HumanMessage("hi")
    object.__setattr__(message, "tool_call_id", "set")  # lands in the instance dict
    assert _attr(message, "tool_call_id") == getattr(message, "tool_call_id", None) == "set"


@pytest.mark.parametrize("redact", [None, str.upper])
def test_dict_fast_path_keys(redact: Any) -> None:
    """Plain dicts (fast path) render as other mappings do: keys converted, redacted, in order."""
    value = {"a": 1, 2: "b", 2.5: [1, "c"], True: None, ("t",): "tuple key", "z": {"n": "x"}}

    class _Mapping(dict[Any, Any]):
        pass

    renderer = Renderer(4000, redact)
    assert renderer.json(value) == renderer.json(_Mapping(value))
    expected = {"a": 1, "2": "b", "2.5": [1, "c"], "True": None, "<tuple>": "tuple key", "z": {"n": "x"}}
    if redact is not None:
        expected = {"A": 1, "2": "B", "2.5": [1, "C"], "TRUE": None, "<tuple>": "TUPLE KEY", "Z": {"N": "X"}}
    assert json.loads(renderer.json(value)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "It is 21°C and sunny",
        "Infinity and beyond",
        "Infinity",
        "  -Infinity",
        "NaN",
        "\t\n null",
        "nothing",
        "",
        "   ",
        "\ufeff[1]",
        "\v[1]",
        "[1, 2]",
        " 1234567890123456789012",
        '{"a": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]}',
        '{"id": 18446744073709551616, "b": "\\ud800"}',
        '"\ud800"',
    ],
)
def test_parse_agrees_with_json_loads(text: str) -> None:
    """``parse`` gives exactly what ``json.loads`` gives (``None`` where it refuses), fast paths included."""
    try:
        expected = json.loads(text)
    except ValueError:
        expected = None
    assert repr(gj.parse(text)) == repr(expected)
