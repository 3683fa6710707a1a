"""``otel-runjournal`` (also ``python -m otel_runjournal``): read the run journal, run the demo.

Every command takes ``--store`` (default ``OTEL_RUNJOURNAL_STORE``, then ``./runjournal.duckdb``) and
prints rich tables, or JSON with ``--json``. Problems are one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from .. import settings as _env
from ..records import RUN_STATUSES, RunEvent, RunRecord
from ..stores.base import MAX_LIMIT, RunStore, StoreError
from ..stores.location import split_location
from ..stores.postgres.conninfo import is_postgres, mask
from . import render

_TOKEN_GROUPS = ("caller", "run", "thread", "model")


def _console() -> Console:
    return Console(soft_wrap=False)


def store_location(option: str | None) -> str:
    """``--store`` → ``OTEL_RUNJOURNAL_STORE`` → ``./runjournal.duckdb``."""
    return _env.resolve(option, _env.OTEL_RUNJOURNAL_STORE, _env.DEFAULT_STORE)


def _store_path(location: str) -> str:
    """The filesystem path of a store location; ``ClickException`` for a malformed one."""
    try:
        return split_location(location)[1]
    except ValueError as exc:
        raise click.ClickException(f"malformed store location: {exc}") from None


@contextmanager
def open_for_reading(location: str) -> Iterator[RunStore]:
    """Open an existing store; missing stores and store errors become one-line CLI errors."""
    from ..stores.location import open_store

    path = _store_path(location)
    if not is_postgres(location) and not os.path.exists(path):
        raise click.ClickException(
            f"no run journal at {path!r} (run `otel-runjournal demo`, or point --store / "
            f"{_env.OTEL_RUNJOURNAL_STORE} at your journal)"
        )
    try:
        if is_postgres(location):  # read-only sessions, no migrations: reading never writes
            from ..stores.postgres.store import PostgresStore

            store: RunStore = PostgresStore(location, read_only=True)
        else:
            store = open_store(location)
    except (StoreError, ValueError, OSError, ImportError) as exc:
        raise click.ClickException(f"cannot open the run journal {mask(location)!r}: {exc}") from None
    try:
        yield store
    except StoreError as exc:
        raise click.ClickException(f"reading the run journal {mask(location)!r} failed: {exc}") from None
    finally:
        store.close()


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(render.to_jsonable(value), indent=2, ensure_ascii=False))


store_option = click.option(
    "--store",
    "store",
    metavar="LOCATION",
    default=None,
    help=f"Journal location (x.duckdb, duckdb:///x.duckdb, a directory, jsonl:///dir). "
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="otel-runjournal")
def cli() -> None:
    """Query the local run journal of LangChain / LangGraph apps traced with otel_runjournal."""


@cli.command()
@store_option
@json_option
@limit_option
@click.option("--thread", "thread_id", default=None, help="Only runs of this thread.")
@click.option("--status", type=click.Choice(RUN_STATUSES), default=None, help="Only runs with this status.")
def runs(store: str | None, as_json: bool, limit: int, thread_id: str | None, status: str | None) -> None:
    """List runs, most recent first."""
    with open_for_reading(store_location(store)) as st:
        rows = st.list_runs(thread_id=thread_id, status=status, limit=limit)
    if as_json:
        _echo_json(rows)
    else:
        console = _console()
        console.print(render.runs_table(rows, width=console.width))


@cli.command()
@click.argument("run_id")
@store_option
@json_option
@click.option("--category", type=click.Choice(("lifecycle", "trace", "message")), default=None)
def show(run_id: str, store: str | None, as_json: bool, category: str | None) -> None:
    """Show one run: its summary and event timeline (durations, tokens)."""
    with open_for_reading(store_location(store)) as st:
        run = resolve_run(st, run_id)
        events = all_events(st, run.run_id, category=category)
    if as_json:
        _echo_json({"run": run, "events": events})
        return
    console = _console()
    console.print(render.timeline_table(run, events, width=console.width))
    console.print(render.run_summary(run))


def resolve_run(store: RunStore, run_id: str) -> RunRecord:
    """The run with this id, or the one run (among the latest 1000) whose id starts with it."""
    run = store.get_run(run_id)
    if run is not None:
        return run
    matches = [r for r in store.list_runs(limit=MAX_LIMIT) if r.run_id.startswith(run_id)] if run_id else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise click.ClickException(f"run id prefix {run_id!r} is ambiguous ({len(matches)} runs match)")
    raise click.ClickException(f"unknown run id {run_id!r} (list runs with `otel-runjournal runs`)")


def all_events(store: RunStore, run_id: str, *, category: str | None = None) -> list[RunEvent]:
    """Every event of a run, paging with ``after_seq``."""
    out: list[RunEvent] = []
    after: int | None = None
    while True:
        page = store.list_events(run_id, category=category, after_seq=after, limit=MAX_LIMIT)
        out.extend(page)
        if len(page) < MAX_LIMIT:
            return out
        after = page[-1].seq


@cli.command()
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
    """Show a thread's conversation (human, AI and summary messages) in order."""
    with open_for_reading(store_location(store)) as st:
        rows = st.list_messages(thread_id, after_seq=after_seq, before_seq=before_seq, limit=limit)
    if as_json:
        _echo_json(rows)
    elif not rows:
        raise click.ClickException(f"no messages for thread {thread_id!r}")
    else:
        _console().print(render.messages_table(thread_id, rows))


@cli.command()
@click.argument("query")
@store_option
@json_option
def sql(query: str, store: str | None, as_json: bool) -> None:
    """Run read-only SQL on a DuckDB journal.

    Example: otel-runjournal sql "select * from tokens_by_caller". Tables: runs, run_events, spans;
    views: messages, tokens_by_model, tokens_by_caller, tokens_per_day, slowest_tools, error_runs.
    """
    from ..stores.duckdb.store import DuckDBStore

    location = store_location(store)
    kind, path = _split(location)
    if kind == "jsonl" or os.path.isdir(path):
        raise click.ClickException(
            "`sql` needs a DuckDB journal; query a JSONL journal with DuckDB's read_json (see the README)"
        )
    if not os.path.exists(path):
        raise click.ClickException(f"no run journal at {path!r}")
    try:
        with DuckDBStore(path, read_only=True) as st:
            columns, rows = st.query(query)
    except StoreError as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    if as_json:
        _echo_json([dict(zip(columns, row, strict=True)) for row in rows])
    else:
        _console().print(render.sql_table(columns, rows))


def _split(location: str) -> tuple[str, str]:
    try:
        return split_location(location)
    except ValueError as exc:
        raise click.ClickException(f"malformed store location: {exc}") from None


@cli.command()
@store_option
@json_option
@click.option("--by", "group", type=click.Choice(_TOKEN_GROUPS), default="caller", show_default=True)
@click.option("--run", "run_id", default=None, help="Only this run.")
@click.option("--thread", "thread_id", default=None, help="Only this thread.")
def tokens(store: str | None, as_json: bool, group: str, run_id: str | None, thread_id: str | None) -> None:
    """Token usage by caller (lead agent / subagents / middleware), run, thread or model."""
    with open_for_reading(store_location(store)) as st:
        if run_id is not None:
            run_id = resolve_run(st, run_id).run_id
        rows = token_rows(st, group, run_id=run_id, thread_id=thread_id)
    if as_json:
        _echo_json(rows)
    else:
        _console().print(render.tokens_table(rows, group, f"Tokens by {group}"))


def token_rows(
    store: RunStore, group: str, *, run_id: str | None = None, thread_id: str | None = None
) -> list[dict[str, Any]]:
    """Token rows grouped by ``caller``, ``run``, ``thread`` or ``model`` (over the latest 1000 runs)."""
    if group == "caller":
        return render.usage_rows_by_caller(store.token_usage(run_id=run_id, thread_id=thread_id))
    if run_id is not None:
        one = store.get_run(run_id)
        selected = [one] if one is not None else []
    else:
        selected = store.list_runs(thread_id=thread_id, limit=MAX_LIMIT)
    if group == "model":
        return _rows_by_model(store, [r.run_id for r in selected])
    buckets: dict[str, dict[str, Any]] = {}
    for r in selected:
        key = r.run_id if group == "run" else r.thread_id
        row = buckets.setdefault(
            key,
            {group: key, "runs": 0, "llm_calls": 0, "input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
        )
        row["runs"] += 1
        row["llm_calls"] += r.llm_call_count
        row["input_tokens"] += r.input_tokens
        row["output_tokens"] += r.output_tokens
        row["total_tokens"] += r.total_tokens
    if group == "run":
        for row in buckets.values():
            del row["runs"]
    return sorted(buckets.values(), key=lambda row: -row["total_tokens"])


def _rows_by_model(store: RunStore, run_ids: list[str]) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, int]] = defaultdict(
        lambda: {"llm_calls": 0, "input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    )
    for rid in run_ids:
        after: int | None = None
        while True:
            page = store.list_events(rid, event_types=["llm_end"], after_seq=after, limit=MAX_LIMIT)
            for ev in page:
                usage = ev.metadata.get("usage") or {}
                model = str(ev.metadata.get("model") or ev.metadata.get("model_name") or "unknown")
                row = totals[model]
                row["llm_calls"] += 1
                row["input_tokens"] += int(usage.get("input_tokens") or 0)
                row["output_tokens"] += int(usage.get("output_tokens") or 0)
                row["total_tokens"] += int(
                    usage.get("total_tokens")
                    or int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0)
                )
            if len(page) < MAX_LIMIT:
                break
            after = page[-1].seq
    rows = [{"model": m, **v} for m, v in totals.items()]
    return sorted(rows, key=lambda row: -row["total_tokens"])


@cli.command()
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
    from .demo_run import run_demo

    location = store_location(store)
    _store_path(location)  # malformed locations fail before any work
    try:
        result = run_demo(location, runs=run_count)
    except (StoreError, ValueError) as exc:
        raise click.ClickException(f"the demo could not write the run journal {location!r}: {exc}") from None
    with open_for_reading(location) as st:
        run_rows = [r for r in (st.get_run(rid) for rid in result.run_ids) if r is not None]
        shown = next((r for r in run_rows if r.status == "success"), run_rows[0] if run_rows else None)
        events = all_events(st, shown.run_id) if shown else []
        by_caller = render.usage_rows_by_caller(result.usage(st))
    if as_json:
        _echo_json(
            {
                "store": location,
                "runs": run_rows,
                "timeline": events,
                "tokens_by_caller": by_caller,
                "otlp_endpoint": result.otlp_endpoint,
            }
        )
        return
    console = _console()
    console.print(
        f"[bold]otel-runjournal demo[/]: {len(run_rows)} runs of the offline agent "
        f"'research_assistant' on {result.thread_count} threads → journal [cyan]{escape(location)}[/]"
    )
    if result.otlp_endpoint:
        console.print(f"Traces also exported over OTLP to [cyan]{escape(result.otlp_endpoint)}[/]")
    console.print()
    newest_first = sorted(
        run_rows, key=lambda r: r.started_at.timestamp() if r.started_at else 0.0, reverse=True
    )
    console.print(render.runs_table(newest_first, "Runs recorded", width=console.width))
    if shown is not None:
        console.print()
        console.print(render.timeline_table(shown, events, width=console.width))
    console.print()
    console.print(render.tokens_table(by_caller, "caller", "Tokens by caller (this demo)"))
    store_flag = "" if store is None else f" --store {location}"
    hints = []
    if shown is not None:
        hints += [
            f"otel-runjournal show {shown.run_id[:8]}{store_flag}",
            f"otel-runjournal messages {shown.thread_id}{store_flag}",
        ]
    hints += [f"otel-runjournal tokens --by model{store_flag}", f"otel-runjournal runs --json{store_flag}"]
    if _store_path(location).endswith(".duckdb"):
        hints.append(f'otel-runjournal sql "select * from tokens_by_model"{store_flag}')
    console.print()
    console.print("[bold]Next:[/]")
    for hint in hints:
        console.print(f"  {hint}", markup=False, highlight=False)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="otel-runjournal")
