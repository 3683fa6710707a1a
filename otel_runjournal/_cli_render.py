"""Turning journal rows into rich tables (humans) and JSON-ready dicts (scripts) for the CLI."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from ._records import RunEvent, RunRecord, TokenUsage

_STATUS_STYLE = {
    "success": "green",
    "error": "bold red",
    "running": "yellow",
    "interrupted": "magenta",
    "abandoned": "dim",
}
_EVENT_STYLE = {"lifecycle": "bold", "message": "cyan", "trace": ""}


def to_jsonable(value: Any) -> Any:
    """Dataclasses, datetimes and containers → plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def preview(text: str | None, width: int = 60) -> str:
    """One line of at most ``width`` characters."""
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


def runs_table(runs: Sequence[RunRecord], title: str = "Runs") -> Table:
    """The runs list: one row per run, most recent first."""
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("run id", "left"),
        ("thread", "left"),
        ("name", "left"),
        ("status", "left"),
        ("started", "left"),
        ("duration", "right"),
        ("llm calls", "right"),
        ("tokens", "right"),
        ("first message", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name in ("run id", "status"))  # type: ignore[arg-type]
    for run in runs:
        status = Text(run.status, style=_STATUS_STYLE.get(run.status, ""))
        table.add_row(
            run.run_id,
            run.thread_id,
            run.name or "",
            status,
            _when(run.started_at),
            _ms(run.duration_ms),
            str(run.llm_call_count),
            f"{run.total_tokens:,}",
            preview(run.first_human_message if run.status != "error" else run.error, 40),
        )
    return table


def _event_tokens(event: RunEvent) -> str:
    usage = event.metadata.get("usage")
    if not isinstance(usage, dict):
        return ""
    total = usage.get("total_tokens") or (usage.get("input_tokens") or 0) + (usage.get("output_tokens") or 0)
    return f"{usage.get('input_tokens', 0)}→{usage.get('output_tokens', 0)} ({total})"


def _event_subject(event: RunEvent) -> str:
    meta = event.metadata
    for key in ("tool_name", "model", "model_name", "retriever_name", "name"):
        value = meta.get(key)
        if value:
            return str(value)
    return ""


def timeline_table(run: RunRecord, events: Sequence[RunEvent]) -> Table:
    """A run's events in ``seq`` order with offset from the run's start, duration and tokens."""
    table = Table(title=f"Run {run.run_id} — {run.name or ''} [{run.status}]", title_justify="left")
    table.add_column("seq", justify="right")
    table.add_column("+time", justify="right")
    table.add_column("event", no_wrap=True)
    table.add_column("what")
    table.add_column("caller")
    table.add_column("duration", justify="right")
    table.add_column("tokens in→out", justify="right")
    table.add_column("content")
    start = run.started_at or (events[0].created_at if events else None)
    for ev in events:
        offset = (ev.created_at - start).total_seconds() * 1000 if start else None
        latency = ev.metadata.get("latency_ms", ev.metadata.get("duration_ms"))
        table.add_row(
            str(ev.seq),
            _ms(offset),
            Text(ev.event_type, style=_EVENT_STYLE.get(ev.category, "") + _error_style(ev.event_type)),
            _event_subject(ev),
            str(ev.metadata.get("caller") or ""),
            _ms(latency) if isinstance(latency, (int, float)) else "",
            _event_tokens(ev),
            preview(ev.content, 48),
        )
    return table


def _error_style(event_type: str) -> str:
    return " red" if event_type.endswith("_error") else ""


def run_summary(run: RunRecord) -> Table:
    """Key facts about one run, as a two-column grid."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows: list[tuple[str, str]] = [
        ("thread", run.thread_id),
        ("trace id", run.trace_id or ""),
        ("status", run.status),
        ("duration", _ms(run.duration_ms)),
        ("llm calls", str(run.llm_call_count)),
        (
            "tokens",
            f"{run.total_tokens:,} (in {run.input_tokens:,}, out {run.output_tokens:,}, "
            f"cached {run.cached_input_tokens:,}, reasoning {run.reasoning_tokens:,})",
        ),
    ]
    if run.error:
        rows.append(("error", preview(run.error, 100)))
    for key, value in rows:
        grid.add_row(key, value)
    return grid


def messages_table(thread_id: str, events: Sequence[RunEvent]) -> Table:
    """A thread's conversation: human / AI / summary messages in order."""
    table = Table(title=f"Thread {thread_id}", title_justify="left", show_lines=True)
    table.add_column("seq", justify="right")
    table.add_column("run id", no_wrap=True)
    table.add_column("who")
    table.add_column("message")
    who = {"human_message": "human", "ai_message": "ai", "summary": "summary"}
    for ev in events:
        table.add_row(str(ev.seq), ev.run_id, who.get(ev.event_type, ev.event_type), ev.content or "")
    return table


TokenRow = dict[str, Any]


def usage_rows_by_caller(usage: TokenUsage) -> list[TokenRow]:
    """Rows ``{caller, total_tokens}`` from a :class:`TokenUsage` split, largest first."""
    split = dict(usage.by_caller)
    if not split:
        split = {
            "lead_agent": usage.lead_agent_tokens,
            "subagent": usage.subagent_tokens,
            "middleware": usage.middleware_tokens,
        }
    rows = [{"caller": k, "total_tokens": v} for k, v in split.items() if v]
    return sorted(rows, key=lambda r: -r["total_tokens"])


def tokens_table(rows: Iterable[TokenRow], key: str, title: str) -> Table:
    """A token table grouped by ``key`` with a share column and a total row."""
    rows = list(rows)
    total = sum(int(r.get("total_tokens") or 0) for r in rows)
    table = Table(title=title, title_justify="left", show_footer=len(rows) > 1)
    table.add_column(key, footer="total")
    numeric = [c for c in ("runs", "llm_calls", "input_tokens", "output_tokens") if any(c in r for r in rows)]
    for column in numeric:
        table.add_column(
            column.replace("_", " "), justify="right", footer=f"{sum(r.get(column, 0) for r in rows):,}"
        )
    table.add_column("total tokens", justify="right", footer=f"{total:,}")
    table.add_column("share", justify="right")
    for row in rows:
        value = int(row.get("total_tokens") or 0)
        share = f"{100 * value / total:.0f}%" if total else ""
        table.add_row(str(row[key]), *(f"{row.get(c, 0):,}" for c in numeric), f"{value:,}", share)
    return table
