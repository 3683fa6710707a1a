"""Turning journal rows into rich tables (humans) and JSON-ready dicts (scripts) for the CLI."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich import box
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from ..records import RunEvent, RunRecord, TokenUsage

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
    if value is None:
        return ""
    local = value.astimezone()
    same_day = local.date() == datetime.now(local.tzinfo).date()
    return local.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M")


SHORT_ID = 8
"""Characters of a run id shown in tables; the CLI accepts any unique prefix."""

Cell = str | Text


@dataclass(frozen=True)
class Col:
    """A table column: ``cap`` limits its width, ``drop`` > 0 lets it go on narrow terminals (highest
    first), ``flex`` makes it take the remaining width (one per table)."""

    name: str
    justify: JustifyMethod = "left"
    cap: int = 40
    drop: int = 0
    flex: bool = False
    min: int = 16  # the flexible column's smallest useful width


def _text(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text(cell)


def fitted_table(title: str, cols: Sequence[Col], rows: Sequence[Sequence[Cell]], width: int) -> Table:
    """A table whose fixed columns keep their natural width (up to ``cap``); optional columns are
    dropped until it fits ``width``, and the flexible column takes what is left."""

    def natural(i: int) -> int:
        cells = [len(r[i].plain if isinstance(r[i], Text) else r[i]) for r in rows]  # type: ignore[union-attr]
        return min(max([len(cols[i].name), *cells]), cols[i].cap)

    keep = list(range(len(cols)))
    widths = {i: natural(i) for i in keep}

    def needed() -> int:  # column widths + the gaps between columns
        return sum(widths[i] if not cols[i].flex else cols[i].min for i in keep) + 3 * len(keep)

    for i in sorted((i for i in keep if cols[i].drop), key=lambda i: -cols[i].drop):
        if needed() <= width:
            break
        keep.remove(i)
    has_flex = any(cols[i].flex for i in keep)
    table = Table(
        title=Text(title), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, expand=has_flex
    )
    for i in keep:
        col = cols[i]
        if col.flex:
            table.add_column(
                col.name, no_wrap=True, overflow="ellipsis", ratio=1, min_width=col.min, max_width=col.cap
            )
        else:
            table.add_column(
                col.name,
                justify=col.justify,
                no_wrap=True,
                overflow="ellipsis",
                min_width=widths[i],
                max_width=widths[i],
            )
    for row in rows:
        table.add_row(*(_text(row[i]) for i in keep))
    return table


_RUN_COLS = (
    Col("run", cap=SHORT_ID),
    Col("thread", cap=28, drop=2),
    Col("agent", cap=24, drop=3),
    Col("status"),
    Col("started", drop=1),
    Col("duration", "right"),
    Col("llm calls", "right", drop=4),
    Col("tokens", "right"),
    Col("first message / error", cap=60, flex=True, min=30),
)


def runs_table(runs: Sequence[RunRecord], title: str = "Runs", width: int = 120) -> Table:
    """The runs list: one row per run, most recent first (run ids shortened to a unique prefix)."""
    rows: list[list[Cell]] = [
        [
            run.run_id[:SHORT_ID],
            run.thread_id,
            run.name or "",
            Text(run.status, style=_STATUS_STYLE.get(run.status, "")),
            _when(run.started_at),
            _ms(run.duration_ms),
            str(run.llm_call_count),
            f"{run.total_tokens:,}",
            preview(run.error if run.status == "error" else run.first_human_message, 60),
        ]
        for run in runs
    ]
    return fitted_table(title, _RUN_COLS, rows, width)


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


_TIMELINE_COLS = (
    Col("seq", "right"),
    Col("+time", "right", drop=2),
    Col("event", cap=36),
    Col("caller", cap=26),
    Col("duration", "right"),
    Col("tokens in→out", "right"),
    Col("content", cap=60, drop=1, flex=True, min=20),
)


def timeline_table(run: RunRecord, events: Sequence[RunEvent], width: int = 120) -> Table:
    """A run's events in ``seq`` order with offset from the run's start, duration and tokens."""
    start = run.started_at or (events[0].created_at if events else None)
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
        style = _EVENT_STYLE.get(ev.category, "") + _error_style(ev.event_type)
        rows.append(
            [
                str(ev.seq),
                _ms(offset),
                Text.assemble((ev.event_type, style.strip()), " ", _event_subject(ev)),
                str(caller or ""),
                _ms(latency) if isinstance(latency, (int, float)) else "",
                _event_tokens(ev),
                preview(ev.content, 60),
            ]
        )
    title = f"Run {run.run_id} — {run.name or ''} [{run.status}]"
    return fitted_table(title, _TIMELINE_COLS, rows, width)


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
        grid.add_row(key, Text(value))
    return grid


def messages_table(thread_id: str, events: Sequence[RunEvent]) -> Table:
    """A thread's conversation: human / AI / summary messages in order."""
    table = Table(title=Text(f"Thread {thread_id}"), title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("seq", justify="right")
    table.add_column("run id", no_wrap=True)
    table.add_column("who")
    table.add_column("message")
    who = {"human_message": "human", "ai_message": "ai", "summary": "summary"}
    for ev in events:
        table.add_row(str(ev.seq), ev.run_id, who.get(ev.event_type, ev.event_type), Text(ev.content or ""))
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
    table = Table(title=Text(title), title_justify="left", box=box.SIMPLE_HEAD, show_footer=len(rows) > 1)
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
        table.add_row(Text(str(row[key])), *(f"{row.get(c, 0):,}" for c in numeric), f"{value:,}", share)
    return table


def sql_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """Rows of an ad-hoc SQL query, cells rendered as text (``NULL`` for None)."""
    table = Table(box=box.SIMPLE_HEAD, title=f"{len(rows)} row{'s' if len(rows) != 1 else ''}")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text("NULL", style="dim") if v is None else Text(str(v)) for v in row))
    return table
