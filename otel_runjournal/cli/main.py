"""``otel-runjournal`` (also ``python -m otel_runjournal``): read the run journal, run the demo.

Every command takes ``--store`` (default ``OTEL_RUNJOURNAL_STORE``, then ``./runjournal.duckdb``) and
prints tables that fit the terminal (80 columns when piped), or JSON with ``--json``. Problems are
one line on stderr and exit status 1; an empty result is an empty table (or ``[]``) and status 0.

One module per command; each registers with one ``cli.add_command`` line below. Reading commands
open the journal read-only and import neither LangChain nor the OpenTelemetry SDK (``demo`` imports
them when it runs), so they start about as fast as ``import duckdb, click, rich``.
"""

from __future__ import annotations

import click

from .demo import demo
from .messages import messages
from .runs import runs, show
from .sql import sql
from .tokens import tokens


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="otel-runjournal")
def cli() -> None:
    """Query the local run journal of LangChain / LangGraph apps traced with otel_runjournal."""


cli.add_command(runs)
cli.add_command(show)
cli.add_command(messages)
cli.add_command(tokens)
cli.add_command(sql)
cli.add_command(demo)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="otel-runjournal")
