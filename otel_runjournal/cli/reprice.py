"""``reprice``: price a journal's model calls again, with today's genai-prices table or the user's prices.

Prices change (and a journal written before a model was in the table has unpriced calls). This
re-prices every ``llm_end`` / ``llm_error`` event of the selected runs from what the event recorded
(provider, model, usage; the call's start time) with the same function the journal uses, then
rewrites the events' ``cost_usd`` / ``price_source`` and the runs' ``cost_usd`` /
``unpriced_call_count``, in one transaction. Nothing else changes. A writing command: the journal must
not be open for writing elsewhere (DuckDB allows one writer).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import click

from .. import pricing
from ..records import RunEvent, RunRecord
from ..stores.base import MAX_LIMIT, RunStore, StoreError
from . import values
from .options import json_option, store_location, store_option
from .reading import open_for_reading

_MODEL_CALL_EVENTS = ("llm_end", "llm_error")


def _when(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO date or date-time", param_hint=name) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _call_usage(meta: dict[str, Any]) -> pricing.CallUsage:
    usage = meta.get("usage") or {}
    return pricing.CallUsage(
        int(usage.get("input_tokens") or 0),
        int(usage.get("output_tokens") or 0),
        int(usage.get("cached_input_tokens") or 0),
        int(usage.get("cache_write_input_tokens") or 0),
        int(usage.get("reasoning_tokens") or 0),
    )


def reprice_runs(
    store: Any, pricer: pricing.Pricer, *, since: datetime | None = None, until: datetime | None = None
) -> dict[str, Any]:
    """Re-price the runs started in ``[since, until)``; returns what changed (for the CLI and tests)."""
    if getattr(store, "update_costs", None) is None or getattr(store, "sql", None) is None:
        raise StoreError("reprice: this store cannot be re-priced in place yet (DuckDB and PostgreSQL can)")
    runs = []
    for (run_id,) in store.sql("SELECT run_id FROM runs ORDER BY started_at"):
        run = store.get_run(run_id)
        if run is not None and run.started_at is not None:
            started = run.started_at
            if (since is None or started >= since) and (until is None or started < until):
                runs.append(run)
    events: list[RunEvent] = []
    changed: list[RunRecord] = []
    before: float | None = None
    after: float | None = None
    for run in runs:
        providers: dict[str, str | None] | None = None
        cost: float | None = None
        unpriced = 0
        after_seq: int | None = None
        while True:
            page = store.list_events(
                run.run_id, event_types=_MODEL_CALL_EVENTS, after_seq=after_seq, limit=MAX_LIMIT
            )
            for event in page:
                meta = dict(event.metadata)
                if "provider" in meta:
                    provider = meta["provider"]
                else:  # journaled before reprice existed: the provider is on the span
                    if providers is None:
                        providers = _providers(store, run.run_id)
                    provider = providers.get(event.span_id or "")
                model = meta.get("model") or meta.get("model_name")
                at = event.created_at - timedelta(milliseconds=float(meta.get("latency_ms") or 0))
                price = pricer.price(provider, model, _call_usage(meta), at)
                meta["cost_usd"] = None if price is None else price.cost_usd
                meta["price_source"] = None if price is None else price.source
                meta["provider"] = provider
                if price is None:
                    unpriced += 1
                else:
                    cost = price.cost_usd if cost is None else cost + price.cost_usd
                event.metadata = meta
                events.append(event)
            if len(page) < MAX_LIMIT:
                break
            after_seq = page[-1].seq
        if run.cost_usd is not None:
            before = run.cost_usd + (before or 0.0)
        if cost is not None:
            after = cost + (after or 0.0)
        run.cost_usd, run.unpriced_call_count = cost, unpriced
        changed.append(run)
    store.update_costs(events, changed)
    return {
        "runs": len(changed),
        "calls": len(events),
        "unpriced_calls": sum(r.unpriced_call_count for r in changed),
        "cost_usd_before": before,
        "cost_usd_after": after,
    }


def _providers(store: Any, run_id: str) -> dict[str, str | None]:
    list_spans = getattr(store, "list_spans", None)
    if list_spans is None:
        return {}
    return {s.span_id: pricing.priced_model(s.attributes)[0] for s in list_spans(run_id)}


@click.command(short_help="Price the journal's model calls again (today's table or your prices).")
@store_option
@json_option
@click.option("--since", default=None, help="Only runs started at or after this ISO date / date-time (UTC).")
@click.option("--until", default=None, help="Only runs started before this ISO date / date-time (UTC).")
@click.option(
    "--prices",
    "prices_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="A JSON file of your model prices (default: OTEL_RUNJOURNAL_PRICES, else the table alone).",
)
def reprice(
    store: str | None, as_json: bool, since: str | None, until: str | None, prices_file: str | None
) -> None:
    """Re-price the model calls of the journal (or of the runs started in a time range) with the
    installed genai-prices table, or your prices: updates llm_end costs and the runs' cost columns."""
    from ..stores.location import open_store

    start, end = _when(since, "--since"), _when(until, "--until")
    try:
        pricer = (
            pricing.Pricer(pricing.load_prices_file(prices_file)) if prices_file else pricing.resolve_pricer()
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    pricer.warm()
    location = store_location(store)
    with open_for_reading(location):  # a journal that is not there is an error, not a new journal
        pass
    try:
        st: RunStore = open_store(location)
        try:
            result = reprice_runs(st, pricer, since=start, until=end)
        finally:
            st.close()
    except StoreError as exc:  # one line, as every command reports a journal problem
        raise click.ClickException(str(exc)) from None
    if as_json:
        values.echo_json(result)
        return
    click.echo(
        f"re-priced {result['calls']} model calls in {result['runs']} runs: "
        f"{values.usd(result['cost_usd_after'])} (was {values.usd(result['cost_usd_before'])})"
    )
    if result["unpriced_calls"]:
        click.echo(values.unpriced_note(result["unpriced_calls"]).lstrip("* "))
