"""Journal rows → rich tables that fit the terminal (80 columns when piped), and JSON-ready values.

Fitting rules: a *key* column (what tells rows apart: a run id as shown, a thread id, a model) is never
cut; optional columns go first on narrow terminals (highest ``drop`` first); the *flexible* column
(a message preview) takes what is left, or goes when less than its minimum is left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from ..records import RunEvent, RunRecord
from .values import count, duration, number, preview, usd, when

STATUS_STYLE = {
    "success": "green",
    "error": "bold red",
    "running": "yellow",
    "interrupted": "magenta",
    "abandoned": "dim",
}
GAP = 2
WIDE = 100
"""From this width on, callers are written out (``middleware:X``); below it ``mw:X`` / ``sub:X``."""
"""Spaces between columns (the table's right padding plus its blank divider)."""

Cell = str | Text
Shorten = Callable[[str], str]


@dataclass(frozen=True)
class Col:
    """A column: ``key`` ones are never cut; ``drop`` > 0 may go on narrow terminals (highest first);
    ``flex`` takes the remaining width (one per table, at least ``min``); others are capped at ``cap``."""

    name: str
    justify: JustifyMethod = "left"
    key: bool = False
    cap: int = 40
    drop: int = 0
    flex: bool = False
    min: int = 16
    wrap: bool = False  # the flexible column folds onto more lines instead of ending in "…"


def _as_text(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text(cell)


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _table(title: str) -> Table:
    """An empty table in the CLI's style: bold title on the left, a rule under the header, no edges."""
    return Table(
        title=Text(title, style="bold"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        show_edge=False,
    )


def fitted_table(title: str, cols: Sequence[Col], rows: Sequence[Sequence[Cell]], width: int) -> Table:
    """A table of at most ``width`` columns following the fitting rules of this module."""

    def natural(i: int) -> int:
        size = max([len(cols[i].name), *(len(_plain(r[i])) for r in rows)])
        return size if cols[i].key or cols[i].flex else min(size, cols[i].cap)

    keep = list(range(len(cols)))
    widths = {i: natural(i) for i in keep}

    def needed() -> int:
        return sum(cols[i].min if cols[i].flex else widths[i] for i in keep) + GAP * (len(keep) - 1) + 1

    for i in sorted((i for i in keep if cols[i].drop), key=lambda i: -cols[i].drop):
        if needed() <= width:
            break
        keep.remove(i)
    flex = [i for i in keep if cols[i].flex]
    spare = width - (needed() - sum(cols[i].min for i in flex))
    if flex and spare < cols[flex[0]].min:
        keep.remove(flex[0])
        flex = []
    table = _table(title)
    for i in keep:
        col = cols[i]
        size = min(widths[i], spare) if col.flex else widths[i]
        table.add_column(
            col.name,
            justify=col.justify,
            no_wrap=not col.wrap,
            overflow="fold" if col.wrap else "ellipsis",
            min_width=size if not col.flex else min(col.min, size),
            max_width=size,
        )
    for row in rows:
        table.add_row(*(_as_text(row[i]) for i in keep))
    return table


_RUN_COLS = (
    Col("run", key=True),
    Col("started", key=True),
    Col("status", key=True),
    Col("duration", "right"),
    Col("tokens", "right"),
    Col("cost", "right", drop=2),
    Col("thread", cap=36, drop=1),
    Col("agent", cap=24, drop=3),
    Col("calls", "right", drop=4),
    Col("first message", flex=True, min=14, cap=80),
)


def runs_table(
    runs: Sequence[RunRecord],
    short: Shorten,
    title: str = "Runs",
    width: int = 80,
    short_thread: Shorten | None = None,
) -> Table:
    """The runs list: one row per run, most recent first, ids as ``short`` (threads as
    ``short_thread``) shows them. The first message is the run's first human message, also for a
    failed run (the status column says it failed; a run with no message shows its error)."""
    same_day = all(len(when(r.started_at)) <= 8 for r in runs)
    agents = {r.name or "" for r in runs}
    thread = short_thread or str
    cols: tuple[Col, ...] = _RUN_COLS
    if len(agents) == 1 and runs:  # one agent: named once in the title, its column's width goes to others
        title = f"{title} · agent {agents.pop() or '(unnamed)'}"
        cols = tuple(c for c in cols if c.name != "agent")
    rows: list[list[Cell]] = [
        [
            short(run.run_id),
            when(run.started_at, same_day),
            Text(run.status + ("!" if run.complete is False else ""), style=STATUS_STYLE.get(run.status, "")),
            duration(run.duration_ms),
            count(run.total_tokens),
            usd(run.cost_usd, run.unpriced_call_count),
            thread(run.thread_id),
            run.name or "",
            str(run.llm_call_count),
            _first_message(run),
        ]
        for run in runs
    ]
    if cols is not _RUN_COLS:
        rows = [row[:7] + row[8:] for row in rows]
    return fitted_table(title, cols, rows, width)


def _first_message(run: RunRecord) -> Cell:
    if run.first_human_message:
        return preview(run.first_human_message, 200)
    if run.error:
        return Text(preview(run.error, 200), style="red")
    return ""


def run_summary(run: RunRecord, trace_url: str | None = None) -> Table:
    """Key facts about one run, as a two-column grid (with a link to the trace when ``trace_url``, a
    template with ``{trace_id}``, is given)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows: list[tuple[str, str]] = [
        ("run", run.run_id),
        ("thread", run.thread_id),
        ("trace id", run.trace_id or ""),
        *((("trace", trace_url.replace("{trace_id}", run.trace_id)),) if trace_url and run.trace_id else ()),
        *((("service", run.service_name),) if run.service_name else ()),
        ("status", run.status),
        ("duration", duration(run.duration_ms)),
        ("llm calls", str(run.llm_call_count)),
        (
            "tokens",
            f"{run.total_tokens:,} (in {run.input_tokens:,}, out {run.output_tokens:,}, "
            f"cached {run.cached_input_tokens:,}, reasoning {run.reasoning_tokens:,})",
        ),
    ]
    cost = usd(run.cost_usd, run.unpriced_call_count)
    if run.unpriced_call_count:
        cost += f" ({run.unpriced_call_count} of {run.llm_call_count} calls unpriced)"
    rows.append(("cost", cost))
    if run.complete is False:
        rows.append(("complete", "no: some of its spans never reached the journal (totals may be short)"))
    if run.error:
        rows.append(("error", preview(run.error, 200)))
    for key, value in rows:
        grid.add_row(key, Text(value))
    return grid


_MESSAGE_COLS = (
    Col("seq", "right", key=True),
    Col("run", key=True, drop=1),
    Col("who", key=True),
    Col("message", flex=True, min=20, cap=10_000, wrap=True),
)


def messages_table(thread_id: str, events: Sequence[RunEvent], short: Shorten, width: int = 80) -> Table:
    """A thread's conversation: human / AI / summary messages in order, whole (wrapped)."""
    who = {"human_message": "human", "ai_message": "ai", "summary": "summary"}
    rows: list[list[Cell]] = [
        [str(ev.seq), short(ev.run_id), who.get(ev.event_type, ev.event_type), ev.content or ""]
        for ev in events
    ]
    return fitted_table(f"Thread {thread_id}", _MESSAGE_COLS, rows, width)


TokenRow = dict[str, Any]


_TOKEN_NUMBERS = (("runs", "runs"), ("llm_calls", "calls"), ("input_tokens", "in"), ("output_tokens", "out"))


def tokens_table(
    rows: Iterable[TokenRow], key: str, title: str, width: int = 80, short: Shorten | None = None
) -> Table:
    """A token table grouped by ``key``: counts, total, share, and a total row when there are several."""
    rows = list(rows)
    total = sum(int(r.get("total_tokens") or 0) for r in rows)
    numeric = [(c, label) for c, label in _TOKEN_NUMBERS if any(c in r for r in rows)]
    cols = [Col(key, key=True), *(Col(label, "right", key=True) for _, label in numeric)]
    cols += [Col("total", "right", key=True), Col("share", "right", key=True)]
    costed = any("cost_usd" in r for r in rows)
    priced = [float(r["cost_usd"]) for r in rows if r.get("cost_usd") is not None]
    cost_total = sum(priced) if priced else None
    if costed:
        cols += [Col("cost", "right", key=True), Col("cost %", "right", drop=1)]
    cells: list[list[Cell]] = []
    for row in rows:
        value = int(row.get("total_tokens") or 0)
        name = str(row[key])
        line: list[Cell] = [
            short(name) if short else name,
            *(count(int(row.get(c) or 0)) for c, _ in numeric),
            count(value),
            f"{100 * value / total:.0f}%" if total else "",
        ]
        if costed:
            cost = row.get("cost_usd")
            line += [
                usd(cost, int(row.get("unpriced_calls") or 0)),
                f"{100 * cost / cost_total:.0f}%" if cost is not None and cost_total else "",
            ]
        cells.append(line)
    if len(rows) > 1:
        line = [
            Text("total", style="bold"),
            *(count(sum(int(r.get(c) or 0) for r in rows)) for c, _ in numeric),
            count(total),
            "",
        ]
        if costed:
            line += [usd(cost_total, sum(int(r.get("unpriced_calls") or 0) for r in rows)), ""]
        cells.append(line)
    return fitted_table(title, cols, cells, width)


def _sql_cell(value: Any) -> Text:
    if value is None:
        return Text("NULL", style="dim")
    return Text(number(value) if isinstance(value, float) else str(value))


def sql_output(columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int = 80) -> list[Any]:
    """Renderables for an ad-hoc query: a table when it fits ``width``, else one block per record
    (``column  value`` lines, long values folded) so nothing is cut."""
    title = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    natural = [max([len(c), *(len(_sql_cell(r[i]).plain) for r in rows)]) for i, c in enumerate(columns)]
    if sum(natural) + GAP * (len(columns) - 1) + 1 <= width or not rows:
        table = _table(title)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(_sql_cell(v) for v in row))
        return [table]
    name_width = min(max(len(c) for c in columns), max(12, width // 3))
    out: list[Any] = [Text(title, style="bold")]
    for n, row in enumerate(rows, 1):
        block = Table.grid(padding=(0, 2, 0, 0))
        block.add_column(style="bold", no_wrap=True, overflow="fold", max_width=name_width)
        block.add_column(overflow="fold")
        for column, value in zip(columns, row, strict=True):
            block.add_row(column, _sql_cell(value))
        out += [Text(f"-- record {n} --", style="dim"), block]
    return out
