"""Test helpers for the handler tests: span trees, lookups and rendered side-channel content."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from otel_runjournal import content as _content
from otel_runjournal import semconv as sc


@pytest.fixture(autouse=True)
def journal_content_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Content in the side channel although no journal exporter reads it (imported = autouse there)."""
    monkeypatch.setenv("OTEL_RUNJOURNAL_JOURNAL_CONTENT", "true")
    yield


# Token usage ScriptedChatModel reports for the demo agent with every option off, per model call:
# input = 8 + sum(len(text) // 4 of the messages), output = 4 + len(answer) // 4 + 6 * tool calls.
#   call 1: ["hi there"]                               -> in 8+2=10,       out 4+6=10
#   call 2: + ai("") + tool("It is 21°C and sunny in Paris.") -> in 10+7=17, out 10
#   call 3: + ai("") + tool("43")                       -> in 17,           out 4+99//4=28
#   (the answer to a question the demo has no script for: demo.agent.DEFAULT_ANSWER, 99 characters)
SIMPLE_AGENT_USAGE = {"input": 44, "output": 48, "total": 92, "calls": 3}


def by_name(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    """Spans called ``name``, in start order."""
    return sorted((s for s in spans if s.name == name), key=lambda s: s.start_time or 0)


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    """The single span called ``name``."""
    found = by_name(spans, name)
    assert len(found) == 1, f"expected one {name!r}, got {[s.name for s in spans]}"
    return found[0]


def roots(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """Spans marked as run roots."""
    return [s for s in spans if s.attributes and s.attributes.get(sc.RJ_IS_ROOT)]


def parent_of(spans: Sequence[ReadableSpan], span: ReadableSpan) -> ReadableSpan | None:
    """The finished span that is ``span``'s parent, if any."""
    if span.parent is None:
        return None
    for s in spans:
        if s.context.span_id == span.parent.span_id and s.context.trace_id == span.context.trace_id:
            return s
    return None


def children(spans: Sequence[ReadableSpan], span: ReadableSpan) -> list[ReadableSpan]:
    """Direct children of ``span``, in start order."""
    return sorted(
        (s for s in spans if s.parent is not None and s.parent.span_id == span.context.span_id),
        key=lambda s: s.start_time or 0,
    )


def side(span: ReadableSpan) -> dict[str, Any]:
    """The side-channel content of a finished span, rendered (custom events: data rendered too)."""
    raw = _content.peek(span) or {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == _content.KEY_CUSTOM_EVENTS:
            out[key] = [(name, when, _content.render(data)) for name, when, data in value]
        else:
            out[key] = _content.render(value)
    return out


def assert_one_tree(spans: Sequence[ReadableSpan]) -> None:
    """Every span of these (one trace's) spans reaches the single root through finished parents, and
    all share the root's run id and trace id."""
    run_roots = roots(spans)
    assert len(run_roots) == 1, [s.name for s in run_roots]
    root = run_roots[0]
    ids = {s.context.span_id for s in spans}
    run_id = root.attributes[sc.RJ_RUN_ID]
    for span in spans:
        assert span.context.trace_id == root.context.trace_id
        assert span.attributes[sc.RJ_RUN_ID] == run_id
        if span is not root:
            assert span.parent is not None and span.parent.span_id in ids, span.name


def usage_sum(spans: Sequence[ReadableSpan], caller: str | None = None) -> dict[str, int]:
    """Input/output/total tokens and call count summed over chat spans (of one caller)."""
    total = {"input": 0, "output": 0, "total": 0, "calls": 0}
    for s in spans:
        attrs = s.attributes or {}
        if sc.GEN_AI_USAGE_INPUT_TOKENS not in attrs:
            continue
        if caller is not None and attrs.get(sc.RJ_CALLER) != caller:
            continue
        total["input"] += attrs[sc.GEN_AI_USAGE_INPUT_TOKENS]
        total["output"] += attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS]
        total["total"] += attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] + attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS]
        total["calls"] += 1
    return total


def rollup(root: ReadableSpan) -> dict[str, int]:
    """The root span's token roll-up in the shape of :func:`usage_sum`."""
    a = root.attributes
    return {
        "input": a[sc.RJ_USAGE_INPUT_TOKENS],
        "output": a[sc.RJ_USAGE_OUTPUT_TOKENS],
        "total": a[sc.RJ_USAGE_TOTAL_TOKENS],
        "calls": a[sc.RJ_LLM_CALL_COUNT],
    }


def by_caller(root: ReadableSpan) -> dict[str, int]:
    """The root's ``runjournal.usage.by_caller`` JSON, parsed."""
    return json.loads(root.attributes[sc.RJ_USAGE_BY_CALLER])  # type: ignore[no-any-return]
