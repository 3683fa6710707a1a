"""File names derived from ids: readable, unique, and never a path.

An id is user input (``metadata["run_id"]`` can be anything): ``../../etc/x``, NUL bytes, ``/``,
10 kB strings. The name keeps a short sanitised prefix for humans and a hash of the whole id for
uniqueness, so it is always one plain component inside the store's directory.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
PREFIX_MAX = 40


def safe_file_name(identifier: str, suffix: str = ".jsonl") -> str:
    """``<sanitised prefix>-<sha256 prefix><suffix>``; only ``[A-Za-z0-9_-]`` before the suffix."""
    digest = hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest()[:20]
    prefix = _UNSAFE.sub("_", identifier)[:PREFIX_MAX].strip("_") or "id"
    return f"{prefix}-{digest}{suffix}"
