"""What a model call cost, in USD: pydantic's ``genai-prices`` table (shipped with the package, never
updated over the network here) or the user's own prices, which win.

One function prices everything: the journal's ``llm_end`` events and ``runs`` rows, ``reprice``, and
``on_run_end``'s summary, so the numbers agree. A call is priced from its provider
(``gen_ai.provider.name``), its model (the response model, else the request model) and its usage
breakdown as the GenAI conventions count it: input tokens *including* cache reads and cache writes,
output tokens *including* reasoning. A call that cannot be priced (an unknown model or provider, no
``genai-prices`` on Python 3.10) is **unpriced**: ``None``, never $0.

User prices (``configure(prices=...)``, ``RunJournalExporter(prices=...)`` or a JSON file named by
``OTEL_RUNJOURNAL_PRICES``) map a model name (response or request model, any provider) to either

- USD per million tokens: ``{"input_mtok": 0.5, "output_mtok": 1.5, "cache_read_mtok": 0.05,
  "cache_write_mtok": 0.6}`` (the cache prices default to the input price), or
- another model to price it as: ``"openai:gpt-4o-mini"`` (``provider:model`` from the table; a
  fine-tuned or self-hosted copy of a public model).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from .price_rates import Rates, ordinary, table_usage

_logger = logging.getLogger(__name__)

PRICE_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")

# gen_ai.provider.name (semconv well-known values) → genai-prices provider id, where they differ
_PROVIDER_IDS = {
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "google_genai": "google",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "moonshot_ai": "moonshotai",
}


class CallUsage(NamedTuple):
    """One model call's usage as the GenAI conventions count it (cache and reasoning included)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


class Price(NamedTuple):
    """A priced call: its cost and the price data that priced it (``genai-prices 0.2.5: openai/gpt-4o``,
    ``user: my-model``)."""

    cost_usd: float
    source: str


@dataclass(frozen=True)
class _UserPrice:
    input_mtok: float
    output_mtok: float
    cache_read_mtok: float
    cache_write_mtok: float


def _parse_user_prices(prices: Mapping[str, Any]) -> dict[str, _UserPrice | tuple[str | None, str]]:
    """Validate user prices (``ValueError`` with a one-line reason)."""
    if not isinstance(prices, Mapping):
        raise ValueError(f"prices must be a mapping of model name to prices, got {type(prices).__name__}")
    out: dict[str, _UserPrice | tuple[str | None, str]] = {}
    for model, spec in prices.items():
        if not isinstance(model, str) or not model:
            raise ValueError(f"prices: model names must be non-empty strings, got {model!r}")
        if isinstance(spec, str):
            provider, colon, name = spec.partition(":")
            out[model] = (provider, name) if colon and name else (None, spec)
            continue
        if not isinstance(spec, Mapping):
            raise ValueError(f"prices[{model!r}] must be a mapping of {PRICE_KEYS} or 'provider:model'")
        unknown = set(spec) - set(PRICE_KEYS)
        if unknown:
            raise ValueError(f"prices[{model!r}]: unknown keys {sorted(unknown)}; expected {PRICE_KEYS}")
        values: dict[str, float] = {}
        for key in PRICE_KEYS:
            value = spec.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"prices[{model!r}][{key!r}] must be a non-negative number, got {value!r}")
            values[key] = float(value)
        if "input_mtok" not in values or "output_mtok" not in values:
            raise ValueError(f"prices[{model!r}] needs input_mtok and output_mtok (USD per million tokens)")
        out[model] = _UserPrice(
            values["input_mtok"],
            values["output_mtok"],
            values.get("cache_read_mtok", values["input_mtok"]),
            values.get("cache_write_mtok", values["input_mtok"]),
        )
    return out


def load_prices_file(path: str | Path) -> dict[str, Any]:
    """The user prices in a JSON file (``ValueError`` naming the file when it is unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read prices file {path}: {exc}") from exc
    _parse_user_prices(data)
    return dict(data)


def resolve_pricer(prices: Mapping[str, Any] | None = None) -> Pricer:
    """``prices`` → the JSON file named by ``OTEL_RUNJOURNAL_PRICES`` → the table alone. Bad ``prices``
    raise ``ValueError``; a bad file is logged and ignored (configuration from the environment never
    stops the application)."""
    from . import settings as _env

    if prices is not None:
        return Pricer(prices)
    path = _env.resolve(None, _env.OTEL_RUNJOURNAL_PRICES, "")
    if path:
        try:
            return Pricer(load_prices_file(path))
        except ValueError as exc:
            _logger.warning("ignoring %s: %s", _env.OTEL_RUNJOURNAL_PRICES, exc)
    return default_pricer()


def table_version() -> str | None:
    """``genai-prices X.Y.Z`` when the price table is installed, else ``None``."""
    try:
        from importlib.metadata import version

        return f"genai-prices {version('genai-prices')}"
    except Exception:
        return None


class Pricer:
    """Prices model calls; safe to share between threads. ``prices``: user prices (see the module doc)."""

    def __init__(self, prices: Mapping[str, Any] | None = None) -> None:
        self._user = _parse_user_prices(prices or {})
        self._lock = threading.Lock()
        self._calc: Any = None  # genai_prices.calc_price, imported on first use (~0.3 s)
        self._usage_type: Any = None
        self._loaded = False
        self._misses: set[tuple[str | None, str]] = set()
        self._rates: dict[tuple[str | None, str], Rates] = {}  # table models priced before (see price_rates)
        self._version = table_version()

    @property
    def has_user_prices(self) -> bool:
        return bool(self._user)

    def warm(self) -> None:
        """Import the price table now (~0.3 s), e.g. at construction, not on a run's thread later."""
        self._table()

    def _table(self) -> tuple[Any, Any]:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    try:
                        from genai_prices import Usage, calc_price

                        self._calc, self._usage_type = calc_price, Usage
                    except Exception:  # not installed (Python 3.10), or broken: every call unpriced
                        _logger.info("genai-prices is not available: model calls are journaled unpriced")
                    self._loaded = True
        return self._calc, self._usage_type

    def price(
        self, provider: str | None, model: str | None, usage: CallUsage, at: datetime | None = None
    ) -> Price | None:
        """The cost of one call, or ``None`` when it cannot be priced. Never raises."""
        if not model:
            return None
        try:
            spec = self._user.get(model)
            if isinstance(spec, _UserPrice):
                return Price(_user_cost(spec, usage), f"user: {model}")
            if spec is not None:
                table_provider, table_model = spec
                priced = self._table_price(table_provider, table_model, usage, at)
                return None if priced is None else Price(priced.cost_usd, f"user: as {priced.source}")
            return self._table_price(provider, model, usage, at)
        except Exception as exc:  # a pricing problem never loses a journal write
            _logger.debug("cannot price %s/%s: %s", provider, model, exc)
            return None

    def _table_price(
        self, provider: str | None, model: str, usage: CallUsage, at: datetime | None
    ) -> Price | None:
        calc, usage_type = self._table()
        if calc is None:
            return None
        provider_id = _PROVIDER_IDS.get(provider, provider) if provider else None
        key = (provider_id, model)
        if key in self._misses:
            return None
        at = at or datetime.now(timezone.utc)
        rates = self._rates.get(key)
        if rates is not None and ordinary(usage):
            found = rates.price(usage, at)
            if found is not None:
                return Price(float(found), rates.source)
        try:
            result = calc(
                table_usage(usage_type, usage), model, provider_id=provider_id, genai_request_timestamp=at
            )
        except LookupError:
            if len(self._misses) < 10_000:
                self._misses.add(key)
            return None
        source = f"{self._version}: {result.provider.id}/{result.model.id}"
        if rates is None and len(self._rates) < 10_000:
            self._rates[key] = Rates(calc, usage_type, model, provider_id, result.model, source)
        return Price(float(result.total_price), source)


def priced_model(attrs: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(provider, model) a call is priced by: ``gen_ai.provider.name`` (else the older ``gen_ai.system``)
    and the response model, else the request model. The journal and ``on_run_end`` both use this."""
    provider = attrs.get("gen_ai.provider.name")
    if provider is None:
        provider = attrs.get("gen_ai.system")
    model = attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model")
    return (
        provider if isinstance(provider, str) and provider else None,
        model if isinstance(model, str) and model else None,
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def span_cost(pricer: Pricer, span: Any) -> float | None:
    """The cost of one of the handler's own (finished) model-call spans, priced exactly as the journal
    prices its ``llm_end``: same attributes, same usage, same time (the span's start)."""
    from .records import utc

    attrs = span.attributes or {}
    provider, model = priced_model(attrs)
    usage = CallUsage(
        _int(attrs.get("gen_ai.usage.input_tokens")),
        _int(attrs.get("gen_ai.usage.output_tokens")),
        _int(attrs.get("gen_ai.usage.cache_read.input_tokens")),
        _int(attrs.get("gen_ai.usage.cache_creation.input_tokens")),
        _int(attrs.get("gen_ai.usage.reasoning.output_tokens")),
    )
    price = pricer.price(provider, model, usage, utc(span.start_time or 0))
    return None if price is None else price.cost_usd


def _user_cost(spec: _UserPrice, usage: CallUsage) -> float:
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    uncached = max(usage.input_tokens - cached, 0)
    return (
        uncached * spec.input_mtok
        + usage.cache_read_tokens * spec.cache_read_mtok
        + usage.cache_write_tokens * spec.cache_write_mtok
        + usage.output_tokens * spec.output_mtok
    ) / 1_000_000


_default: Pricer | None = None
_default_lock = threading.Lock()


def default_pricer() -> Pricer:
    """The table alone (no user prices): what a store's own readers use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Pricer()
    return _default
