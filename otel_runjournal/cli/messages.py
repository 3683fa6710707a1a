"""``messages THREAD``: a thread's conversation in order."""

from __future__ import annotations

import click

from . import render, values
from .options import json_option, limit_option, store_location, store_option
from .reading import id_shortener, journal_run_ids, open_for_reading


@click.command(short_help="A thread's conversation, in order.")
@click.argument("thread_id")
@store_option
@json_option
@limit_option
@click.option("--after", "after_seq", type=click.IntRange(min=0), default=None, help="After this seq.")
@click.option("--before", "before_seq", type=click.IntRange(min=0), default=None, help="Before this seq.")
def messages(
    thread_id: str,
    store: str | None,
    as_json: bool,
    limit: int,
    after_seq: int | None,
    before_seq: int | None,
) -> None:
    """Show a thread's conversation (human, AI and summary messages) in order.

    A thread with no messages (or none in the window) is an empty result, not an error.
    """
    with open_for_reading(store_location(store)) as st:
        rows = st.list_messages(thread_id, after_seq=after_seq, before_seq=before_seq, limit=limit)
        universe = journal_run_ids(st) if rows and not as_json else []
    if as_json:
        values.echo_json(rows)
        return
    out = values.console()
    short = id_shortener(universe, [r.run_id for r in rows])
    out.print(render.messages_table(thread_id, rows, short, width=out.width))
