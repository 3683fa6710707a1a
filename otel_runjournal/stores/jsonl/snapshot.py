"""Reading a JSONL journal without a lock: only what is committed, and nothing written.

A writer logs a batch's intent (every file's size before the batch) in ``commits.jsonl``, appends,
then logs ``ok``; a batch that fails is truncated back and logged ``abort``. A reader that takes no
lock (so it can run on a read-only mount and never blocks a writer) therefore reads a file and then
looks at the commit log again: for every batch that was open when it started, or began meanwhile,
and did not end ``ok``, the bytes from that batch's recorded size on are not (yet) the journal's and
are cut off. Torn last lines are skipped by the line reader as usual.
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


def _read(path: str, offset: int) -> bytes | None:
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

    def _advance(self) -> list[tuple[dict[str, Any], bool]]:
        """Read the log's new complete lines: ``(intent, ended ok)`` for the batch open before and
        every batch begun in them."""
        data = _read(os.path.join(self.directory, COMMITS_FILE), self._log_offset) or b""
        seen: list[tuple[dict[str, Any], bool]] = []
        outcome: dict[str, bool] = {}
        batches = [self._open] if self._open is not None else []
        for record in _records(data):
            if "files" in record:
                batches.append(record)
            elif "b" in record:
                outcome[str(record["b"])] = bool(record.get("ok"))
        for intent in batches:
            key = str(intent.get("b"))
            seen.append((intent, outcome.get(key, False)))
        self._log_offset += data.rfind(b"\n") + 1
        unfinished = [i for i in batches if str(i.get("b")) not in outcome]
        self._open = unfinished[-1] if unfinished else None
        return seen

    def read(self, relative: str, offset: int = 0) -> bytes | None:
        """``relative``'s committed bytes from ``offset`` (``None`` if the file does not exist)."""
        self._advance()  # batches that ended before the read are settled; an open one may still fail
        data = _read(os.path.join(self.directory, relative), offset)
        if data is None:
            return None
        bad = [intent for intent, ok in self._advance() if not ok]
        caps = [int(intent["files"][relative]) for intent in bad if relative in intent.get("files", {})]
        if caps:
            data = data[: max(0, min(caps) - offset)]
        return data
