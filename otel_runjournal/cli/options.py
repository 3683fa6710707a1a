"""Options every reading command shares, and where the journal is."""

from __future__ import annotations

import click

from .. import settings as _env
from ..stores.base import MAX_LIMIT


def store_location(option: str | None) -> str:
    """``--store`` → ``OTEL_RUNJOURNAL_STORE`` → ``./runjournal.duckdb``."""
    return str(_env.resolve(option, _env.OTEL_RUNJOURNAL_STORE, _env.DEFAULT_STORE))


store_option = click.option(
    "--store",
    "store",
    metavar="LOCATION",
    default=None,
    help=f"Journal location (x.duckdb, duckdb:///x.duckdb, a directory, jsonl:dir). "
    f"Default: ${_env.OTEL_RUNJOURNAL_STORE}, then {_env.DEFAULT_STORE}.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
limit_option = click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIMIT),
    default=20,
    show_default=True,
    help="Most rows to show.",
)
