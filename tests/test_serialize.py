"""Content rendering: GenAI message JSON, truncation keeping JSON valid, redaction, odd objects."""

from __future__ import annotations

import datetime
import json
import uuid
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
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
    """Too-long content is cut to the limit with a marker (the longest first); the messages JSON keeps
    every message and its structure, never becomes a JSON string."""
    r = Renderer(200)
    rendered = r.input_messages([HumanMessage("a" * 5000), AIMessage("b" * 5000), HumanMessage("c" * 9)])
    parsed = json.loads(rendered)
    assert [m["role"] for m in parsed] == ["user", "assistant", "user"]
    texts = [m["parts"][0]["content"] for m in parsed]
    # 200 - 9 left for the two long texts: 95 each, the marker included
    assert texts[0] == "a" * 83 + TRUNCATION_MARKER and texts[1] == "b" * 83 + TRUNCATION_MARKER
    assert texts[2] == "c" * 9  # short text is kept whole
    assert sum(map(len, texts)) <= 200
    # structure over the limit and texts shorter than the marker: every message kept, nothing to cut
    many = json.loads(r.input_messages([HumanMessage(str(i)) for i in range(500)]))
    assert [m["parts"][0]["content"] for m in many] == [str(i) for i in range(500)]
    text = r.text("z" * 1000)
    assert len(text) == 200 and text.endswith(TRUNCATION_MARKER)
    assert r.text("short") == "short"
    # a limit below the marker's length: the marker alone, unless it is longer than what it would replace
    assert Renderer(5).text("z" * 100) == TRUNCATION_MARKER and Renderer(5).text("abcdefgh") == "abcdefgh"


def test_json_values_keep_structure_and_cut_content() -> None:
    """A JSON value over the limit keeps its keys and numbers and cuts its strings; containers are
    shortened (first items, then a marker) only when the structure alone is over the limit and 256."""
    r = Renderer(50)
    assert json.loads(r.json({"expression": "6*7+1"})) == {"expression": "6*7+1"}
    cut = json.loads(r.json({"summary": "s" * 300, "replaced_count": 5}))
    assert cut == {"summary": "s" * 38 + TRUNCATION_MARKER, "replaced_count": 5}
    rendered = r.json(list(range(1000)))
    shortened = json.loads(rendered)
    assert shortened == [*range(len(shortened) - 1), TRUNCATION_MARKER] and len(rendered) <= 256 + 50
    assert len(shortened) > 50  # the structure keeps its 256 characters at a small limit
    assert json.loads(Renderer(1).json({"k": "v" * 40})) == {"k": TRUNCATION_MARKER}
    nested = json.loads(Renderer(10).json({"rows": [{"id": i, "tags": ["x"] * 50} for i in range(50)]}))
    assert list(nested) == ["rows"] and nested["rows"][-1] == TRUNCATION_MARKER
    assert nested["rows"][0]["id"] == 0 and nested["rows"][0]["tags"][-1] == TRUNCATION_MARKER


@settings(max_examples=200, deadline=None)
@given(
    turns=st.lists(st.tuples(st.sampled_from(["human", "ai", "system"]), st.text(max_size=300)), max_size=8),
    limit=st.integers(min_value=1, max_value=400),
)
def test_truncated_messages_keep_every_message(turns: list[tuple[str, str]], limit: int) -> None:
    """At any limit every message keeps its role and its text is whole or a prefix plus the marker; the
    texts together fit the limit unless what is left is shorter than the marker."""
    rendered = Renderer(limit).input_messages(turns)
    parsed = json.loads(rendered)
    roles = {"human": "user", "ai": "assistant", "system": "system"}
    assert [m["role"] for m in parsed] == [roles[role] for role, _ in turns]
    texts = [m["parts"][0]["content"] if m["parts"] else "" for m in parsed]
    for text, (_, full) in zip(texts, turns, strict=True):
        assert text == full or (
            text.endswith(TRUNCATION_MARKER) and full.startswith(text[: -len(TRUNCATION_MARKER)])
        )
    if sum(map(len, texts)) > limit:
        assert all(text in (full, TRUNCATION_MARKER) for text, (_, full) in zip(texts, turns, strict=True))
        assert all(len(text) <= len(TRUNCATION_MARKER) for text in texts)


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
