"""``messages THREAD``: a thread's conversation in order."""

from __future__ import annotations

import click
from rich.text import Text

from ..stores.base import MAX_LIMIT
from . import render, values
from .options import json_option, limit_option, store_location, store_option
from .reading import id_shortener, journal_run_ids, open_for_reading

LATEST = 2**62
"""A ``before_seq`` above every seq: ``before_seq=LATEST`` reads a thread's last messages."""


@click.command(short_help="A thread's conversation (its latest messages), in order.")
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
    """Show a thread's conversation (human, AI and summary messages) in order: its latest --limit
    messages, or those before / after a seq (the hint under the table gives the next page).

    A thread with no messages (or none in the window) is an empty result, not an error.
    """
    backwards = after_seq is None
    before = LATEST if before_seq is None and after_seq is None else before_seq
    probe = min(limit + 1, MAX_LIMIT)  # one more than shown: is there another page?
    with open_for_reading(store_location(store)) as st:
        rows = st.list_messages(thread_id, after_seq=after_seq, before_seq=before, limit=probe)
        universe = journal_run_ids(st) if rows and not as_json else []
    more = len(rows) > limit or (len(rows) == limit == MAX_LIMIT)
    rows = (rows[-limit:] if backwards else rows[:limit]) if len(rows) > limit else rows
    if as_json:
        values.echo_json(rows)
        return
    out = values.console()
    short = id_shortener(universe, [r.run_id for r in rows])
    out.print(render.messages_table(thread_id, rows, short, width=out.width))
    hints = []
    if more and backwards:
        hints.append(f"earlier messages: --before {rows[0].seq}")
    elif more:
        hints.append(f"later messages: --after {rows[-1].seq}")
    if rows and after_seq is not None:
        hints.append(f"earlier: --before {rows[0].seq}")
    if rows and before_seq is not None:
        hints.append(f"later: --after {rows[-1].seq}")
    if hints:
        shown = f"{len(rows)} message{'s' if len(rows) != 1 else ''} (seq {rows[0].seq} to {rows[-1].seq})"
        out.print(Text(f"{shown} — " + "; ".join(hints)), style="dim", soft_wrap=True)
