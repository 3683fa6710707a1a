"""The store interface both stores implement, and the query-argument rules they share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from ..records import CATEGORIES, RUN_STATUSES, RunEvent, RunRecord, RunWrite, SpanRecord, TokenUsage
from .retention import PruneResult

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class StoreError(Exception):
    """A store could not be opened, written or read (message says what to do)."""


class StoreLockedError(StoreError):
    """The store is held by another process for longer than the wait allowed."""


@runtime_checkable
class RunStore(Protocol):
    """A run journal: writes :class:`RunWrite` units atomically and answers the query API.

    Cursor rules (both stores): ``seq`` is per thread. ``after_seq`` pages forwards (the first
    ``limit`` rows above it), ``before_seq`` backwards (the last ``limit`` rows below it); pages are
    always returned in ascending ``seq``; both together select the open interval between them
    (the first ``limit`` rows of it); ``limit`` must be 1..MAX_LIMIT.
    """

    def write(self, batch: Sequence[RunWrite]) -> None:
        """Write the batch in one transaction, assigning ``seq``; raise :class:`StoreError` on failure."""
        ...

    def list_events(
        self,
        run_id: str,
        *,
        category: str | None = None,
        event_types: Sequence[str] | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[RunEvent]: ...

    def list_messages(
        self,
        thread_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[RunEvent]: ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def list_runs(
        self,
        *,
        thread_id: str | None = None,
        status: str | None = None,
        limit: int = DEFAULT_LIMIT,
        name: str | None = None,
        service_name: str | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
    ) -> list[RunRecord]:
        """Most recent first (by ``started_at``); ``started_after`` is inclusive, ``started_before``
        exclusive (a page's oldest ``started_at`` is the next page's ``started_before``)."""
        ...

    def count_runs(
        self,
        *,
        thread_id: str | None = None,
        status: str | None = None,
        name: str | None = None,
        service_name: str | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
    ) -> int:
        """How many runs :meth:`list_runs` would list with these filters and no limit."""
        ...

    def token_usage(self, *, run_id: str | None = None, thread_id: str | None = None) -> TokenUsage: ...

    def list_spans(self, run_id: str) -> list[SpanRecord]:
        """The run's ``spans`` rows by start time: its trace tree, without Jaeger."""
        ...

    def prune(
        self,
        *,
        older_than: datetime,
        keep_errors: bool = False,
        thread_id: str | None = None,
        dry_run: bool = False,
    ) -> PruneResult:
        """Delete whole runs that started before ``older_than`` (never a ``running`` one; rules in
        :mod:`.retention`); ``dry_run`` counts them and changes nothing."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RunFilter:
    """The filters of ``list_runs`` / ``count_runs`` (equality on columns, a ``started_at`` range)."""

    thread_id: str | None = None
    status: str | None = None
    name: str | None = None
    service_name: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None

    def equal(self) -> dict[str, str]:
        """Column → value for the equality filters that are set."""
        pairs = (
            ("thread_id", self.thread_id),
            ("status", self.status),
            ("name", self.name),
            ("service_name", self.service_name),
        )
        return {k: v for k, v in pairs if v is not None}

    def matches(self, run: RunRecord) -> bool:
        """Whether ``run`` passes every filter (the in-memory stores' test)."""
        if any(getattr(run, k) != v for k, v in self.equal().items()):
            return False
        if self.started_after is None and self.started_before is None:
            return True
        if run.started_at is None:
            return False
        if self.started_after is not None and run.started_at < self.started_after:
            return False
        return self.started_before is None or run.started_at < self.started_before


def check_page_args(
    *,
    limit: int,
    after_seq: int | None = None,
    before_seq: int | None = None,
    category: str | None = None,
    status: str | None = None,
) -> None:
    """Raise ``ValueError`` for query arguments outside the contract."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    for name, value in (("after_seq", after_seq), ("before_seq", before_seq)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if category is not None and category not in CATEGORIES:
        raise ValueError(f"category must be one of {CATEGORIES}, got {category!r}")
    if status is not None and status not in RUN_STATUSES:
        raise ValueError(f"status must be one of {RUN_STATUSES}, got {status!r}")
