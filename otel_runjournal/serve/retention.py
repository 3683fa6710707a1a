"""``serve --retention AGE``: prune the journal on a schedule, beside the journal writer.

A daemon thread of the serve process opens the store once per ``interval`` seconds (the first time
right away), deletes runs that started more than ``age`` ago (``RunStore.prune``: whole runs, never
a running one, chunked so the writer keeps its turns) and closes it again. A failure is logged and
retried at the next interval: retention never stops serve.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from ..stores.location import open_store
from ..stores.retention import cutoff

_logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 3600.0


class Retention:
    """Prunes ``store`` of runs older than ``age`` every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, store: str, age: timedelta, *, interval: float = DEFAULT_INTERVAL) -> None:
        if age <= timedelta(0):
            raise ValueError(f"retention must be more than 0, got {age}")
        if interval <= 0:
            raise ValueError(f"retention interval must be > 0, got {interval!r}")
        self.store, self.age, self.interval = store, age, interval
        self.pruned_runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="otel-runjournal-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the prune in progress, if any (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def prune_once(self) -> None:
        """One prune; errors are logged, not raised."""
        try:
            store = open_store(self.store)
            try:
                result = store.prune(older_than=cutoff(self.age))
            finally:
                store.close()
        except Exception as exc:  # retention must never stop serve
            _logger.warning("serve: retention prune failed (%s); retrying in %gs", exc, self.interval)
            return
        self.pruned_runs += result.runs
        if result.runs:
            _logger.info(
                "serve: retention deleted %d runs (%d events, %d spans) older than %s",
                result.runs,
                result.events,
                result.spans,
                self.age,
            )

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.prune_once()
            self._stop.wait(self.interval)
