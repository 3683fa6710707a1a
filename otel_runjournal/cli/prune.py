"""``prune``: delete runs older than a cut-off (the one writing command besides ``demo`` and ``serve``).

Rules (whole runs, never a running one, seq never reused): ``stores/retention.py``. The journal is
first opened read-only, so a location with no journal is an error, never a new empty journal.
"""

from __future__ import annotations

import click

from ..stores.base import StoreError
from ..stores.retention import PruneResult, cutoff, parse_age
from . import values
from .options import json_option, store_location, store_option
from .reading import one_line, open_for_reading


def _age(_ctx: click.Context, _param: click.Parameter, value: str) -> object:
    try:
        return parse_age(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _size(value: int | None) -> str:
    if value is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000  # type: ignore[assignment]
    return str(value)


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def summary(result: PruneResult) -> str:
    """One line saying what was (or would be) deleted, and the journal's size around it."""
    verb = "would delete" if result.dry_run else "deleted"
    text = (
        f"{verb} {_n(result.runs, 'run')} ({_n(result.events, 'event')}, {_n(result.spans, 'span')}"
        + (f", {_size(result.bytes)} of rows" if result.bytes is not None else "")
        + ")"
    )
    if result.size_before is not None:
        text += f"; journal {_size(result.size_before)} → {_size(result.size_after)}"
    return text


@click.command(short_help="Delete runs older than a cut-off (retention).")
@click.option(
    "--older-than",
    "age",
    required=True,
    callback=_age,
    metavar="AGE",
    help="Delete runs that started longer ago than this: 30d, 12h, 90m, 2w.",
)
@click.option("--keep-errors", is_flag=True, help="Keep runs that failed (status error).")
@click.option("--thread", "thread_id", default=None, metavar="ID", help="Only runs of this thread.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.option(
    "--compact",
    is_flag=True,
    help="DuckDB: then rewrite the file so it shrinks (holds the file while copying; see README).",
)
@store_option
@json_option
def prune(
    age: object,
    keep_errors: bool,
    thread_id: str | None,
    dry_run: bool,
    compact: bool,
    store: str | None,
    as_json: bool,
) -> None:
    """Delete whole runs (events, spans, runs row) that started before now - AGE.

    A run still running is never deleted, and a thread's seq is never reused. Example:
    otel-runjournal prune --older-than 30d --keep-errors --dry-run
    """
    from datetime import timedelta

    from ..stores.location import open_store

    assert isinstance(age, timedelta)
    location = store_location(store)
    with open_for_reading(location):  # a journal must be there: never create one here
        pass
    try:
        st = open_store(location)
    except (StoreError, ValueError, OSError) as exc:
        raise click.ClickException(one_line(exc)) from None
    try:
        run_compact = getattr(st, "compact", None)
        if compact and run_compact is None:
            raise click.ClickException(
                "--compact is for DuckDB journals (JSONL gives space back by itself; PostgreSQL: "
                "VACUUM FULL, see the README)"
            )
        result = st.prune(
            older_than=cutoff(age), keep_errors=keep_errors, thread_id=thread_id, dry_run=dry_run
        )
        if compact and not dry_run and run_compact is not None:
            st.close()  # compaction needs this process's only connection to the file
            st = open_store(location)
            _before, result.size_after = st.compact()  # type: ignore[attr-defined]
    except StoreError as exc:
        raise click.ClickException(one_line(exc)) from None
    finally:
        st.close()
    if as_json:
        values.echo_json(result.as_dict())
    else:
        click.echo(summary(result))
