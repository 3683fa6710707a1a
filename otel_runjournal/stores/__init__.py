"""Run journal stores: DuckDB (default) and JSONL, behind one interface."""

from __future__ import annotations

from ._base import DEFAULT_LIMIT, MAX_LIMIT, RunStore, StoreError, StoreLockedError, check_page_args
from ._open import open_store
from .duckdb_store import DuckDBStore
from .jsonl_store import JsonlStore

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "DuckDBStore",
    "JsonlStore",
    "RunStore",
    "StoreError",
    "StoreLockedError",
    "check_page_args",
    "open_store",
]
