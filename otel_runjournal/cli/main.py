"""``otel-runjournal`` (also ``python -m otel_runjournal``): read the run journal, run the demo.

Every command takes ``--store`` (default ``OTEL_RUNJOURNAL_STORE``, then ``./runjournal.duckdb``) and
prints tables that fit the terminal (80 columns when piped), or JSON with ``--json``. Problems are
one line on stderr and exit status 1; an empty result is an empty table (or ``[]``) and status 0.

One module per command, registered with one line in :data:`COMMANDS` and imported only when that
command runs (so ``runs`` never loads the demo's LangChain, nor the other commands' modules).
Reading commands open the journal read-only and import neither LangChain nor the OpenTelemetry SDK,
so they start about as fast as ``import duckdb, click, rich`` (``bench/bench_cli.py``).
"""

from __future__ import annotations

import importlib

import click

COMMANDS = {
    "runs": "runs:runs",
    "show": "runs:show",
    "messages": "messages:messages",
    "tokens": "tokens:tokens",
    "sql": "sql:sql",
    "reprice": "reprice:reprice",
    "prune": "prune:prune",
    "export": "export:export",
    "demo": "demo:demo",
    "serve": "serve:serve",
}
"""Command name → ``module:attribute`` inside this package."""


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (click's documented lazy pattern)."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(f".{module}", __package__), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; a reader that went away (``... | head``) ends it quietly, status 0."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            from .values import silence_stdout

            silence_stdout()
            ctx.exit(0)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="otel-runjournal")
def cli() -> None:
    """Query the local run journal of LangChain / LangGraph apps traced with otel_runjournal."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="otel-runjournal")
