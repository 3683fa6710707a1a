"""Small content limits truncate and never drop: the demo agent journaled through configure() into DuckDB
at several limits keeps every row, each message text a prefix of the full one, and no JSON in a string."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from otel_runjournal.demo.agent import build_agent
from otel_runjournal.demo.model import ScriptedChatModel
from otel_runjournal.records import RunEvent, RunRecord
from otel_runjournal.tracing.serialize import TRUNCATION_MARKER
from otel_runjournal.wiring import configure

SHORT_QUESTION = "What's the weather in Paris, and what is 6*7+1?"
LONG_QUESTION = "Plan a rainy-day trip to Lisbon with museums, cafés and a tram ride. " * 4
MESSAGE_TYPES = ("human_message", "ai_message", "summary")


def _journal(
    tmp_path: Path, name: str, limit: int | None
) -> dict[str, list[tuple[RunRecord, list[RunEvent]]]]:
    """Run the scenario into a fresh DuckDB journal; per thread, its runs (oldest first) and their events.

    Thread ``short``: an agent answering "OK" (2 characters); thread ``demo``: the full demo agent
    (tool calls, a failing tool, a subagent, the summarising middleware) asked a short then a long
    question.
    """
    wired = configure(tmp_path / f"{name}.duckdb", content_max_length=limit, set_global=False)
    try:
        short = build_agent(
            ScriptedChatModel(answer="OK"), subagent=False, failing_tool=False, middleware=False
        )
        demo = build_agent()
        for thread, agent, question in (
            ("short", short, SHORT_QUESTION),
            ("demo", demo, SHORT_QUESTION),
            ("demo", demo, LONG_QUESTION),
        ):
            config: Any = {"callbacks": [wired.handler], "configurable": {"thread_id": thread}}
            agent.invoke({"messages": [HumanMessage(question)]}, config)
        assert wired.force_flush()
        out: dict[str, list[tuple[RunRecord, list[RunEvent]]]] = {}
        for thread in ("short", "demo"):
            runs = sorted(wired.store.list_runs(thread_id=thread), key=lambda r: r.started_at or 0)
            out[thread] = [(run, wired.store.list_events(run.run_id)) for run in runs]
        return out
    finally:
        wired.shutdown()


def _is_cut_from(text: str | None, full: str | None) -> bool:
    """``text`` is ``full``, or a prefix of it followed by the truncation marker."""
    if text is None or full is None:
        return text is full
    if text == full:
        return True
    return text.endswith(TRUNCATION_MARKER) and full.startswith(text[: -len(TRUNCATION_MARKER)])


def _json_of(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _json_in_a_string(text: str) -> bool:
    """Whether ``text`` is a JSON string whose value is itself (the start of) JSON: double encoding."""
    value = _json_of(text)
    return isinstance(value, str) and value.lstrip()[:1] in ("[", "{")


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[RunRecord, list[RunEvent]]]]:
    """The scenario with the default limit (nothing cut): the reference."""
    return _journal(tmp_path_factory.mktemp("full"), "full", None)


@pytest.mark.parametrize("limit", [20, 50, 200])
def test_small_limits_truncate_and_never_drop(
    limit: int, full: dict[str, list[tuple[RunRecord, list[RunEvent]]]], tmp_path: Path
) -> None:
    """At limits 20, 50 and 200 every journal row of the reference is there in the same order, every
    message / run_start text is the full text or a prefix of it plus the marker, the runs rows keep
    their first human and last AI message, and no content is a JSON string holding JSON."""
    small = _journal(tmp_path, f"limit{limit}", limit)
    cut = 0
    for thread, runs in full.items():
        assert len(small[thread]) == len(runs)
        for (ref_run, ref_events), (run, events) in zip(runs, small[thread], strict=True):
            assert [e.event_type for e in events] == [e.event_type for e in ref_events]
            for ref, event in zip(ref_events, events, strict=True):
                assert (event.content is None) == (ref.content is None), event.event_type
                if event.content is None or ref.content is None:
                    continue
                assert not _json_in_a_string(event.content), (event.event_type, event.content)
                ref_json = _json_of(ref.content)
                if isinstance(ref_json, (dict, list)):  # JSON content stays JSON of the same shape
                    assert type(_json_of(event.content)) is type(ref_json), (event.event_type, event.content)
                else:
                    assert _is_cut_from(event.content, ref.content), (event.event_type, event.content)
                if event.event_type in (*MESSAGE_TYPES, "run_start"):
                    assert len(event.content) <= max(limit, len(TRUNCATION_MARKER)), event.content
                    cut += event.content != ref.content
            assert run.message_count == ref_run.message_count > 0
            assert _is_cut_from(run.first_human_message, ref_run.first_human_message)
            assert _is_cut_from(run.last_ai_message, ref_run.last_ai_message)
            assert run.last_ai_message  # never dropped, however short the limit
    assert cut > 0  # the limit did cut something (the long question at least)
    [(_, events)] = small["short"]
    assert [(e.event_type, e.content) for e in events if e.event_type in MESSAGE_TYPES] == [
        ("human_message", SHORT_QUESTION if limit >= len(SHORT_QUESTION) else _cut(SHORT_QUESTION, limit)),
        ("ai_message", "OK"),
    ]


def _cut(text: str, limit: int) -> str:
    return text[: limit - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER


def test_limit_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, full: dict[str, list[tuple[RunRecord, list[RunEvent]]]], tmp_path: Path
) -> None:
    """OTEL_RUNJOURNAL_CONTENT_MAX_LENGTH=50 (the issue's setting): the 2-character answer and its
    ai_message are journaled, run_start holds the question's text, not escaped JSON."""
    monkeypatch.setenv("OTEL_RUNJOURNAL_CONTENT_MAX_LENGTH", "50")
    small = _journal(tmp_path, "env", None)
    [(run, events)] = small["short"]
    by_type = {e.event_type: e.content for e in events}
    assert by_type["run_start"] == SHORT_QUESTION == run.first_human_message
    assert by_type["ai_message"] == "OK" == run.last_ai_message
    [(_, long_events)] = [runs[1] for runs in [small["demo"]]]
    first_human = next(e.content for e in long_events if e.event_type == "human_message")
    assert first_human == _cut(LONG_QUESTION, 50)
