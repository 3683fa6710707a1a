"""``runs`` (the list) and ``show RUN`` (one run: its span timeline, or its events)."""

from __future__ import annotations

import click
from rich.text import Text

from ..records import RUN_STATUSES
from . import render, values
from .options import json_option, limit_option, store_location, store_option
from .reading import all_events, id_shortener, journal_run_ids, open_for_reading, resolve_run


@click.command(short_help="List runs, most recent first.")
@store_option
@json_option
@limit_option
@click.option("--thread", "thread_id", default=None, help="Only runs of this thread.")
@click.option("--status", type=click.Choice(RUN_STATUSES), default=None, help="Only runs with this status.")
def runs(store: str | None, as_json: bool, limit: int, thread_id: str | None, status: str | None) -> None:
    """List runs, most recent first (ids as short as the journal allows; `show` accepts them)."""
    with open_for_reading(store_location(store)) as st:
        rows = st.list_runs(thread_id=thread_id, status=status, limit=limit)
        universe = journal_run_ids(st) if rows and not as_json else []
    if as_json:
        values.echo_json(rows)
        return
    out = values.console()
    short = id_shortener(universe, [r.run_id for r in rows])
    out.print(render.runs_table(rows, short, width=out.width))
    if any(r.complete is False for r in rows):
        out.print(values.INCOMPLETE_NOTE, style="dim")


@click.command(short_help="One run as a timeline of its spans (or its events).")
@click.argument("run_id")
@store_option
@json_option
@click.option("--tree", is_flag=True, help="The span timeline (the default).")
@click.option("--events", "as_events", is_flag=True, help="The run's journal events instead of its spans.")
@click.option(
    "--category",
    type=click.Choice(("lifecycle", "trace", "message")),
    default=None,
    help="With --events: only this category.",
)
def show(
    run_id: str, store: str | None, as_json: bool, tree: bool, as_events: bool, category: str | None
) -> None:
    """Show one run as a timeline of its spans (one line per span, bars on a common time axis).

    RUN is a run id as `runs` shows it (a unique prefix or suffix) or whole.
    """
    from .timeline import build_tree
    from .timeline import render as draw

    if tree and as_events:
        raise click.UsageError("--tree and --events are alternatives; give one")
    with open_for_reading(store_location(store)) as st:
        run = resolve_run(st, run_id)
        list_spans = getattr(st, "list_spans", None)
        spans = list_spans(run.run_id) if list_spans is not None and not as_events else []
        events = all_events(st, run.run_id, category=category) if as_events or not spans else []
        costs = {
            e.span_id: e.metadata.get("cost_usd")
            for e in (all_events(st, run.run_id, category="trace") if spans and not as_events else [])
            if e.event_type in ("llm_end", "llm_error") and e.span_id
        }
    roots = build_tree(spans, costs)
    if as_json:
        payload: dict[str, object] = {"run": run}
        if as_events or not roots:
            payload["events"] = events
        else:
            payload["spans"] = [r.as_dict() for r in roots]
        values.echo_json(payload)
        return
    out = values.console()
    title = f"Run {run.run_id}  {run.name or ''}  {run.status}"
    if roots:
        out.print(Text(title, style="bold"), no_wrap=True, overflow="ellipsis", crop=True)
        for line in draw(roots, out.width):
            out.print(line, no_wrap=True, overflow="ellipsis", crop=True)
    else:
        if not as_events:
            out.print("(no spans recorded for this run: showing its events)", style="dim")
        out.print(render.events_table(run, events, title, width=out.width))
    out.print()
    out.print(render.run_summary(run))
