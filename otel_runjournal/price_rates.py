"""Pricing a table model's calls from its rates instead of asking genai-prices every time.

genai-prices computes a call's price in ~0.1-0.5 ms (unit registry, validation, usage
decomposition, ``Decimal``s): more than all the rest of journaling a model call. Its prices are affine
in the token counts within one price set (a model's prices may change at dates or hours) and one
input-size band (tiered prices: past a threshold of input tokens every token costs the tier's rate),
so :class:`Rates` reads them from the table itself once per set and band and prices later calls from
them in the same ``Decimal`` arithmetic: the same cost, exactly (``tests/test_cost.py`` compares with
the table; ``bench/bench_pricing.py`` measures). Used by :class:`otel_runjournal.pricing.Pricer`.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime
from decimal import Decimal
from typing import Any

Usage = tuple[int, int, int, int, int]
"""A call's (input, output, cache read, cache write, reasoning) tokens: a ``pricing.CallUsage``."""

_MTOK = 1_000_000
_Band = tuple[int, tuple[Decimal, ...] | None]  # (its lowest input, rates: base price, then per token)


def table_usage(usage_type: Any, usage: Usage) -> Any:
    """genai-prices' ``Usage`` of a call's counts."""
    i, o, cr, cw, r = usage
    return usage_type(
        input_tokens=i,
        output_tokens=o,
        cache_read_tokens=cr or None,
        cache_write_tokens=cw or None,
        output_reasoning_tokens=r or None,
    )


def ordinary(usage: Usage) -> bool:
    """Counts as the conventions define them (input includes the cache, output the reasoning)."""
    i, o, cr, cw, r = usage
    return min(usage) >= 0 and i >= cr + cw and o >= r


class Rates:
    """One table model's rates, per price set and band: the price of a call at the band's lowest
    input, and of a few more tokens of each kind, checked against the table on a call mixing every
    kind. A set whose prices are neither plain numbers nor tiers is left to the table."""

    __slots__ = ("_by_price", "_calc", "_info", "_model", "_provider_id", "_usage_type", "source")

    def __init__(
        self, calc: Any, usage_type: Any, model: str, provider_id: str | None, info: Any, source: str
    ) -> None:
        self._calc, self._usage_type, self._model, self._provider_id = calc, usage_type, model, provider_id
        self._info, self.source = info, source  # what a price read here says it came from
        # id(price set) → (the set, its thresholds or None, rates per band as read)
        self._by_price: dict[int, tuple[Any, list[int] | None, dict[int, _Band]]] = {}

    def price(self, usage: Usage, at: datetime) -> Decimal | None:
        """The call's price (USD) from the rates in force at ``at`` for its input size; ``None``: ask
        the table."""
        price_set = self._info.get_prices(at)
        entry = self._by_price.get(id(price_set))
        if entry is None or entry[0] is not price_set:
            entry = (price_set, _thresholds(price_set), {})
            if len(self._by_price) < 64:
                self._by_price[id(price_set)] = entry
        starts, bands = entry[1], entry[2]
        if starts is None:
            return None
        index = bisect_left(starts, usage[0])  # tiers apply to input > start
        band = bands.get(index)
        if band is None:
            low = starts[index - 1] + 1 if index else 0
            high = starts[index] if index < len(starts) else None
            band = bands[index] = (low, self._probe(low, high, at))
        low, rates = band
        if rates is None:
            return None
        return _from_rates(rates, low, usage)

    def _probe(self, low: int, high: int | None, at: datetime) -> tuple[Decimal, ...] | None:
        """The band's rates, checked on a mixed call against the table; ``None``: not affine there."""
        step = _MTOK if high is None else (high - low) // 8
        if step < 1:
            return None
        probes: tuple[Usage, ...] = (  # the band's lowest input, then `step` more tokens of each kind
            (low, 0, 0, 0, 0),
            (low + step, 0, 0, 0, 0),
            (low, step, 0, 0, 0),
            (low + step, 0, step, 0, 0),
            (low + step, 0, 0, step, 0),
            (low, step, 0, 0, step),
        )
        check: Usage = (low + 7 * step, 3 * step + 1, 2 * step + 3, step + 5, step)  # every kind at once
        try:
            totals = [self._table_total(u, at) for u in (*probes, check)]
        except Exception:
            return None
        base = totals[0]
        rates = (base, *((t - base) / step for t in totals[1:-1]))
        return rates if _from_rates(rates, low, check) == totals[-1] else None

    def _table_total(self, usage: Usage, at: datetime) -> Decimal:
        result = self._calc(
            table_usage(self._usage_type, usage),
            self._model,
            provider_id=self._provider_id,
            genai_request_timestamp=at,
        )
        return Decimal(result.total_price)


def _thresholds(price_set: Any) -> list[int] | None:
    """The input sizes where a price set's tiers start (sorted; none for plain prices), or ``None`` for
    a set holding a kind of price this reading does not know (left to the table)."""
    starts: set[int] = set()
    try:
        for value in vars(price_set).values():
            if value is None or isinstance(value, Decimal):
                continue
            tiers = getattr(value, "tiers", None)
            if not isinstance(getattr(value, "base", None), Decimal) or not isinstance(tiers, list):
                return None
            for tier in tiers:
                start = getattr(tier, "start", None)
                if not isinstance(start, int) or not isinstance(getattr(tier, "price", None), Decimal):
                    return None
                starts.add(start)
    except TypeError:  # no instance dict
        return None
    return sorted(starts)


def _from_rates(rates: tuple[Decimal, ...], low: int, usage: Usage) -> Decimal:
    base, r_in, r_out, r_cr, r_cw, r_rs = rates
    i, o, cr, cw, r = usage
    return base + r_in * (i - low - cr - cw) + r_cr * cr + r_cw * cw + r_out * (o - r) + r_rs * r
