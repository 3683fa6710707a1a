"""Deterministic RunWrite batches for the store tests (also imported by their child processes)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from otel_runjournal.records import RunEvent, RunRecord, RunWrite, SpanRecord

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def make_run(
    run_id: str,
    thread_id: str,
    *,
    start: int = 0,
    messages: int = 2,
    tool_calls: int = 1,
    status: str = "success",
    tokens: tuple[int, int] = (10, 5),
    callers: dict[str, int] | None = None,
    content: str = "",
) -> RunWrite:
    """A finished run: run_start, human_message, llm/tool trace events, ai_messages, run_end, spans.

    ``start`` offsets the timestamps (minutes) so runs order by ``started_at``. Like real spans, the
    trace id is unique per run (derived from the run id) and every event names the span it came from
    (the root, the chat span or the tool span), so stores can tell a batch delivered twice.
    """
    at = T0 + timedelta(minutes=start)
    trace_id = hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    root_id, chat_id, tool_id = "cd" * 8, "ef" * 8, "12" * 8
    tick = [0]

    def ev(
        event_type: str, category: str, text: str | None = None, *, span: str = root_id, **meta: object
    ) -> RunEvent:
        tick[0] += 1
        return RunEvent(
            thread_id=thread_id,
            run_id=run_id,
            event_type=event_type,
            category=category,
            created_at=at + timedelta(milliseconds=tick[0]),
            content=text,
            metadata=dict(meta),
            trace_id=trace_id,
            span_id=span,
        )

    events = [
        ev("run_start", "lifecycle", "hello", name="agent"),
        ev("human_message", "message", f"q {run_id}"),
    ]
    for i in range(tool_calls):
        events += [
            ev("llm_start", "trace", span=chat_id, model_name="m", caller="lead_agent"),
            ev(
                "llm_end",
                "trace",
                "",
                span=chat_id,
                model="m",
                caller="lead_agent",
                usage={"input_tokens": 1},
            ),
            ev("tool_start", "trace", span=tool_id, tool_name="t", tool_call_id=f"c{i}"),
            ev(
                "tool_end",
                "trace",
                f"out {i}",
                span=tool_id,
                tool_name="t",
                tool_call_id=f"c{i}",
                status="success",
            ),
        ]
    for i in range(messages - 1):
        events.append(ev("ai_message", "message", f"answer {i} {content}", model_name="m"))
    events.append(ev("run_end", "lifecycle", None, status=status))
    inp, out = tokens
    callers = callers if callers is not None else {"lead_agent": inp + out}
    run = RunRecord(
        run_id=run_id,
        thread_id=thread_id,
        trace_id=trace_id,
        name="agent",
        status=status,
        started_at=at,
        ended_at=at + timedelta(seconds=1),
        duration_ms=1000.0,
        input_tokens=inp,
        output_tokens=out,
        total_tokens=inp + out,
        llm_call_count=tool_calls + 1,
        lead_agent_tokens=callers.get("lead_agent", 0),
        subagent_tokens=sum(v for k, v in callers.items() if k.startswith("subagent:")),
        middleware_tokens=sum(v for k, v in callers.items() if k.startswith("middleware:")),
        message_count=messages,
        first_human_message=f"q {run_id}",
        last_ai_message="answer",
        error="boom" if status == "error" else None,
        usage_by_caller=dict(callers),
    )
    span = SpanRecord(
        trace_id=trace_id,
        span_id=root_id,
        parent_span_id=None,
        run_id=run_id,
        name="invoke_agent agent",
        kind="INTERNAL",
        start_time=at,
        end_time=at + timedelta(seconds=1),
        duration_ms=1000.0,
        status_code="ERROR" if status == "error" else "OK",
        attributes={"gen_ai.operation.name": "invoke_agent", "runjournal.run_id": run_id},
    )
    chat = SpanRecord(
        trace_id=trace_id,
        span_id=chat_id,
        parent_span_id=root_id,
        run_id=run_id,
        name="chat m",
        kind="CLIENT",
        start_time=at,
        end_time=at + timedelta(milliseconds=200),
        duration_ms=200.0,
        status_code="UNSET",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "m",
            "gen_ai.usage.input_tokens": inp,
            "gen_ai.usage.output_tokens": out,
            "runjournal.caller": "lead_agent",
        },
    )
    tool = SpanRecord(
        trace_id=trace_id,
        span_id=tool_id,
        parent_span_id=root_id,
        run_id=run_id,
        name="execute_tool t",
        kind="INTERNAL",
        start_time=at,
        end_time=at + timedelta(milliseconds=30),
        duration_ms=30.0,
        status_code="UNSET",
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "t"},
    )
    return RunWrite(run=run, events=events, spans=[span, chat, tool])


def aged_run(run_id: str, thread_id: str, days: float, status: str = "success") -> RunWrite:
    """:func:`make_run`, moved to have started ``days`` before now (for retention tests)."""
    unit = make_run(run_id, thread_id, status=status)
    assert unit.run.started_at is not None
    shift = datetime.now(timezone.utc) - timedelta(days=days) - unit.run.started_at
    unit.run.started_at += shift
    if unit.run.ended_at is not None:
        unit.run.ended_at += shift
    for event in unit.events:
        event.created_at += shift
    for span in unit.spans:
        span.start_time += shift
        span.end_time += shift
    return unit
