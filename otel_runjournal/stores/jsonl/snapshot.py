"""Reading a JSONL journal without a lock: only what is committed, and nothing written.

A writer logs a batch's intent (every file's size before the batch) in ``commits.jsonl``, appends,
then logs ``ok``; a batch that fails is truncated back and logged ``abort``. A reader that takes no
lock (so it can run on a read-only mount and never blocks a writer) reads the commit log, then the
file, then the log again: every batch that was not yet ``ok`` when the read began (open then, or
begun since) may be partly in what was read, so the bytes from that batch's recorded size on are cut
off, whatever the batch's outcome later (a batch that succeeds is seen by the next read). Torn last
lines are skipped by the line reader as usual.
"""

from __future__ import annotations

import os
from typing import Any

from .. import codec as _codec
from ..base import StoreError

COMMITS_FILE = "commits.jsonl"
_MARKERS = ("runs.jsonl", "events", COMMITS_FILE)


def check_journal_directory(directory: str) -> None:
    """Raise :class:`StoreError` unless ``directory`` exists and holds a JSONL run journal."""
    if not os.path.isdir(directory):
        raise StoreError(
            f"no run journal at {directory}"
            if not os.path.exists(directory)
            else f"{directory} is not a run journal directory (it is a file)"
        )
    if not any(os.path.exists(os.path.join(directory, name)) for name in _MARKERS):
        raise StoreError(
            f"{directory} is not a run journal (expected a directory written by otel-runjournal, "
            "holding runs.jsonl and events/)"
        )


def _records(data: bytes) -> list[dict[str, Any]]:
    out = []
    for line in data[: data.rfind(b"\n") + 1].splitlines():
        try:
            record = _codec.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def read_from(path: str, offset: int) -> bytes | None:
    """The bytes from ``offset``: ``None`` if the file does not exist, ``b""`` if it shrank below it."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size < offset:
                return b""
            handle.seek(offset)
            return handle.read(size - offset)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc


class CommittedReader:
    """Reads a journal's files up to their committed size; remembers how far it read the commit log."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._log_offset = 0
        self._open: dict[str, Any] | None = None  # the batch whose intent has no outcome yet

    def _advance(self) -> list[dict[str, Any]]:
        """Read the log's new complete lines; the intents of the batch open before and of every batch
        begun in them (whatever their outcome)."""
        data = read_from(os.path.join(self.directory, COMMITS_FILE), self._log_offset) or b""
        ended: set[str] = set()
        batches = [self._open] if self._open is not None else []
        for record in _records(data):
            if "files" in record:
                batches.append(record)
            elif "b" in record:
                ended.add(str(record["b"]))
        self._log_offset += data.rfind(b"\n") + 1
        unfinished = [i for i in batches if str(i.get("b")) not in ended]
        self._open = unfinished[-1] if unfinished else None
        return batches

    def read(self, relative: str, offset: int = 0) -> bytes | None:
        """``relative``'s committed bytes from ``offset`` (``None`` if the file does not exist)."""
        self._advance()  # batches that ended before the read are settled; an open one may still fail
        data = read_from(os.path.join(self.directory, relative), offset)
        if data is None:
            return None
        pending = self._advance()  # not ok before the read: may be partly in ``data``
        caps = [int(intent["files"][relative]) for intent in pending if relative in intent.get("files", {})]
        if caps:
            data = data[: max(0, min(caps) - offset)]
        return data
