"""Pruning a JSONL journal: whole runs out of its files, each file replaced atomically.

Called with the journal's exclusive lock held (no writer, no locked reader meanwhile). Order, so a
crash at any point leaves nothing a later prune cannot finish: the runs' event files are removed
first, then ``spans.jsonl`` is rewritten without their spans, and ``runs.jsonl`` last — until then
the runs are still listed, and the next prune selects them again and completes the job. A rewrite
goes to a temporary file in the directory, is fsynced, then renamed over the old file: a reader
sees the old file or the new one, never half of one. (Readers that take no lock, ``read_only=True``,
notice the new ``runs.jsonl`` by its inode and read it from the start.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import suppress

from .. import codec as _codec
from ..base import StoreError


def _lines(data: bytes) -> Iterable[bytes]:
    end = data.rfind(b"\n")
    return data[: end + 1].splitlines(keepends=True)


def _run_id(line: bytes) -> object:
    try:
        row = _codec.loads(line)
    except ValueError:
        return None
    return row.get("run_id") if isinstance(row, dict) else None


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return b""


def split_lines(path: str, run_ids: set[str]) -> tuple[list[bytes], int, int]:
    """The file's complete lines that do not belong to ``run_ids``, and (count, bytes) of those that do."""
    kept: list[bytes] = []
    removed = removed_bytes = 0
    for line in _lines(_read(path)):
        if _run_id(line) in run_ids:
            removed += 1
            removed_bytes += len(line)
        else:
            kept.append(line)
    return kept, removed, removed_bytes


def replace_file(path: str, lines: list[bytes]) -> None:
    """Write ``lines`` to a temporary file beside ``path``, fsync it, rename it over ``path``."""
    temp = f"{path}.prune-{os.getpid()}"
    try:
        with open(temp, "wb") as handle:
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        remove_quietly(temp)
        raise StoreError(f"cannot rewrite {path}: {exc}") from exc


def remove_quietly(path: str) -> None:
    with suppress(OSError):
        os.remove(path)


def event_file_size(path: str) -> tuple[int, int]:
    """(complete lines, bytes) of a run's event file; (0, 0) when it does not exist."""
    data = _read(path)
    return data[: data.rfind(b"\n") + 1].count(b"\n"), len(data)


def directory_size(directory: str) -> int:
    """Bytes of every file under ``directory``."""
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                continue
    return total
