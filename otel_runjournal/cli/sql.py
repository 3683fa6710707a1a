"""``sql QUERY``: one read-only query on a DuckDB or PostgreSQL journal.

DuckDB: the journal is opened read-only with file access, extensions and settings switched off, and
only one reading statement is let through (see ``stores/duckdb/readonly.py``). PostgreSQL: the one
statement runs as a role that can only read the journal (``stores/postgres/sandbox.py``). Either
way it sees the journal and nothing else.
"""

from __future__ import annotations

import click

from . import render, values
from .options import json_option, store_location, store_option
from .reading import one_line, open_for_reading


@click.command()
@click.argument("query")
@store_option
@json_option
def sql(query: str, store: str | None, as_json: bool) -> None:
    """Run one read-only SQL query on a DuckDB or PostgreSQL journal.

    One statement that returns rows; no file access, no writes, no role changes.
    Example: otel-runjournal sql "select * from tokens_by_caller". Tables: runs, run_events, spans;
    views: messages, tokens_by_model, tokens_by_caller, tokens_per_day, slowest_tools, error_runs.
    Wide results print one record per block.
    """
    from ..stores.base import StoreError

    with open_for_reading(store_location(store)) as st:
        run_query = getattr(st, "query", None)
        if run_query is None:
            raise click.ClickException(
                "`sql` needs a DuckDB or PostgreSQL journal; "
                "query a JSONL journal with DuckDB's read_json (see the README)"
            )
        try:
            columns, rows = run_query(query)
        except StoreError as exc:
            raise click.ClickException(one_line(exc)) from None
    if as_json:
        values.echo_json([dict(zip(columns, row, strict=True)) for row in rows])
        return
    out = values.console()
    for part in render.sql_output(columns, rows, width=out.width):
        out.print(part)
