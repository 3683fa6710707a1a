"""``demo``: run the bundled offline agent into a journal and show what was recorded."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from typing import Any

import click
from rich.markup import escape

from ..stores.base import StoreError
from . import events as event_view
from . import render, values
from .options import json_option, store_location, store_option
from .reading import all_events, id_shortener, journal_run_ids, open_for_reading
from .tokens import rows_by_call


def program(argv0: str | None = None, python: str | None = None) -> str:
    """This command as the user can type it again: ``otel-runjournal`` when that is on PATH and is
    this one, else the path it was started by (``.venv/bin/otel-runjournal``), or ``python -m
    otel_runjournal`` with the interpreter's path when started that way."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    name = os.path.basename(argv0)
    if name == "__main__.py" and os.path.basename(os.path.dirname(argv0)) == "otel_runjournal":
        interpreter = python or sys.executable
        found = shutil.which("python")
        same = found is not None and os.path.realpath(found) == os.path.realpath(interpreter)
        return f"{'python' if same else _short_path(interpreter)} -m otel_runjournal"
    if name != "otel-runjournal":  # started some other way (a test runner): the documented name
        return "otel-runjournal"
    found = shutil.which(name)
    if found is not None and os.path.realpath(found) == os.path.realpath(argv0):
        return name
    return _short_path(argv0)


def _short_path(path: str) -> str:
    """``path`` relative to the working directory when that is shorter (and stays below it)."""
    relative = os.path.relpath(path) if os.path.isabs(path) else path
    if relative.startswith(".."):
        return path
    return relative if "/" in relative else f"./{relative}"


class _Progress:
    """Progress of the demo's runs on stderr: a live bar on a terminal, a line per quarter otherwise
    (``--runs 100`` takes a while; it should not look stuck)."""

    def __init__(self, total: int) -> None:
        from rich.console import Console

        self.total, self.done = total, 0
        self.console = Console(stderr=True)
        self._lock = threading.Lock()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("running the demo agent"), BarColumn(), MofNCompleteColumn(),
                console=self.console, transient=True,
            )  # fmt: skip
            self._bar.start()
            self._task = self._bar.add_task("runs", total=self.total)
        elif self.total >= QUIET_BELOW:
            self.console.print(f"running the demo agent {self.total} times…", highlight=False)
        return self

    def advance(self) -> None:
        with self._lock:
            self.done += 1
            done = self.done
        if self._bar is not None:
            self._bar.advance(self._task)
        elif self.total >= QUIET_BELOW and done < self.total and done % max(1, self.total // 4) == 0:
            self.console.print(f"  {done}/{self.total} runs", highlight=False)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


QUIET_BELOW = 20
"""Fewer runs than this finish in a second or two: no progress lines when not on a terminal."""


@click.command(short_help="Run the offline demo agent into a journal and show it.")
@store_option
@json_option
@click.option(
    "--runs",
    "run_count",
    type=click.IntRange(1, 100),
    default=6,
    show_default=True,
    help="Successful runs to make (spread over 2 threads), plus one failing run.",
)
def demo(store: str | None, as_json: bool, run_count: int) -> None:
    """Run the bundled offline LangGraph agent, journal it, and show what was recorded.

    With OTEL_EXPORTER_OTLP_ENDPOINT set, the same traces are also exported over OTLP (e.g. to Jaeger).
    """
    from ..stores.location import split_location
    from .demo_run import run_demo
    from .timeline import build_tree
    from .timeline import render as draw

    location = store_location(store)
    try:
        split_location(location)  # malformed locations fail before any work
        with _Progress(run_count + 1) as progress:
            result = run_demo(location, runs=run_count, progress=progress.advance)
    except (StoreError, ValueError) as exc:
        raise click.ClickException(f"the demo could not write the run journal {location!r}: {exc}") from None
    with open_for_reading(location) as st:
        run_rows = [r for r in (st.get_run(rid) for rid in result.run_ids) if r is not None]
        shown = next((r for r in run_rows if r.status == "success"), run_rows[0] if run_rows else None)
        list_spans = getattr(st, "list_spans", None)
        spans = list_spans(shown.run_id) if shown is not None and list_spans is not None else []
        events = all_events(st, shown.run_id) if shown is not None and not spans else []
        by_caller = rows_by_call(st, result.run_ids, "caller")  # tokens and cost, from the events
        universe = journal_run_ids(st)
        can_sql = hasattr(st, "query")
    roots = build_tree(spans)
    if as_json:
        values.echo_json(
            {
                "store": location,
                "runs": run_rows,
                "spans": [r.as_dict() for r in roots],
                "tokens_by_caller": by_caller,
                "otlp_endpoint": result.otlp_endpoint,
            }
        )
        return
    out = values.console()
    out.print(
        f"[bold]otel-runjournal demo[/]: {len(run_rows)} runs of the offline agent "
        f"'research_assistant' on {result.thread_count} threads → journal [cyan]{escape(location)}[/]"
    )
    if result.otlp_endpoint:
        out.print(f"Traces also exported over OTLP to [cyan]{escape(result.otlp_endpoint)}[/]")
    out.print()
    short = id_shortener(universe, [r.run_id for r in run_rows])
    newest_first = sorted(
        run_rows, key=lambda r: r.started_at.timestamp() if r.started_at else 0.0, reverse=True
    )
    out.print(render.runs_table(newest_first, short, "Runs recorded", width=out.width))
    if shown is not None:
        out.print()
        out.print(f"[bold]Run {escape(short(shown.run_id))}[/] as a timeline of its spans")
        if roots:
            for line in draw(roots, out.width):
                out.print(line, no_wrap=True, overflow="ellipsis", crop=True)
        else:
            out.print(event_view.events_table(shown, events, "Events", width=out.width))
    out.print()
    out.print(render.tokens_table(by_caller, "caller", "Tokens by caller (this demo)", width=out.width))
    flag = "" if store is None else f" --store {location}"
    prog = program()
    hints = []
    if shown is not None:
        hints += [
            f"{prog} show {short(shown.run_id)}{flag}",
            f"{prog} show {short(shown.run_id)} --events{flag}",
            f"{prog} messages {shown.thread_id}{flag}",
        ]
    hints += [f"{prog} runs --since 1h{flag}", f"{prog} tokens --by model{flag}"]
    if can_sql:
        hints.append(f'{prog} sql "select * from tokens_by_model"{flag}')
    out.print()
    out.print("[bold]Next:[/]")
    for hint in hints:
        out.print(f"  {hint}", markup=False, highlight=False, no_wrap=True, crop=False, overflow="ignore")
