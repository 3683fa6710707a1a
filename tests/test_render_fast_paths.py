"""The exporter's fast paths give exactly what the general paths give (rendering and content JSON)."""

from __future__ import annotations

import json
from collections.abc import Mapping
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


class _Chat(BaseModel, extra="allow"):
    """A message-like model with a custom role (LangChain's ``ChatMessage`` shape)."""

    content: Any = ""
    type: str = "chat"
    role: str = "critic"


_MESSAGES: list[Any] = [
    HumanMessage("What is the weather in Paris?", name="bob"),
    HumanMessage("x", tool_calls=[{"name": "extra", "args": {}, "id": "e1"}]),  # an extra field
    AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris", "n": 2**70}, "id": "c1"}]),
    AIMessage([{"type": "text", "text": "a"}, {"type": "reasoning", "reasoning": "r"}, {"type": "image"}]),
    ToolMessage("It is 21°C", tool_call_id="c1"),
    ToolMessage("r", tool_call_id="c2", extra_thing=3),
    _Chat(content="yo"),
    ("human", "tuple message"),
    {"role": "assistant", "content": "dict message", "tool_calls": [{"id": "d", "function": {"name": "f"}}]},
    "plain \ud800 text",
]


def _old_message(renderer: Renderer, m: Any) -> Any:
    """What the general path (``getattr`` per field) renders for a message object."""

    class _Opaque:  # the same fields behind attribute access only (no instance dict to read)
        __slots__ = ("content", "name", "role", "tool_call_id", "tool_calls", "type")

    if not isinstance(m, BaseModel):
        return renderer._message(m)
    opaque = _Opaque()
    for field in _Opaque.__slots__:
        value = _attr(m, field)
        if value is not None or field in ("content", "type"):
            setattr(opaque, field, value)
    return renderer._message(opaque)


@pytest.mark.parametrize("message", _MESSAGES, ids=range(len(_MESSAGES)))
def test_message_fields_fast_path_reads_what_getattr_reads(message: Any) -> None:
    """A pydantic message read from its instance dict renders as reading each field with getattr does."""
    renderer = Renderer(4000)
    assert renderer._message(message) == _old_message(renderer, message)


@pytest.mark.parametrize("limit", [4000, 40, 5])
@pytest.mark.parametrize("redact", [None, str.upper])
def test_parsed_renderings_are_what_their_json_parses_to(limit: int, redact: Any) -> None:
    """Each ``*_data`` rendering gives the text of its plain rendering and exactly the value that text
    parses to (the journal reads that value instead of parsing the text back), truncated or not."""
    renderer = Renderer(limit, redact)
    outputs = [(m, finish) for m, finish in zip(_MESSAGES, ["stop", None, "tool_use", 7] * 3, strict=False)]
    values: list[Any] = [
        {"city": "Paris", "big": 2**70, "nan": float("nan"), "t": (1, 2), 3: {"deep": [None, True]}},
        "a plain string argument",
        '{"json": "in a string", "n": 12345678901234567890123}',
        ["x" * 50, {"k": "y" * 50}],
        None,
        ToolMessage("result text", tool_call_id="z"),
    ]
    cases: list[tuple[Any, Any, Any]] = [
        (renderer.output_messages_data, renderer.output_messages, outputs),
        (renderer.input_messages_data, renderer.input_messages, _MESSAGES),
        (renderer.run_input_data, renderer.run_input, {"messages": _MESSAGES}),
        (renderer.run_input_data, renderer.run_input, {"question": "not messages", "n": 1}),
        *[(renderer.value_data, renderer.value, v) for v in values],
    ]
    for with_data, plain, value in cases:
        data, text = with_data(value)
        assert text == plain(value)
        expected = gj.load(text)
        assert repr(data) == repr(expected), (value, text)
        if expected is gj.NOT_JSON:  # plain text (a tool's string argument): the journal keeps it as text
            assert gj.parse(text) is None


class _MappingModel(BaseModel, Mapping[str, Any]):  # type: ignore[misc]
    """A pydantic model that is also a Mapping: the renderer reads it as a mapping, not by its fields."""

    type: str = "ai"
    content: str = "from the fields"

    def __getitem__(self, key: str) -> Any:
        return {"role": "user", "content": "from the mapping"}[key]

    def __iter__(self) -> Any:
        return iter(("role", "content"))

    def __len__(self) -> int:
        return 2


def test_a_pydantic_mapping_message_renders_as_a_mapping() -> None:
    """The message-fields fast path (tried before the Mapping branch) leaves a pydantic Mapping to it."""
    message = _MappingModel()
    renderer = Renderer(1000)
    assert json.loads(renderer.input_messages([message])) == [
        {"role": "user", "parts": [{"type": "text", "content": "from the mapping"}]}
    ]
    assert renderer.input_messages([message]) == renderer.input_messages([dict(message.items())])
