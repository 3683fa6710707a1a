"""Pure: the mapped spans of one run → one :class:`RunWrite` (events in order + a summary that agrees).

Event order (sort keys from :mod:`._mapping`): ``run_start`` first and ``human_message`` right after
it; ``run_end`` / ``run_error`` / ``run_interrupted`` last; in between by time, ends before starts at
equal times (a tool starts after the model call that asked for it), ``ai_message`` right after its
``llm_end``, ``summary`` right after its ``summarization`` event.

The ``runs`` row is computed from the same rows that are written: tokens are the sums of the model
calls' usage (so the row, ``run_end``'s roll-up and the ``llm_end`` events always agree),
``message_count`` counts the message rows, ``last_ai_message`` is the last ``ai_message``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from operator import itemgetter
from typing import Any

from ..records import TOKEN_FIELDS, RunEvent, RunRecord, RunWrite, caller_roll_up, utc
from .emitter import G_FIRST, G_LAST, Keyed, MappedSpan, SortKey
from .spanfacts import RootInfo

PREVIEW_CHARS = 500
"""Length of ``input_preview`` (the run's input as recorded in ``run_start``)."""

_ROLLUP_KEYS = TOKEN_FIELDS


def rollup(run: RunRecord) -> dict[str, Any]:
    """The token roll-up of a run as recorded in ``run_end`` metadata."""
    out: dict[str, Any] = {key: getattr(run, key) for key in _ROLLUP_KEYS}
    out["by_caller"] = dict(run.usage_by_caller)
    out["cost_usd"] = run.cost_usd
    out["unpriced_call_count"] = run.unpriced_call_count
    return out


def merge_roots(roots: Sequence[RootInfo], trace_id: str, start_ns: int, end_ns: int) -> RootInfo:
    """One root for a group with several top-level spans (foreign spans without a common root)."""
    if len(roots) == 1:
        return roots[0]
    failed = next((r for r in roots if r.status == "error"), None)
    human = next((r.human_text for r in sorted(roots, key=lambda r: r.start_ns) if r.human_text), None)
    return RootInfo(
        name=roots[0].name if roots else None,
        trace_id=trace_id,
        span_id=None,
        start_ns=start_ns,
        end_ns=end_ns,
        status="error" if failed else "success",
        error_message=failed.error_message if failed else None,
        error_type=failed.error_type if failed else None,
        human_text=human,
    )


def _lifecycle(run: RunRecord, root: RootInfo, start_at: datetime, end_at: datetime) -> list[Keyed]:
    def event(key: SortKey, event_type: str, category: str, text: str | None, meta: dict[str, Any]) -> Keyed:
        created = start_at if key[0] == G_FIRST else end_at
        return key, RunEvent(
            run.thread_id, run.run_id, event_type, category, created, text, meta, root.trace_id, root.span_id
        )

    source = root.human_text if root.human_text is not None else root.input_text
    preview = source[:PREVIEW_CHARS] if source is not None else None
    start_meta: dict[str, Any] = {"name": root.name, "input_preview": preview}
    if root.resumed:
        start_meta["resumed"] = True
    out = [event((G_FIRST, root.start_ns, 0, 0, "", 0), "run_start", "lifecycle", preview, start_meta)]
    if root.human_text:
        key: SortKey = (G_FIRST, root.start_ns, 1, 0, "", 0)
        out.append(event(key, "human_message", "message", root.human_text, {}))
    end_key: SortKey = (G_LAST, root.end_ns, 0, 0, "", 0)
    meta: dict[str, Any] = {"status": root.status, "duration_ms": run.duration_ms, **rollup(run)}
    if root.status == "error":
        meta["error_type"] = root.error_type
        out.append(event(end_key, "run_error", "lifecycle", root.error_message, meta))
    elif root.status == "interrupted":
        out.append(event(end_key, "run_interrupted", "lifecycle", root.interrupt_value, meta))
    else:  # success, or abandoned (the handler's TTL ended the root)
        out.append(event(end_key, "run_end", "lifecycle", None, meta))
    return out


def _add_usage(run: RunRecord, spans: Sequence[MappedSpan]) -> int:
    """Add the model calls' usage to the run's totals; the spans the run's handler made (not the
    duplicates of other instrumentations), counted in the same pass."""
    duplicates = 0
    added: dict[str, int] = {}  # this write's tokens per caller
    for span in spans:
        usage = span.usage
        if usage is None:
            duplicates += span.duplicate
            continue
        total = usage.total_tokens
        run.input_tokens += usage.input_tokens
        run.output_tokens += usage.output_tokens
        run.total_tokens += total
        run.cached_input_tokens += usage.cached_input_tokens
        run.reasoning_tokens += usage.reasoning_tokens
        run.llm_call_count += 1
        cost = span.cost_usd
        if cost is None:
            run.unpriced_call_count += 1
        else:
            run.cost_usd = cost if run.cost_usd is None else run.cost_usd + cost
        added[span.caller] = added.get(span.caller, 0) + total
        duplicates += span.duplicate
    by_caller = run.usage_by_caller
    for caller, tokens in added.items():
        by_caller[caller] = by_caller.get(caller, 0) + tokens
    lead, subagent, middleware = caller_roll_up(added)
    run.lead_agent_tokens += lead
    run.subagent_tokens += subagent
    run.middleware_tokens += middleware
    return len(spans) - duplicates


_sort_key = itemgetter(0)


def _start_ns(span: MappedSpan) -> int:
    return span.start_ns


def _service_name(spans: Sequence[MappedSpan], root: RootInfo | None) -> str | None:
    """The resource's ``service.name`` of the root span (else of the run's first span)."""
    if not spans:
        return None
    chosen = spans[0]
    if root is not None and root.span_id is not None:
        chosen = next((s for s in spans if s.record.span_id == root.span_id), chosen)
    name = chosen.record.resource.get("service.name")
    return str(name) if name else None


def build_write(
    run_id: str,
    thread_id: str,
    spans: Sequence[MappedSpan],
    *,
    root: RootInfo | None,
    status: str,
    prior: RunRecord | None = None,
    spans_before: int = 0,
    announced: int | None = None,
) -> RunWrite:
    """The :class:`RunWrite` for a run's mapped spans.

    ``prior`` is the summary already written for this run (a run written in parts): its totals are
    carried forward and the new row replaces it. ``status`` applies when there is no ``root``.
    ``spans_before``: spans of the run written in earlier parts (``complete`` compares all that
    arrived with the count the root announces; ``announced``: that count, from an earlier part's root,
    for a late part without one).
    """
    if prior is not None:
        run = replace(prior, usage_by_caller=dict(prior.usage_by_caller))
    else:
        run = RunRecord(run_id, thread_id)
    arrived = spans_before + _add_usage(run, spans)
    if root is None:  # its root has not arrived (yet): the totals may be short; or a late part
        if prior is None or prior.status == "running":
            run.complete = False
        elif announced is not None:
            run.complete = arrived >= announced
        # else a late part of a finished run whose span count is not known here: as it was
    else:
        run.complete = None if root.span_count is None else arrived >= root.span_count
    if spans and root is None:
        run.trace_id = run.trace_id or spans[0].record.trace_id
        earliest = min(spans, key=_start_ns)
        first = earliest.record.start_time
        run.started_at = first if run.started_at is None else min(run.started_at, first)
    keyed: list[Keyed] = [k for span in spans for k in span.events]
    if root is None:
        run.status = status
    else:
        start_at = root.start_at if root.start_at is not None else utc(root.start_ns)
        end_at = root.end_at if root.end_at is not None else utc(root.end_ns)
        run.trace_id, run.name, run.status = root.trace_id, root.name, root.status
        run.started_at, run.ended_at = start_at, end_at
        run.duration_ms = (root.end_ns - root.start_ns) / 1e6
        run.error = root.error_message if root.status == "error" else None
        run.first_human_message = run.first_human_message or root.human_text
        keyed.extend(_lifecycle(run, root, start_at, end_at))
    run.service_name = run.service_name or _service_name(spans, root)
    keyed.sort(key=_sort_key)
    events = [event for _, event in keyed]
    for event in events:
        if event.category == "message":
            run.message_count += 1
            if event.event_type == "ai_message":
                run.last_ai_message = event.content
    return RunWrite(run=run, events=events, spans=[s.record for s in spans])
