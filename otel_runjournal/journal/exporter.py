"""``RunJournalExporter``: an OpenTelemetry ``SpanExporter`` writing finished spans to a run journal.

Passive like every SDK exporter (``BatchSpanProcessor`` owns batching and threads); one lock around
each export / flush / shutdown. Spans are mapped to rows (:mod:`._mapping`) and held per run until the
run is complete (:mod:`._assembler`); each ``export()`` then makes at most ONE ``store.write`` call
with every run it completed, in order.

Failures never reach the SDK: a failing store makes ``export`` return ``FAILURE`` and is logged once
(then at most once a minute); the failed runs are kept and retried with the next export / flush, up to
``max_retries`` more times, then dropped and counted in :attr:`RunJournalExporter.dropped_spans`.

``force_flush()`` writes every run held: unfinished runs are written as ``running`` (their later spans
are appended when they arrive and the ``runs`` row is updated). ``shutdown()`` writes what is left and
marks every unfinished run ``abandoned``; it logs one warning only when spans are really lost.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import content as _content
from .. import settings as _env
from ..guard import report_internal_error
from ..pricing import resolve_pricer
from ..records import RunWrite
from ..stores.base import RunStore
from .assembler import Assembler

_logger = logging.getLogger(__name__)

DEFAULT_MAX_PENDING_SPANS = 100_000
_LOG_INTERVAL_S = 60.0


@dataclass(frozen=True, slots=True)
class ExporterStats:
    """A snapshot of what the exporter did (counts since it was created)."""

    exported_spans: int  # spans received by export()
    written_runs: int  # RunWrite units the store accepted (a run written in parts counts per part)
    written_events: int
    written_spans: int
    pending_runs: int  # runs held, waiting for their root span
    pending_spans: int
    retry_spans: int  # spans of failed writes waiting for a retry
    failed_writes: int  # store.write calls that raised
    dropped_spans: int  # spans given up on (store kept failing, or the mapping failed)
    ignored_spans: int  # foreign GenAI spans in traces the handler also traced (not double counted)


class RunJournalExporter(SpanExporter):
    """Writes finished spans as RunEvents, ``runs`` rows and ``spans`` rows to a :class:`RunStore`.

    - ``store``: a store object (never closed by the exporter), or a location string / ``None``
      (``OTEL_RUNJOURNAL_STORE``, default ``./runjournal.duckdb``) opened with ``open_store`` and
      closed on shutdown.
    - ``max_pending_spans`` (``OTEL_RUNJOURNAL_MAX_PENDING_SPANS``, 100000): spans held for runs
      whose root has not ended; past it the oldest run is written early (see :mod:`._assembler`).
      Also bounds the spans kept for retries.
    - ``journal_content`` (``OTEL_RUNJOURNAL_JOURNAL_CONTENT``, true): record content (messages,
      tool arguments / results); when false, no message rows and no content attributes in span rows.
    - ``foreign_idle_timeout``: seconds after which a group of other instrumentations' spans whose
      local root never ended is written. ``max_retries``: further attempts for a failed write.
    - ``prices`` (``OTEL_RUNJOURNAL_PRICES``, a JSON file): the user's model prices, overriding
      genai-prices' table (see :mod:`otel_runjournal.pricing`).
    - ``clock``: monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        store: RunStore | str | os.PathLike[str] | None = None,
        *,
        max_pending_spans: int | None = None,
        journal_content: bool | None = None,
        foreign_idle_timeout: float = 60.0,
        max_retries: int = 3,
        clock: Callable[[], float] = time.monotonic,
        prices: Mapping[str, Any] | None = None,
    ) -> None:
        pricer = resolve_pricer(prices)
        pending = _env.resolve(
            max_pending_spans, _env.OTEL_RUNJOURNAL_MAX_PENDING_SPANS, DEFAULT_MAX_PENDING_SPANS, int
        )
        if isinstance(pending, bool) or not isinstance(pending, int) or pending < 1:
            raise ValueError(f"max_pending_spans must be a positive integer, got {pending!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries!r}")
        if foreign_idle_timeout <= 0:
            raise ValueError(f"foreign_idle_timeout must be > 0, got {foreign_idle_timeout!r}")
        with_content = _env.resolve(
            journal_content, _env.OTEL_RUNJOURNAL_JOURNAL_CONTENT, True, _env.parse_bool
        )
        if isinstance(store, os.PathLike):
            store = os.fspath(store)
        if store is not None and not isinstance(store, str) and not _is_store(store):
            raise ValueError(
                "RunJournalExporter needs a RunStore or a location (str or os.PathLike), "
                f"got {type(store).__name__}"
            )
        if store is None or isinstance(store, str):
            from ..stores.location import open_store  # lazy: the stores import DuckDB

            location = _env.resolve(store, _env.OTEL_RUNJOURNAL_STORE, _env.DEFAULT_STORE)
            self._store: RunStore = open_store(location)
            self._owns_store = True
        else:
            self._store = store
            self._owns_store = False
        self._max_pending = pending
        self._max_retries = max_retries
        self._clock = clock
        self._assembler = Assembler(
            max_pending_spans=pending,
            with_content=with_content,
            foreign_idle_timeout=foreign_idle_timeout,
            clock=clock,
            pricer=pricer,
            # a run whose root never arrives (dropped, or its process died) is written, incomplete,
            # once it has been idle as long as the handler's run TTL, instead of waiting for shutdown
            run_idle_timeout=_env.resolve(None, _env.OTEL_RUNJOURNAL_RUN_TTL, 3600.0, float),
            # a part of a run the assembler does not remember adds to the store's summary (None from a
            # store that only writes)
            stored_run=getattr(self._store, "get_run", None),
        )
        self._lock = threading.Lock()
        self._retry: list[tuple[RunWrite, int]] = []  # (failed write, attempts so far), oldest first
        self._shutdown = False
        self._warned_after_shutdown = False
        self._last_failure_log: float | None = None
        self._last_error = ""
        self._exported = self._written_runs = self._written_events = self._written_spans = 0
        self._failed_writes = self._dropped = 0
        if with_content:  # handlers with the default journal_content collect content while we exist
            _content.add_reader(self)

    # --- public surface ----------------------------------------------------------------------------
    @property
    def store(self) -> RunStore:
        """The store this exporter writes to."""
        return self._store

    @property
    def dropped_spans(self) -> int:
        """Spans that never reached the store (after the retries ran out, or unmappable)."""
        with self._lock:
            return self._dropped + self._assembler.unmapped_spans

    @property
    def stats(self) -> ExporterStats:
        """Counters of what was exported, written, held, retried and dropped."""
        with self._lock:
            return ExporterStats(
                exported_spans=self._exported,
                written_runs=self._written_runs,
                written_events=self._written_events,
                written_spans=self._written_spans,
                pending_runs=self._assembler.pending_runs,
                pending_spans=self._assembler.pending_spans,
                retry_spans=sum(len(w.spans) for w, _ in self._retry),
                failed_writes=self._failed_writes,
                dropped_spans=self._dropped + self._assembler.unmapped_spans,
                ignored_spans=self._assembler.ignored_spans,
            )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Journal finished spans; never raises. FAILURE when the store failed or after shutdown."""
        with self._lock:
            if self._shutdown:
                if not self._warned_after_shutdown:
                    self._warned_after_shutdown = True
                    _logger.warning("RunJournalExporter: export() called after shutdown; spans ignored")
                return SpanExportResult.FAILURE
            self._exported += len(spans)
            try:
                writes = self._assembler.add(spans)
            except Exception as exc:  # pragma: no cover - the assembler guards each span itself
                report_internal_error("assembling runs", exc)
                return SpanExportResult.FAILURE
            return self._write(writes)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Write every run held (unfinished ones as ``running``); False when the store failed."""
        with self._lock:
            if self._shutdown:
                return False
            return self._write(self._drain(final=False)) is SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Write what is held (unfinished runs as ``abandoned``), then close the store if we opened it."""
        with self._lock:
            if self._shutdown:
                _logger.warning("RunJournalExporter: shutdown() called more than once")
                return
            self._shutdown = True
            _content.remove_reader(self)
            dropped_before = self._dropped
            self._write(self._drain(final=True))
            for write, _ in self._retry:  # no later export will retry these
                self._dropped += len(write.spans)
            self._retry.clear()
            lost = self._dropped - dropped_before
            if lost:  # the one line at exit, and only when something is really lost
                _logger.warning(
                    "RunJournalExporter: %d spans could not be written to the run journal and are lost (%s)",
                    lost,
                    self._last_error,
                )
            if self._owns_store:
                try:
                    self._store.close()
                except Exception as exc:
                    _logger.warning("RunJournalExporter: closing the store failed: %s", exc)

    # --- writing -----------------------------------------------------------------------------------
    def _drain(self, *, final: bool) -> list[RunWrite]:
        try:
            return self._assembler.drain(final=final)
        except Exception as exc:  # pragma: no cover - a bug; never let it escape into the SDK
            report_internal_error("flushing held runs", exc)
            return []

    def _write(self, writes: list[RunWrite]) -> SpanExportResult:
        """One store.write with the retries first, then the new writes; keep what failed."""
        batch = [w for w, _ in self._retry] + writes
        if not batch:
            return SpanExportResult.SUCCESS
        try:
            self._store.write(batch)
        except Exception as exc:  # any store failure: disk full, locked file, bug in a store
            self._failed_writes += 1
            self._log_failure(exc)
            attempts = [(w, n + 1) for w, n in self._retry] + [(w, 1) for w in writes]
            self._retry = []
            held = 0
            for write, n in reversed(attempts):  # newest first, so the bound drops the oldest
                if n > self._max_retries or held + len(write.spans) > self._max_pending:
                    self._dropped += len(write.spans)
                    continue
                held += len(write.spans)
                self._retry.append((write, n))
            self._retry.reverse()
            return SpanExportResult.FAILURE
        self._retry = []
        self._written_runs += len(batch)
        self._written_events += sum(len(w.events) for w in batch)
        self._written_spans += sum(len(w.spans) for w in batch)
        return SpanExportResult.SUCCESS

    def _log_failure(self, exc: Exception) -> None:
        self._last_error = f"{type(exc).__name__}: {exc}"
        if self._shutdown:  # the final write: shutdown() says what was lost, if anything
            return
        now = self._clock()
        if self._last_failure_log is not None and now - self._last_failure_log < _LOG_INTERVAL_S:
            _logger.debug("RunJournalExporter: store write failed again: %r", exc)
            return
        self._last_failure_log = now
        _logger.warning(
            "RunJournalExporter: writing to the run journal failed (%s: %s); the spans are kept for "
            "%d retries, then dropped (see .stats); your application is not affected",
            type(exc).__name__,
            exc,
            self._max_retries,
        )


def _is_store(value: object) -> bool:
    """Whether ``value`` can be written to and closed like a :class:`RunStore` (a user's own store
    need not implement the whole query API)."""
    return callable(getattr(value, "write", None)) and callable(getattr(value, "close", None))
