"""Where one span's events are collected: the keyed event list, the span's content, and the sort keys
that let :mod:`.runwrite` order a run's events by time with deterministic tie-breaks."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext

from .. import content as _content
from .. import genai_json as gj
from .. import semconv as sc
from ..records import UTC_FAST_US, RunEvent, SpanRecord, utc
from .spanfacts import RootInfo, Usage, error_of

_from_timestamp = datetime.fromtimestamp
_UTC = timezone.utc

SortKey = tuple[int, int, int, int, str, int]
"""(group, time ns, rank, span start ns, span id, sub). Group: run_start / human_message first,
body, run end last. Rank at equal times: span ends before span starts (a tool starts after the model
call that asked for it), then point events; a span's own start always precedes its end (zero-length
spans put the end on the start's key with a large ``sub``); ``ai_message`` / ``summary`` take the key
of their ``llm_end`` / ``summarization`` event with ``sub + 1``."""
G_FIRST, G_BODY, G_LAST = 0, 1, 2
R_END, R_START, R_POINT = 0, 1, 2
Keyed = tuple[SortKey, RunEvent]


@dataclass(slots=True)
class MappedSpan:
    """One span's contribution to its run: rows, usage and (for possible roots) root facts."""

    record: SpanRecord
    start_ns: int = 0
    end_ns: int = 0
    events: list[Keyed] = field(default_factory=list)
    caller: str = sc.CALLER_LEAD_AGENT
    usage: Usage | None = None  # set on model-call spans (also failed ones: they count as calls)
    root: RootInfo | None = None  # set on handler roots, candidates and foreign agent / workflow spans
    is_root: bool = False  # the handler marked it as its run's root
    duplicate: bool = False  # another instrumentation's span of a call ours owns (counts nothing)
    cost_usd: float | None = None  # a model call's cost; None: unpriced (or not a model call)


class SpanContent:
    """A span's content: what the handler handed over (:mod:`..content`), then the gen_ai.* attributes."""

    __slots__ = ("_attrs", "_side", "enabled")

    def __init__(self, ctx: SpanContext | None, enabled: bool, attrs: Mapping[str, Any]) -> None:
        self.enabled = enabled
        # taken even when not recorded: nothing else would drop it
        side = None if ctx is None else _content.REGISTRY.take((ctx.trace_id, ctx.span_id))
        if enabled:
            self._side: Mapping[str, Any] = side or {}
            self._attrs: Mapping[str, Any] = attrs
        else:
            self._side = self._attrs = {}

    def get(self, key: str) -> str | None:
        if key in self._side:
            return _content.render(self._side[key])
        value = self._attrs.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, (tuple, list)):  # a foreign instrumentation's array attribute
            return json.dumps(list(value))
        return None

    def parsed(self, key: str) -> tuple[Any, str | None]:
        """``(value, text)``: the content's text and what it parses to (:data:`gj.NOT_JSON` for plain
        text, ``None`` without content); read from the handler's rendering where it kept it."""
        side = self._side.get(key)
        if type(side) is _content.Parsed:
            found = _content.render_parsed(side)
            if found is not None:
                return found
        text = self.get(key)
        return (None, None) if text is None else (gj.load(text), text)

    def raw(self, key: str) -> Any:
        return self._side.get(key)


def end_at(mapped: MappedSpan) -> datetime:
    """``utc(mapped.end_ns)``, taken from the row (whose end is the span's, even before its start)."""
    record = mapped.record
    return record.end_time if record.end_time > record.start_time else record.start_time


class Emitter(SpanContent):
    """Collects one span's keyed events; knows the span's start / end keys and its error. It is also the
    span's :class:`SpanContent` (one object per span with events, not two)."""

    __slots__ = (
        "end_at",
        "end_key",
        "error_message",
        "error_type",
        "events",
        "failed",
        "latency_ms",
        "mapped",
        "run_id",
        "span_id",
        "start_at",
        "start_key",
        "thread_id",
        "trace_id",
    )

    def __init__(
        self,
        span: ReadableSpan,
        mapped: MappedSpan,
        run_id: str,
        thread_id: str,
        attrs: Mapping[str, Any],
        events: Sequence[Any],
        ctx: SpanContext | None,
        with_content: bool,
    ) -> None:
        super().__init__(ctx, with_content, attrs)
        self.mapped, self.run_id, self.thread_id, self.events = mapped, run_id, thread_id, events
        record = mapped.record
        self.trace_id = record.trace_id
        span_id = self.span_id = record.span_id
        self.start_at, self.end_at = record.start_time, end_at(mapped)
        start, end = mapped.start_ns, mapped.end_ns
        self.start_key: SortKey = (G_BODY, start, R_START, start, span_id, 0)
        # the end sorts before starts at the same instant, but never before its own start
        self.end_key: SortKey = (
            (G_BODY, end, R_END, start, span_id, 0)
            if end > start
            else (G_BODY, start, R_START, start, span_id, 1_000_000)
        )
        self.latency_ms = (end - start) / 1e6
        failed = self.failed = record.status_code == "ERROR"  # the span's StatusCode.ERROR
        self.error_message, self.error_type = error_of(span, attrs, events) if failed else (None, None)

    def emit(
        self, key: SortKey, event_type: str, category: str, text: str | None, meta: dict[str, Any]
    ) -> None:
        at = key[1]
        mapped = self.mapped
        if at == mapped.start_ns:
            created = self.start_at
        elif at == mapped.end_ns:
            created = self.end_at
        else:
            us = at // 1000  # records.utc, its fast path inline
            created = _from_timestamp(us / 1e6, _UTC) if 0 <= us < UTC_FAST_US else utc(at)
        mapped.events.append(
            (
                key,
                RunEvent(
                    self.thread_id,
                    self.run_id,
                    event_type,
                    category,
                    created,
                    text,
                    meta,
                    self.trace_id,
                    self.span_id,
                ),
            )
        )
