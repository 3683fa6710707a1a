"""``tokens``: token usage and cost by caller, model, day, run or thread.

``llm calls`` counts every model call, failed ones included (a failed call is a call: it took time
and may have been billed), as ``runs.llm_call_count`` and the SQL views do; a failed call adds no
tokens. Cost is what the journal priced (``llm_end`` / ``runs.cost_usd``); calls it could not price
are counted in a footnote, never as $0.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timezone
from typing import Any

import click

from ..stores.base import MAX_LIMIT, RunStore
from . import render, values
from .options import json_option, store_location, store_option
from .reading import id_shortener, journal_run_ids, open_for_reading, resolve_run

GROUPS = ("caller", "model", "day", "run", "thread")
_MODEL_CALL_EVENTS = ("llm_end", "llm_error")


@click.command(short_help="Token usage and cost by caller, model, day, run or thread.")
@store_option
@json_option
@click.option("--by", "group", type=click.Choice(GROUPS), default="caller", show_default=True)
@click.option("--run", "run_id", default=None, help="Only this run.")
@click.option("--thread", "thread_id", default=None, help="Only this thread.")
def tokens(store: str | None, as_json: bool, group: str, run_id: str | None, thread_id: str | None) -> None:
    """Token usage and cost by caller (lead agent / subagents / middleware), model, day, run or thread."""
    with open_for_reading(store_location(store)) as st:
        if run_id is not None:
            run_id = resolve_run(st, run_id).run_id
        rows = token_rows(st, group, run_id=run_id, thread_id=thread_id)
        universe = journal_run_ids(st) if group == "run" and rows and not as_json else []
    if as_json:
        values.echo_json(rows)
        return
    out = values.console()
    short = id_shortener(universe, [r["run"] for r in rows]) if group == "run" else None
    out.print(render.tokens_table(rows, group, f"Tokens by {group}", width=out.width, short=short))
    unpriced = sum(int(r.get("unpriced_calls") or 0) for r in rows)
    if unpriced:
        out.print(values.unpriced_note(unpriced), style="dim")


def token_rows(
    store: RunStore, group: str, *, run_id: str | None = None, thread_id: str | None = None
) -> list[dict[str, Any]]:
    """Token and cost rows grouped by ``caller``, ``model``, ``day``, ``run`` or ``thread`` (over the
    latest 1000 runs)."""
    if run_id is not None:
        one = store.get_run(run_id)
        selected = [one] if one is not None else []
    else:
        selected = store.list_runs(thread_id=thread_id, limit=MAX_LIMIT)
    if group in ("caller", "model", "day"):
        return rows_by_call(store, [r.run_id for r in selected], group)
    buckets: dict[str, dict[str, Any]] = {}
    for r in selected:
        key = r.run_id if group == "run" else r.thread_id
        row = buckets.setdefault(
            key,
            {
                group: key,
                "runs": 0,
                "llm_calls": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "total_tokens": 0,
                "cost_usd": None,
                "unpriced_calls": 0,
            },
        )
        row["runs"] += 1
        row["llm_calls"] += r.llm_call_count
        row["input_tokens"] += r.input_tokens
        row["output_tokens"] += r.output_tokens
        row["total_tokens"] += r.total_tokens
        row["unpriced_calls"] += r.unpriced_call_count
        if r.cost_usd is not None:
            row["cost_usd"] = r.cost_usd + (row["cost_usd"] or 0.0)
    if group == "run":
        for row in buckets.values():
            del row["runs"]
    return sorted(buckets.values(), key=lambda row: (-row["total_tokens"], row[group]))


def _call_key(event: Any, group: str) -> str:
    meta = event.metadata
    if group == "caller":
        return str(meta.get("caller") or "lead_agent")
    if group == "day":
        return event.created_at.astimezone(timezone.utc).date().isoformat()
    return str(meta.get("model") or meta.get("model_name") or "unknown")


def rows_by_call(store: RunStore, run_ids: list[str], group: str) -> list[dict[str, Any]]:
    """One row per caller / model / UTC day, from the model-call events (tokens, calls, cost)."""
    totals: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "llm_calls": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "total_tokens": 0,
            "cost_usd": None,
            "unpriced_calls": 0,
        }
    )
    for rid in run_ids:
        after: int | None = None
        while True:
            page = store.list_events(rid, event_types=_MODEL_CALL_EVENTS, after_seq=after, limit=MAX_LIMIT)
            for ev in page:
                usage = ev.metadata.get("usage") or {}
                row = totals[_call_key(ev, group)]
                row["llm_calls"] += 1
                row["input_tokens"] += int(usage.get("input_tokens") or 0)
                row["output_tokens"] += int(usage.get("output_tokens") or 0)
                row["total_tokens"] += int(
                    usage.get("total_tokens")
                    or int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0)
                )
                cost = ev.metadata.get("cost_usd")
                if cost is None:
                    row["unpriced_calls"] += 1
                else:
                    row["cost_usd"] = float(cost) + (row["cost_usd"] or 0.0)
            if len(page) < MAX_LIMIT:
                break
            after = page[-1].seq
    rows = [{group: k, **v} for k, v in totals.items()]
    if group == "day":
        return sorted(rows, key=lambda row: row["day"])
    return sorted(rows, key=lambda row: (-row["total_tokens"], row[group]))
