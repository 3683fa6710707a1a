"""OpenTelemetry GenAI tracing for LangChain / LangGraph, plus a local queryable run journal.

The sub-packages follow the data flow, left to right:
``tracing`` (callbacks → spans) → the application's TracerProvider → ``journal`` (spans → rows) →
``stores`` (rows → DuckDB / JSONL, the query API) → ``cli`` (reading, the demo). ``wiring.configure``
connects them in one call. Names are imported lazily, so ``otel_runjournal.stores`` or the CLI's
reading commands never load LangChain or the OpenTelemetry SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .journal.exporter import RunJournalExporter
    from .records import RunEvent, RunRecord, RunWrite, SpanRecord, TokenUsage
    from .stores.base import RunStore, StoreError, StoreLockedError
    from .stores.duckdb.store import DuckDBStore
    from .stores.jsonl.store import JsonlStore
    from .stores.location import open_store
    from .tracing.handler import RunJournalCallbackHandler
    from .tracing.instrument import RunJournalInstrumentor, instrument, uninstrument
    from .wiring import Configured, configure

_WHERE = {
    "Configured": ".wiring",
    "DuckDBStore": ".stores.duckdb.store",
    "JsonlStore": ".stores.jsonl.store",
    "RunEvent": ".records",
    "RunJournalCallbackHandler": ".tracing.handler",
    "RunJournalExporter": ".journal.exporter",
    "RunJournalInstrumentor": ".tracing.instrument",
    "RunRecord": ".records",
    "RunStore": ".stores.base",
    "RunWrite": ".records",
    "SpanRecord": ".records",
    "StoreError": ".stores.base",
    "StoreLockedError": ".stores.base",
    "TokenUsage": ".records",
    "configure": ".wiring",
    "instrument": ".tracing.instrument",
    "open_store": ".stores.location",
    "uninstrument": ".tracing.instrument",
}

__all__ = [
    "Configured",
    "DuckDBStore",
    "JsonlStore",
    "RunEvent",
    "RunJournalCallbackHandler",
    "RunJournalExporter",
    "RunJournalInstrumentor",
    "RunRecord",
    "RunStore",
    "RunWrite",
    "SpanRecord",
    "StoreError",
    "StoreLockedError",
    "TokenUsage",
    "configure",
    "instrument",
    "open_store",
    "uninstrument",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
