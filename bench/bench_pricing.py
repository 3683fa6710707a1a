"""What pricing a model call costs the journal: ``Pricer.price`` against genai-prices' own ``calc_price``.

    python bench/bench_pricing.py            # a few seconds

The journal prices every model call of a table model (``llm_end``'s ``cost_usd``). Both sides price
the same calls (random usage, real model names, one process, taking turns); the table's answer is
checked against the pricer's on every call.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial

import genai_prices

from otel_runjournal.pricing import CallUsage, Pricer

MODELS = [("openai", "gpt-4o-mini"), ("openai", "o3"), ("anthropic", "claude-3-5-haiku-latest"),
          ("anthropic", "claude-sonnet-4-5"), ("deepseek", "deepseek-chat"),
          ("google", "gemini-2.5-pro")]  # fmt: skip
CALLS = 300


def _calls(seed: int) -> list[tuple[str, str, CallUsage]]:
    """Random usage (the model is chosen by the caller)."""
    rng = random.Random(seed)
    out = []
    for _ in range(CALLS):
        provider, model = rng.choice(MODELS)
        i = rng.randint(0, 400_000)  # both sides of the 200k tiers
        read = rng.randint(0, i // 2)
        o = rng.randint(0, 4_000)
        out.append((provider, model, CallUsage(i, o, read, 0, rng.randint(0, o))))
    return out


def _table(provider: str, model: str, u: CallUsage, at: datetime) -> float:
    usage = genai_prices.Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                               cache_read_tokens=u.cache_read_tokens or None,
                               output_reasoning_tokens=u.reasoning_tokens or None)  # fmt: skip
    return float(
        genai_prices.calc_price(usage, model, provider_id=provider, genai_request_timestamp=at).total_price
    )


def _timed(fn: Callable[[], list[float | None]]) -> tuple[float, list[float | None]]:
    """(µs per call, the costs)."""
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) / CALLS * 1e6, out


def main() -> None:
    at = datetime.now(timezone.utc)
    pricer = Pricer()
    pricer.warm()
    print(f"{'model':<36} {'calc_price us':>14} {'Pricer.price us':>16} {'ratio':>7}")
    for provider, model in MODELS:
        calls = [(provider, model, u) for _, _, u in _calls(7)]
        for p, m, u in calls[:5]:  # warm-up: both sides' caches (the pricer reads the rates here)
            _table(p, m, u, at)
            pricer.price(p, m, u, at)
        table_us: list[float] = []
        pricer_us: list[float] = []
        table = partial(_table_costs, calls, at)
        ours = partial(_pricer_costs, pricer, calls, at)
        for _round in range(5):
            table_time, want = _timed(table)
            ours_time, got = _timed(ours)
            table_us.append(table_time)
            pricer_us.append(ours_time)
            if got != want:
                raise RuntimeError(f"{provider}/{model}: the pricer and the table disagree")
        t, o = statistics.median(table_us), statistics.median(pricer_us)
        print(f"{provider + '/' + model:<36} {t:>14.1f} {o:>16.1f} {t / o:>6.0f}x")
    print(f"(medians of 5 rounds of {CALLS} calls)")


def _table_costs(calls: list[tuple[str, str, CallUsage]], at: datetime) -> list[float | None]:
    return [_table(p, m, u, at) for p, m, u in calls]


def _pricer_costs(
    pricer: Pricer, calls: list[tuple[str, str, CallUsage]], at: datetime
) -> list[float | None]:
    out: list[float | None] = []
    for p, m, u in calls:
        price = pricer.price(p, m, u, at)
        out.append(None if price is None else price.cost_usd)
    return out


if __name__ == "__main__":
    main()
