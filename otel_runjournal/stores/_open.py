"""``open_store(location)``: one string (argument or ``OTEL_RUNJOURNAL_STORE``) → a store."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from .. import _env
from ._base import RunStore
from .duckdb_store import DuckDBStore
from .jsonl_store import JsonlStore

_DUCKDB_SUFFIXES = (".duckdb", ".db", ".ddb")


def _url_path(location: str, scheme: str) -> str:
    parts = urlsplit(location)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise ValueError(
            f"malformed store URL {location!r}: use {scheme}:///absolute/path or {scheme}:relative/path"
        )
    path = unquote(parts.path)
    if not path:
        raise ValueError(f"store URL {location!r} has no path")
    return path


def open_store(location: str | os.PathLike[str] | None = None) -> RunStore:
    """Open the store at ``location`` (default: ``OTEL_RUNJOURNAL_STORE``, else ``./runjournal.duckdb``).

    ``x.duckdb`` (also ``.db``/``.ddb``) or ``duckdb:///x.duckdb`` → :class:`DuckDBStore`;
    an existing directory, a path ending in ``/``, or ``jsonl:///dir`` → :class:`JsonlStore`.
    """
    raw = _env.resolve(
        None if location is None else os.fspath(location), _env.OTEL_RUNJOURNAL_STORE, _env.DEFAULT_STORE
    )
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"store location must be a non-empty path or URL, got {location!r}")
    text = raw.strip()
    scheme = (
        text.split(":", 1)[0].lower()
        if "://" in text or text.lower().startswith(("duckdb:", "jsonl:"))
        else ""
    )
    if scheme == "duckdb":
        return DuckDBStore(_url_path(text, "duckdb"))
    if scheme == "jsonl":
        return JsonlStore(_url_path(text, "jsonl"))
    if scheme:
        raise ValueError(f"unknown store scheme in {text!r}: use duckdb:///file.duckdb or jsonl:///directory")
    if os.path.isdir(text) or text.endswith(("/", os.sep)):
        return JsonlStore(text)
    if text.lower().endswith(_DUCKDB_SUFFIXES):
        return DuckDBStore(text)
    raise ValueError(
        f"cannot tell which store {text!r} is: name a DuckDB file ending in .duckdb, an existing "
        "directory (JSONL), or use duckdb:///path / jsonl:///path"
    )
