"""Parse a store location the way ``open_store`` does, without opening (or creating) anything."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

SCHEMES = ("duckdb", "jsonl")


def split_location(location: str | os.PathLike[str]) -> tuple[str, str]:
    """``(scheme, path)`` of a store location; scheme is ``duckdb``, ``jsonl`` or ``""`` (a plain path).

    Raises ``ValueError`` for an unknown scheme or a malformed URL (``duckdb://host/x``, no path).
    """
    text = os.fspath(location).strip()
    if not text:
        raise ValueError("store location is empty")
    if "://" not in text and not text.lower().startswith(tuple(f"{s}:" for s in SCHEMES)):
        return "", text
    scheme = text.split(":", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ValueError(f"unknown store scheme in {text!r}: use duckdb:///file.duckdb or jsonl:///directory")
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise ValueError(
            f"malformed store URL {text!r}: use {scheme}:///absolute/path or {scheme}:relative/path"
        )
    path = unquote(parts.path)
    if not path:
        raise ValueError(f"store URL {text!r} has no path")
    return scheme, path
