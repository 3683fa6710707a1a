"""Run journal stores: DuckDB (default) and JSONL, behind one interface."""

from __future__ import annotations

from ._base import DEFAULT_LIMIT, MAX_LIMIT, RunStore, StoreError, StoreLockedError, check_page_args

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "RunStore", "StoreError", "StoreLockedError", "check_page_args"]
