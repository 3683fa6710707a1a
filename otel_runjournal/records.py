"""The row types shared by the mapping, the exporter and the stores (see DESIGN.md "RunEvents", "Store")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from . import semconv as sc

Category = Literal["lifecycle", "trace", "message"]
RunStatus = Literal["running", "success", "error", "interrupted", "abandoned"]

CATEGORIES: tuple[str, ...] = ("lifecycle", "trace", "message")
RUN_STATUSES: tuple[str, ...] = ("running", "success", "error", "interrupted", "abandoned")
TOKEN_FIELDS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "llm_call_count",
    "lead_agent_tokens",
    "subagent_tokens",
    "middleware_tokens",
)
"""The token counters a ``runs`` row and :class:`TokenUsage` share (summed over runs)."""


@dataclass(slots=True)
class RunEvent:
    """One journal row. ``seq`` is 0 until a store assigns it on write."""

    thread_id: str
    run_id: str
    event_type: str
    category: str
    created_at: datetime  # timezone-aware, UTC
    content: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    trace_id: str | None = None  # 32 lowercase hex
    span_id: str | None = None  # 16 lowercase hex
    seq: int = 0


@dataclass(slots=True)
class RunRecord:
    """One ``runs`` row: the summary of a run."""

    run_id: str
    thread_id: str
    trace_id: str | None = None
    name: str | None = None
    status: str = "running"
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    llm_call_count: int = 0
    lead_agent_tokens: int = 0
    subagent_tokens: int = 0
    middleware_tokens: int = 0
    message_count: int = 0
    first_human_message: str | None = None
    last_ai_message: str | None = None
    error: str | None = None
    # extension beyond DESIGN.md: total tokens per caller ("lead_agent", "subagent:NAME", ...)
    usage_by_caller: dict[str, int] = field(default_factory=dict)
    # the resource's ``service.name`` of the run's root span (a served journal mixes applications)
    service_name: str | None = None
    cost_usd: float | None = None  # the priced calls' cost; None when no call could be priced (never 0)
    unpriced_call_count: int = 0  # model calls no price table or user price knew
    # False: spans of the run never arrived (dropped by a full queue, a sampler, a crash) or its root
    # never did; None: unknown (no span count announced, e.g. other instrumentations' runs)
    complete: bool | None = None


@dataclass(slots=True)
class SpanRecord:
    """One ``spans`` row: enough to rebuild a trace tree locally."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    run_id: str
    name: str
    kind: str  # "INTERNAL", "CLIENT", ...
    start_time: datetime
    end_time: datetime
    duration_ms: float
    status_code: str  # "UNSET", "OK", "ERROR"
    status_message: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RunWrite:
    """One unit a store writes atomically: a run's summary (upserted by ``run_id``), its new events in
    time order (the store assigns ``seq`` in this order, after any the run's thread already has) and
    its spans."""

    run: RunRecord
    events: list[RunEvent] = field(default_factory=list)
    spans: list[SpanRecord] = field(default_factory=list)


@dataclass(slots=True)
class TokenUsage:
    """Token totals over the selected runs and their split by caller."""

    run_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    llm_call_count: int = 0
    lead_agent_tokens: int = 0
    subagent_tokens: int = 0
    middleware_tokens: int = 0
    by_caller: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None  # None when no selected run has a priced call
    unpriced_call_count: int = 0


def caller_roll_up(by_caller: Mapping[str, int]) -> tuple[int, int, int]:
    """A per-caller token breakdown rolled up into the run's columns: ``(lead_agent, subagent,
    middleware)`` tokens (``subagent:NAME`` and ``middleware:NAME`` callers; everything else is the
    lead agent's)."""
    lead = subagent = middleware = 0
    for caller, tokens in by_caller.items():
        if caller.startswith(sc.CALLER_SUBAGENT_PREFIX):
            subagent += tokens
        elif caller.startswith(sc.CALLER_MIDDLEWARE_PREFIX):
            middleware += tokens
        else:
            lead += tokens
    return lead, subagent, middleware


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
UTC_FAST_US = 2**33 * 1_000_000
"""Below this many microseconds since the epoch (year 2242) ``us / 1e6`` is within 0.5 us of the truth:
:func:`utc` takes its fast path there (the journal's mapping inlines that path)."""
_from_timestamp = datetime.fromtimestamp
_UTC = timezone.utc


def utc(ns: int) -> datetime:
    """Nanoseconds since the epoch → aware UTC datetime (microsecond precision, exact)."""
    us = ns // 1000
    if 0 <= us < UTC_FAST_US:  # the fast path; rounding to the microsecond makes it exact
        return _from_timestamp(us / 1e6, _UTC)
    return _EPOCH + timedelta(microseconds=us)
