"""Rows → files and databases, and the query API: DuckDB (default), JSONL and PostgreSQL behind one interface.

``base`` is the interface every store implements, ``location`` turns a location string into a store,
``codec`` the row encoding the backends share; each backend has a folder of its own. Nothing here
imports LangChain, the OpenTelemetry SDK or ``otel_runjournal.tracing``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    RunStore,
    StoreError,
    StoreLockedError,
    check_page_args,
)
from .location import open_store

if TYPE_CHECKING:
    from .duckdb.store import DuckDBStore
    from .jsonl.store import JsonlStore
    from .postgres.store import PostgresStore

_BACKENDS = {
    "DuckDBStore": ".duckdb.store",
    "JsonlStore": ".jsonl.store",
    "PostgresStore": ".postgres.store",
}

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "DuckDBStore",
    "JsonlStore",
    "PostgresStore",
    "RunStore",
    "StoreError",
    "StoreLockedError",
    "check_page_args",
    "open_store",
]


def __getattr__(name: str) -> Any:
    module = _BACKENDS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
