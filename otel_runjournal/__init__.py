"""OpenTelemetry GenAI tracing for LangChain / LangGraph, plus a local queryable run journal.

Callbacks → spans (:class:`RunJournalCallbackHandler`) → the application's TracerProvider →
:class:`RunJournalExporter` → a store (:class:`DuckDBStore` by default, or :class:`JsonlStore`) →
the query API, the ``otel-runjournal`` CLI or plain DuckDB SQL. :func:`configure` wires it in one call.
"""

from __future__ import annotations

from ._configure import Configured, configure
from ._instrument import RunJournalInstrumentor, instrument, uninstrument
from ._records import RunEvent, RunRecord, RunWrite, SpanRecord, TokenUsage
from .exporter import RunJournalExporter
from .handler import RunJournalCallbackHandler
from .stores import DuckDBStore, JsonlStore, RunStore, StoreError, StoreLockedError, open_store

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
