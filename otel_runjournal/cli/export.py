"""``export DIR``: the journal's runs, events and spans as Parquet, one Hive-style folder per UTC day.

Layout, schema and atomicity: ``stores/export.py``. The journal must exist (it is first opened
read-only, so a wrong location is an error, never a new journal). A DuckDB or JSONL journal is
then opened like a writer (DuckDB's COPY needs file access; JSONL's shared lock gives a consistent
read) but nothing in it changes; a PostgreSQL journal stays read-only.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import click

from ..stores.base import StoreError
from . import values
from .options import json_option, store_location, store_option
from .reading import one_line, open_for_reading


def _day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    """``YYYY-MM-DD``, or an age (``7d``) counted back from today (UTC)."""
    if value is None:
        return None
    from ..stores.retention import parse_age

    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    try:
        return (datetime.now(timezone.utc) - parse_age(value)).date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a day (YYYY-MM-DD) nor an age (7d)") from None


@click.command(short_help="Export runs, events and spans to Parquet (one folder per day).")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--since", callback=_day, default=None, metavar="DAY", help="First day (YYYY-MM-DD or an age: 1d)."
)
@click.option("--until", callback=_day, default=None, metavar="DAY", help="Last day, included (same forms).")
@store_option
@json_option
def export(directory: str, since: date | None, until: date | None, store: str | None, as_json: bool) -> None:
    """Write DIRECTORY/day=YYYY-MM-DD/{runs,run_events,spans}.parquet for every UTC day with runs.

    A run goes to the day it started, with its events and spans. Re-exporting a day replaces its
    files atomically. Nightly: otel-runjournal export ./lake --since 1d. Read it with
    duckdb -c "select * from read_parquet('lake/*/runs.parquet', hive_partitioning=1)".
    """
    from ..stores.export import export as run_export
    from ..stores.location import open_store, split_location

    location = store_location(store)
    with open_for_reading(location):
        pass
    try:
        read_only = split_location(location)[0] == "postgresql"
        st = open_store(location, read_only=read_only)
    except (StoreError, ValueError, OSError) as exc:
        raise click.ClickException(one_line(exc)) from None
    try:
        days = run_export(st, directory, since=since, until=until)
    except (StoreError, ValueError, OSError) as exc:
        raise click.ClickException(one_line(exc)) from None
    finally:
        st.close()
    if as_json:
        values.echo_json([{"day": d.day.isoformat(), "folder": d.folder, **d.rows} for d in days])
        return
    for d in days:
        click.echo(
            f"{d.folder}: {d.rows['runs']:,} runs, {d.rows['run_events']:,} events, {d.rows['spans']:,} spans"
        )
    if not days:
        click.echo("no runs in that range: nothing exported")
