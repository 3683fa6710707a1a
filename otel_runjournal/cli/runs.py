"""``runs`` (the list) and ``show RUN`` (one run: its span timeline, or its events)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import click
from rich.text import Text

from .. import settings as _env
from ..records import RUN_STATUSES, RunRecord
from ..stores.base import MAX_LIMIT, RunStore
from . import events as event_view
from . import render, values
from .options import json_option, limit_option, store_location, store_option
from .reading import all_events, id_shortener, journal_runs, open_for_reading, resolve_run


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return values.moment(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(short_help="List runs, most recent first.")
@store_option
@json_option
@limit_option
@click.option(
    "--since", metavar="WHEN", callback=_moment, help="Only runs started since: 30m, 2h, 1d, or an ISO time."
)
@click.option(
    "--before",
    metavar="WHEN",
    callback=_moment,
    help="Only runs started before (the next page): an ISO time, or 30m, 2h, 1d.",
)
@click.option("--status", type=click.Choice(RUN_STATUSES), default=None, help="Only runs with this status.")
@click.option(
    "--agent", "agent", metavar="NAME", default=None, help="Only runs of this agent (the `agent` column)."
)
@click.option("--service", "service", metavar="NAME", default=None, help="Only runs of this service.name.")
@click.option("--thread", "thread_id", default=None, help="Only runs of this thread.")
def runs(
    store: str | None,
    as_json: bool,
    limit: int,
    since: datetime | None,
    before: datetime | None,
    status: str | None,
    agent: str | None,
    service: str | None,
    thread_id: str | None,
) -> None:
    """List runs, most recent first (ids as short as the journal allows; `show` accepts them).

    Says how many runs match when more than --limit do, and how to see the next page.
    """
    filters: dict[str, Any] = {
        "thread_id": thread_id,
        "status": status,
        "name": agent,
        "service_name": service,
        "started_after": since,
        "started_before": before,
    }
    with open_for_reading(store_location(store)) as st:
        rows = st.list_runs(limit=limit, **filters)
        total = st.count_runs(**filters) if len(rows) == limit else len(rows)
        universe = journal_runs(st) if rows and not as_json else []
    if as_json:
        values.echo_json(rows)
        return
    out = values.console()
    short = id_shortener([r.run_id for r in universe], [r.run_id for r in rows])
    short_thread = id_shortener([r.thread_id for r in universe], [r.thread_id for r in rows])
    out.print(render.runs_table(rows, short, width=out.width, short_thread=short_thread))
    if total > len(rows):
        oldest = rows[-1].started_at
        at = oldest.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if oldest else ""
        page = f" or --before {at}" if at else ""
        out.print(
            Text(f"{len(rows)} of {total:,} runs — more with --limit {min(MAX_LIMIT, limit * 2)}{page}"),
            style="dim",
            soft_wrap=True,
        )
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
    help="Only events of this category (implies --events).",
)
@click.option("--wide", is_flag=True, help="With --events: whole content, wrapped (no cut).")
@click.option(
    "--event", "event_seq", type=click.IntRange(min=0), metavar="SEQ", default=None,
    help="One event whole: its content and metadata (tool arguments, tool calls, usage).",
)  # fmt: skip
def show(
    run_id: str,
    store: str | None,
    as_json: bool,
    tree: bool,
    as_events: bool,
    category: str | None,
    wide: bool,
    event_seq: int | None,
) -> None:
    """Show one run as a timeline of its spans (one line per span, bars on a common time axis).

    RUN is a run id as `runs` shows it (a unique prefix or suffix) or whole. --events lists the run's
    journal events (--wide for whole content); --event SEQ shows one of them whole. With
    $OTEL_RUNJOURNAL_TRACE_URL set (e.g. http://localhost:16686/trace/{trace_id}) the trace's link is
    printed.
    """
    from .timeline import build_tree
    from .timeline import render as draw

    as_events = as_events or category is not None or wide
    if tree and (as_events or event_seq is not None):
        raise click.UsageError(
            "--tree and --events / --category / --wide / --event are alternatives; give one"
        )
    with open_for_reading(store_location(store)) as st:
        run = resolve_run(st, run_id)
        if event_seq is not None:
            _show_event(st, run, event_seq, as_json)
            return
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
        if category is not None:
            title += f"  ({category})"
        out.print(event_view.events_table(run, events, title, width=out.width, wide=wide))
        if events and not wide:
            out.print(
                Text(f"whole content: --wide, or one event: --event SEQ (e.g. --event {events[-1].seq})"),
                style="dim",
                soft_wrap=True,
            )
    out.print()
    out.print(render.run_summary(run, _env.resolve(None, _env.OTEL_RUNJOURNAL_TRACE_URL, "") or None))


def _show_event(st: RunStore, run: RunRecord, seq: int, as_json: bool) -> None:
    """``show RUN --event SEQ``: the one event, whole."""
    found = (
        st.list_events(run.run_id, after_seq=seq - 1, limit=1)
        if seq > 0
        else st.list_events(run.run_id, limit=1)
    )
    if not found or found[0].seq != seq:
        raise click.ClickException(
            f"run {run.run_id} has no event {seq} "
            f"(list them with `otel-runjournal show {run.run_id} --events`)"
        )
    if as_json:
        values.echo_json(found[0])
        return
    out = values.console()
    for part in event_view.event_detail(found[0]):
        out.print(part)
