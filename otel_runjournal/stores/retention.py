"""Retention: which runs a prune deletes, and what it reports (every store follows these rules).

A prune deletes **whole runs**: a run's events, its spans and its ``runs`` row go in one
transaction (DuckDB, PostgreSQL) or one rewrite under the journal's lock (JSONL), so a reader never
sees half a run. It selects runs that

- started before the cut-off (``started_at < older_than``; a run with no start time is kept),
- are not ``running`` (a run still open is never touched, whatever its age),
- are not ``error`` when ``keep_errors`` is set, and belong to ``thread_id`` when one is given.

``thread_seq`` (each thread's last ``seq``) is never touched: a thread whose every event was pruned
goes on counting from where it was, so a ``seq`` is never handed out twice (DESIGN.md "RunEvents").
Runs are deleted in chunks of :data:`PRUNE_CHUNK` runs, one transaction each, so a concurrent writer
(another process on DuckDB, any host on PostgreSQL) waits at most one chunk.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

PRUNE_CHUNK = 500
"""Runs deleted per transaction."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` → a positive :class:`timedelta` (else ``ValueError``)."""
    match = _AGE.match(text or "")
    if not match:
        raise ValueError(f"not an age: {text!r} (write e.g. 30d, 12h, 90m, 2w)")
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise ValueError(f"an age must be more than 0, got {text!r}")
    return timedelta(seconds=seconds)


def cutoff(age: timedelta, now: datetime | None = None) -> datetime:
    """The UTC instant ``age`` before ``now`` (default: the current time)."""
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc) - age


def check_prune_args(older_than: datetime, thread_id: str | None) -> datetime:
    """``older_than`` as an aware UTC datetime; ``ValueError`` for a naive one or a non-string thread."""
    if not isinstance(older_than, datetime) or older_than.tzinfo is None:
        raise ValueError(f"older_than must be a timezone-aware datetime, got {older_than!r}")
    if thread_id is not None and not isinstance(thread_id, str):
        raise ValueError(f"thread_id must be a string, got {thread_id!r}")
    return older_than.astimezone(timezone.utc)


def selected(status: str, started_at: datetime | None, older_than: datetime, keep_errors: bool) -> bool:
    """Whether a run with this status and start is pruned (the rule the SQL stores express in SQL)."""
    if status == "running" or started_at is None:
        return False
    if keep_errors and status == "error":
        return False
    return started_at < older_than


@dataclass(slots=True)
class PruneResult:
    """What a prune deleted (or, with ``dry_run``, would delete).

    ``bytes``: the size of the deleted rows where the store knows it (JSONL: exact bytes of the
    lines and files; PostgreSQL: ``pg_column_size`` of the rows, before index and page overhead;
    DuckDB: ``None``, its columns are compressed per row group). ``size_before``/``size_after``: the
    journal's size on disk around a real prune (file, directory, or the three tables with their
    indexes), ``None`` in a dry run.
    """

    runs: int = 0
    events: int = 0
    spans: int = 0
    bytes: int | None = None
    dry_run: bool = False
    size_before: int | None = None
    size_after: int | None = None

    def add(self, runs: int, events: int, spans: int, size: int | None) -> None:
        """Count one chunk."""
        self.runs += runs
        self.events += events
        self.spans += spans
        if size is not None:
            self.bytes = (self.bytes or 0) + size

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
