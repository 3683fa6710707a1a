"""Content rendering: GenAI message JSON, truncation keeping JSON valid, redaction, odd objects."""

from __future__ import annotations

import datetime
import json
import uuid
from dataclasses import dataclass

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel

from otel_runjournal.tracing.serialize import REDACTION_FAILED, TRUNCATION_MARKER, Renderer, snapshot


def test_messages_in_genai_format() -> None:
    """System, human, AI-with-tool-calls and tool messages map to roles and typed parts."""
    messages = [
        SystemMessage("be brief"),
        HumanMessage("weather?"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}]),
        ToolMessage("sunny", tool_call_id="c1", name="get_weather"),
        ("user", "thanks"),
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "bye"}, {"type": "thinking", "thinking": "hm"}],
        },
    ]
    assert json.loads(Renderer(10_000).input_messages(messages)) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "weather?"}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "c1", "response": "sunny"}],
            "name": "get_weather",
        },
        {"role": "user", "parts": [{"type": "text", "content": "thanks"}]},
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "bye"}, {"type": "reasoning", "content": "hm"}],
        },
    ]


def test_output_messages_finish_reasons_normalised() -> None:
    """Provider finish reasons map to the GenAI values; missing ones are inferred."""
    r = Renderer(10_000)
    calls = AIMessage("", tool_calls=[{"name": "t", "args": {}, "id": "x"}])
    out = json.loads(
        r.output_messages([(AIMessage("done"), "end_turn"), (calls, None), ("text", "max_tokens")])
    )
    assert [m["finish_reason"] for m in out] == ["stop", "tool_call", "length"]
    assert out[2] == {
        "role": "assistant",
        "parts": [{"type": "text", "content": "text"}],
        "finish_reason": "length",
    }


def test_run_input_and_output() -> None:
    """Run inputs/outputs with messages render those; anything else becomes one JSON text message."""
    r = Renderer(10_000)
    assert json.loads(r.run_input({"messages": [("user", "hi")]}))[0]["parts"][0]["content"] == "hi"
    assert json.loads(r.run_input("plain"))[0]["parts"][0]["content"] == "plain"
    other = json.loads(r.run_input({"question": "q", "n": 2}))
    assert json.loads(other[0]["parts"][0]["content"]) == {"question": "q", "n": 2}
    out = json.loads(r.run_output({"messages": [HumanMessage("a"), AIMessage("final")]}))
    assert out == [
        {"role": "assistant", "parts": [{"type": "text", "content": "final"}], "finish_reason": "stop"}
    ]


def test_truncation_keeps_json_valid() -> None:
    """Too-long content is cut to the limit with a marker and still parses as JSON."""
    r = Renderer(200)
    rendered = r.input_messages([HumanMessage("a" * 5000), AIMessage("b" * 5000)])
    assert len(rendered) <= 200
    parsed = json.loads(rendered)
    assert [m["role"] for m in parsed] == ["user", "assistant"]
    assert parsed[0]["parts"][0]["content"].endswith(TRUNCATION_MARKER)
    many = r.input_messages([HumanMessage(str(i)) for i in range(500)])  # structure alone too big
    assert len(many) <= 200 and TRUNCATION_MARKER in json.loads(many)
    text = r.text("z" * 1000)
    assert len(text) == 200 and text.endswith(TRUNCATION_MARKER)
    assert r.text("short") == "short"


def test_redaction_everywhere_and_fail_closed() -> None:
    """redact() rewrites every string before recording; a failing redactor hides the value."""
    r = Renderer(10_000, redact=lambda s: s.replace("4111", "****"))
    out = r.input_messages(
        [
            HumanMessage("card 4111"),
            AIMessage("", tool_calls=[{"name": "pay", "args": {"card": "4111", "4111": 1}, "id": "c"}]),
        ]
    )
    assert "4111" not in out and out.count("****") == 3
    assert r.value({"nested": ["4111"]}) == '{"nested":["****"]}'

    def broken(_: str) -> str:
        raise RuntimeError("nope")

    assert (
        json.loads(Renderer(100, redact=broken).input_messages(["secret"]))[0]["parts"][0]["content"]
        == REDACTION_FAILED
    )


class _Model(BaseModel):
    a: int = 1


@dataclass
class _Point:
    x: int


class _Opaque:
    def __repr__(self) -> str:  # never used for rendering
        raise AssertionError("repr must not be called")

    __str__ = __repr__


def test_odd_objects_render_without_repr() -> None:
    """Non-JSON objects render by type (pydantic, dataclass, docs, uuids, bytes) and never via repr."""
    uid = uuid.UUID(int=1)
    value = {
        "model": _Model(),
        "point": _Point(2),
        "doc": Document(page_content="p", metadata={"k": "v"}),
        "id": uid,
        "when": datetime.date(2024, 1, 2),
        "raw": b"abc",
        "opaque": _Opaque(),
        "nan": float("nan"),
        "set": {1},
        3: "int key",
        (1, 2): "tuple key",
    }
    out = json.loads(Renderer(10_000).json(value))
    assert out == {
        "model": {"a": 1},
        "point": {"x": 2},
        "doc": {"page_content": "p", "metadata": {"k": "v"}},
        "id": str(uid),
        "when": "2024-01-02",
        "raw": "<bytes 3>",
        "opaque": "<_Opaque>",
        "nan": "nan",
        "set": [1],
        "3": "int key",
        "<tuple>": "tuple key",
    }
    deep: list[object] = []
    cur = deep
    for _ in range(100):
        nxt: list[object] = []
        cur.append(nxt)
        cur = nxt
    json.loads(Renderer(10_000).json(deep))


def test_tool_values_and_snapshot() -> None:
    """Tool results: strings stay text, tool messages give their content; snapshot copies containers."""
    r = Renderer(10_000)
    assert r.value("plain text") == "plain text"
    assert r.value(ToolMessage("result", tool_call_id="c")) == "result"
    assert r.value({"a": 1}) == '{"a":1}'
    inner = [1]
    original = {"messages": inner}
    copy = snapshot(original)
    inner.append(2)
    assert copy == {"messages": [1]} and snapshot("s") == "s"
