"""``demo``: run the bundled offline agent into a journal and show what was recorded."""

from __future__ import annotations

import click
from rich.markup import escape

from ..stores.base import StoreError
from . import events as event_view
from . import render, values
from .options import json_option, store_location, store_option
from .reading import all_events, id_shortener, journal_run_ids, open_for_reading


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
        result = run_demo(location, runs=run_count)
    except (StoreError, ValueError) as exc:
        raise click.ClickException(f"the demo could not write the run journal {location!r}: {exc}") from None
    with open_for_reading(location) as st:
        run_rows = [r for r in (st.get_run(rid) for rid in result.run_ids) if r is not None]
        shown = next((r for r in run_rows if r.status == "success"), run_rows[0] if run_rows else None)
        list_spans = getattr(st, "list_spans", None)
        spans = list_spans(shown.run_id) if shown is not None and list_spans is not None else []
        events = all_events(st, shown.run_id) if shown is not None and not spans else []
        by_caller = render.usage_rows_by_caller(result.usage(st))
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
    hints = []
    if shown is not None:
        hints += [
            f"otel-runjournal show {short(shown.run_id)}{flag}",
            f"otel-runjournal messages {shown.thread_id}{flag}",
        ]
    hints += [f"otel-runjournal tokens --by model{flag}", f"otel-runjournal runs --json{flag}"]
    if can_sql:
        hints.append(f'otel-runjournal sql "select * from tokens_by_model"{flag}')
    out.print()
    out.print("[bold]Next:[/]")
    for hint in hints:
        out.print(f"  {hint}", markup=False, highlight=False, no_wrap=True, crop=False, overflow="ignore")
