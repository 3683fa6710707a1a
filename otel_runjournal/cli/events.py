"""A run's journal events as a table (one line each, or whole with ``wide``) and one event in full."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from ..records import RunEvent, RunRecord
from .render import WIDE, Cell, Col, fitted_table
from .values import duration, preview

_EVENT_STYLE = {"lifecycle": "bold", "message": "cyan", "trace": ""}


def _event_tokens(event: RunEvent) -> str:
    usage = event.metadata.get("usage")
    if not isinstance(usage, dict):
        return ""
    return f"{usage.get('input_tokens', 0)}→{usage.get('output_tokens', 0)}"


def _event_subject(event: RunEvent) -> str:
    meta = event.metadata
    for key in ("tool_name", "model", "model_name", "retriever_name", "name"):
        value = meta.get(key)
        if value:
            return str(value)
    return ""


_EVENT_COLS = (
    Col("seq", "right", key=True),
    Col("+time", "right", drop=2),
    Col("event", cap=22),
    Col("caller", cap=26),
    Col("took", "right", drop=1),
    Col("tokens", "right", drop=3),
    Col("content", flex=True, min=16, cap=100),
)
_EVENT_COLS_WIDE = (*_EVENT_COLS[:-1], Col("content", flex=True, min=16, cap=100_000, wrap=True))


def _compact(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def event_content(event: RunEvent) -> str:
    """What an event row shows as content: its text, else a tool call's arguments, else the tool
    calls a model asked for (``name(arguments)``)."""
    if event.content:
        return event.content
    meta = event.metadata
    if event.event_type == "tool_start" and meta.get("args") is not None:
        return _compact(meta["args"])
    calls = meta.get("tool_calls")
    if isinstance(calls, list) and calls:
        shown = []
        for call in calls:
            if isinstance(call, dict):
                shown.append(
                    f"{call.get('name', '?')}({_compact(call.get('arguments', call.get('args', '')))})"
                )
        return "→ " + ", ".join(shown)
    return ""


def events_table(
    run: RunRecord, events: Sequence[RunEvent], title: str, width: int = 80, wide: bool = False
) -> Table:
    """A run's events in ``seq`` order: offset from the run's start, caller, duration, tokens in→out,
    content (one line, or whole and wrapped when ``wide``)."""
    start = run.started_at or (events[0].created_at if events else None)
    name_caller = short_caller if width < WIDE else str
    caller_of_span: dict[str, str] = {}
    rows: list[list[Cell]] = []
    for ev in events:
        caller = ev.metadata.get("caller")
        if caller and ev.span_id:
            caller_of_span[ev.span_id] = str(caller)
        elif ev.span_id and ev.category == "trace":  # *_end rows: the caller of their *_start
            caller = caller_of_span.get(ev.span_id)
        offset = (ev.created_at - start).total_seconds() * 1000 if start else None
        latency = ev.metadata.get("latency_ms", ev.metadata.get("duration_ms"))
        style = (
            _EVENT_STYLE.get(ev.category, "") + (" red" if ev.event_type.endswith("_error") else "")
        ).strip()
        subject = _event_subject(ev)
        content = event_content(ev)
        rows.append(
            [
                str(ev.seq),
                duration(offset),
                Text.assemble((ev.event_type, style), " " + subject if subject else ""),
                "" if caller in (None, "lead_agent") else name_caller(str(caller)),
                duration(latency) if isinstance(latency, (int, float)) else "",
                _event_tokens(ev),
                content if wide else preview(content, 100),
            ]
        )
    return fitted_table(title, _EVENT_COLS_WIDE if wide else _EVENT_COLS, rows, width)


def event_detail(event: RunEvent) -> list[Any]:
    """One event whole: its fields, its content unabridged, its metadata as indented JSON."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in (
        ("seq", str(event.seq)),
        ("event", event.event_type),
        ("category", event.category),
        ("at", event.created_at.isoformat()),
        ("run", event.run_id),
        ("thread", event.thread_id),
        ("trace id", event.trace_id or ""),
        ("span id", event.span_id or ""),
    ):
        grid.add_row(key, Text(value))
    out: list[Any] = [grid]
    if event.content is not None:
        out += [Text("content", style="bold"), Text(event.content)]
    if event.metadata:
        body = json.dumps(event.metadata, indent=2, ensure_ascii=False, default=str)
        out += [Text("metadata", style="bold"), Text(body)]
    return out


def short_caller(caller: str) -> str:
    """``middleware:X`` → ``mw:X``, ``subagent:X`` → ``sub:X`` (narrow columns; the names stay whole)."""
    return caller.replace("middleware:", "mw:", 1).replace("subagent:", "sub:", 1)
