"""Store locations: one string (argument or ``OTEL_RUNJOURNAL_STORE``) → which store, where.

:func:`split_location` only parses (the CLI uses it to check a path before opening anything);
:func:`open_store` parses and opens, importing the chosen backend only then.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .. import settings as _env
from .base import StoreError
from .postgres.conninfo import is_postgres, mask

if TYPE_CHECKING:
    from .base import RunStore

SCHEMES = ("duckdb", "jsonl")
"""Schemes whose location is a path; ``postgresql://`` (and ``postgres://``) URLs are passed whole."""
_DUCKDB_SUFFIXES = (".duckdb", ".db", ".ddb")


def split_location(location: str | os.PathLike[str]) -> tuple[str, str]:
    """``(scheme, path)`` of a store location; scheme is ``duckdb``, ``jsonl``, ``postgresql`` (the
    "path" is then the whole URL, password included: print :func:`mask` of it) or ``""`` (a plain path).

    Raises ``ValueError`` for an unknown scheme or a malformed URL (``duckdb://host/x``, no path).
    """
    text = os.fspath(location).strip()
    if not text:
        raise ValueError("store location is empty")
    if is_postgres(text):
        return "postgresql", text
    if "://" not in text and not text.lower().startswith(tuple(f"{s}:" for s in SCHEMES)):
        return "", text
    scheme = text.split(":", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ValueError(
            f"unknown store scheme in {mask(text)!r}: use duckdb:///file.duckdb, jsonl:///directory "
            "or postgresql://user@host:port/database"
        )
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise ValueError(
            f"malformed store URL {mask(text)!r}: use {scheme}:///absolute/path or {scheme}:relative/path"
        )
    path = unquote(parts.path)
    if not path:
        raise ValueError(f"store URL {mask(text)!r} has no path")
    return scheme, path


def open_store(
    location: str | os.PathLike[str] | None = None, *, read_only: bool = False, hold: bool = False
) -> RunStore:
    """Open the store at ``location`` (default: ``OTEL_RUNJOURNAL_STORE``, else ``./runjournal.duckdb``).

    ``x.duckdb`` (also ``.db``/``.ddb``) or ``duckdb:///x.duckdb`` → :class:`DuckDBStore`;
    an existing directory, a path ending in ``/``, ``jsonl:dir`` or ``jsonl:///dir`` → :class:`JsonlStore`;
    ``postgresql://user@host:port/db`` → :class:`PostgresStore` (the ``postgres`` extra).
    ``read_only=True`` opens an existing journal for reading and never creates, modifies or locks
    anything; a location that is not a journal raises :class:`StoreError` saying what was expected.
    ``hold=True`` keeps a DuckDB file open until ``close()`` instead of letting go after ``linger``
    idle seconds (no timer thread): for short-lived readers such as a CLI command.
    """
    if location is not None and not isinstance(location, (str, os.PathLike)):
        raise ValueError(f"store location must be a str or os.PathLike, got {type(location).__name__}")
    raw = _env.resolve(
        None if location is None else os.fspath(location), _env.OTEL_RUNJOURNAL_STORE, _env.DEFAULT_STORE
    )
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"store location must be a non-empty path or URL, got {location!r}")
    if raw.strip().lower() == "none":
        raise ValueError(
            "store location 'none' means no run journal (configure() then exports OTLP only); "
            "a journal needs a path or URL here"
        )
    scheme, path = split_location(raw)
    if not scheme:
        if os.path.isdir(path) or path.endswith(("/", os.sep)):
            scheme = "jsonl"
        elif path.lower().endswith(_DUCKDB_SUFFIXES):
            scheme = "duckdb"
        else:
            raise ValueError(
                f"cannot tell which store {path!r} is: write {path}.duckdb for a DuckDB file, or "
                f"{path}/ (or jsonl:{path}) for a JSONL directory"
            )
    if scheme == "postgresql":
        try:
            from .postgres.store import PostgresStore
        except ImportError as exc:
            raise StoreError(str(exc)) from None

        return PostgresStore(path, read_only=read_only)
    if scheme == "duckdb":
        from .duckdb.store import DEFAULT_LINGER, DuckDBStore

        return DuckDBStore(path, read_only=read_only, linger=math.inf if hold else DEFAULT_LINGER)
    from .jsonl.store import JsonlStore

    return JsonlStore(path, read_only=read_only)
