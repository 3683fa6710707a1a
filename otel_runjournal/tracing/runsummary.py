"""The run's summary as the ``runs`` row will hold it, made by the handler the moment the root ends.

The journal computes its ``runs`` row later, on the exporter's thread, from the finished spans; the
application often wants the same numbers at once (to update its own run record before ``invoke``
returns). So the handler keeps the few facts the row needs while the run goes (token sums per
caller, model calls including failed ones, the texts that become message rows) and builds a
:class:`~otel_runjournal.RunRecord` with the journal's own rules: totals are input + output, a
failed model call counts as a call, message rows are the first human message, every ``lead_agent``
answer with text and every summary. No I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import StatusCode

from .. import semconv as sc
from ..pricing import Pricer, span_cost
from ..records import RunRecord, caller_roll_up, utc
from .registry import RootState

_logger = logging.getLogger(__name__)

OnRunEnd = Callable[[RunRecord], Any]


def run_name(span_name: str) -> str:
    """A run's name from its root span's name (``invoke_agent boss`` → ``boss``), as the journal does."""
    first, _, rest = span_name.partition(" ")
    return rest if first in sc.KNOWN_OPERATIONS and rest else span_name


def summary(root: RootState, span: Any, pricer: Pricer | None = None) -> RunRecord:
    """The ``runs`` row of a run whose root ``span`` just ended (its cost priced by ``pricer``, with
    the journal's own pricing function: the same number the ``runs`` row will hold)."""
    if span.attributes.get(sc.RJ_ABANDONED):
        status = "abandoned"
    elif root.interrupted:
        status = "interrupted"
    elif span.status.status_code is StatusCode.ERROR:
        status = "error"
    else:
        status = "success"
    start, end = span.start_time or 0, span.end_time or 0
    end = max(end, start)
    record = RunRecord(
        run_id=root.run_key,
        thread_id=root.thread_id,
        trace_id=span.get_span_context().trace_id.to_bytes(16, "big").hex(),
        name=root.name,
        status=status,
        started_at=utc(start),
        ended_at=utc(end),
        duration_ms=(end - start) / 1e6,
        input_tokens=root.input_tokens,
        output_tokens=root.output_tokens,
        total_tokens=root.total_tokens,
        cached_input_tokens=root.cache_read_tokens,
        reasoning_tokens=root.reasoning_tokens,
        llm_call_count=root.llm_calls,
        message_count=(1 if root.human_text else 0) + root.ai_messages + root.summaries,
        first_human_message=root.human_text,
        last_ai_message=root.last_ai,
        error=span.status.description if status == "error" else None,
        usage_by_caller=dict(root.by_caller),
        service_name=_service_name(span),
        # every span the run announced has ended here; the journal's row says False only when some of
        # them never reached it (a full queue, a sampler, a crash), which the handler cannot see
        complete=True,
    )
    record.lead_agent_tokens, record.subagent_tokens, record.middleware_tokens = caller_roll_up(
        record.usage_by_caller
    )
    if pricer is not None:
        for model_span in root.model_spans:
            cost = span_cost(pricer, model_span)
            if cost is None:
                record.unpriced_call_count += 1
            else:
                record.cost_usd = cost if record.cost_usd is None else record.cost_usd + cost
    return record


def _service_name(span: Any) -> str | None:
    """The ``service.name`` of the span's resource, as the journal records it."""
    resource = getattr(span, "resource", None)
    name = resource.attributes.get("service.name") if resource is not None else None
    return str(name) if name else None


def deliver(callback: OnRunEnd, root: RootState, span: Any, pricer: Pricer | None = None) -> None:
    """Call the application's ``on_run_end``; whatever it raises is logged and swallowed (it is the
    application's code, not telemetry's, but it must not break the run it reports on)."""
    try:
        callback(summary(root, span, pricer))
    except Exception:
        _logger.exception("on_run_end raised; the run itself completed (run %s)", root.run_key)
