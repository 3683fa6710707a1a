"""The default store: one DuckDB file shared by writer processes and readers.

DuckDB lets one process hold a file for writing, and then no other process can open it at all. So
this store never holds the file for long: it opens it for an operation, keeps the connection for
``linger`` seconds in case another operation follows (a batch of exports, a page of queries), then
closes it; a busy writer also lets go every ``MAX_HOLD`` seconds. Opening takes about 10 ms and a
query on an open connection a few ms (both measured in ``bench/bench_stores.py``). A process that
finds the file held retries with backoff for up to ``timeout`` seconds, then raises
:class:`StoreLockedError`. Several writer processes therefore take turns, and ``seq`` stays unique
because the per-thread counter (``thread_seq``) is advanced inside each write transaction; while
this process holds the file nobody else can advance it, so the last seqs it wrote are remembered
and only threads it has not seen since opening the file are looked up.

A write is one transaction of a few columnar statements (see ``_duckdb_insert``): its cost is
mostly DuckDB's per-statement work and the commit's fsync, so larger batches write faster.

Long because the connection's lifecycle (linger, hand-over, retry on a held file), the write
transaction and the query API share one lock and one connection; what stands alone (the schema and
its migrations, the bulk inserts, the row codec) lives in modules of its own.
"""

from __future__ import annotations

import atexit
import ctypes
import math
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import duckdb

from ...records import RunEvent, RunRecord, RunWrite, SpanRecord, TokenUsage
from .. import codec as _codec
from ..base import DEFAULT_LIMIT, RunFilter, StoreError, StoreLockedError, check_page_args
from ..retention import PruneResult, check_prune_args
from . import retention as _retention
from .readonly import READ_ONLY_CONFIG, check_journal, check_read_query, first_line, lock_down
from .schema import LATEST_VERSION, MIGRATIONS, SCHEMA_TABLE

if TYPE_CHECKING:
    from types import ModuleType

DEFAULT_TIMEOUT = 10.0
DEFAULT_LINGER = 1.0
MAX_HOLD = 2.0
"""Seconds a busy writer keeps the file before closing it anyway, so waiting readers get a turn."""
YIELD_AFTER_HOLD = 0.03
"""Pause before reopening after such a forced release (readers retry at least this often)."""

_SPAN_SELECT = (
    "trace_id, span_id, parent_span_id, run_id, name, kind, epoch_us(start_time), epoch_us(end_time), "
    "duration_ms, status_code, status_message, attributes::VARCHAR, events::VARCHAR, resource::VARCHAR"
)
_RUN_SELECT = ", ".join(
    f"epoch_us({name})"
    if name in ("started_at", "ended_at")
    else f"{name}::VARCHAR"
    if name == "usage_by_caller"
    else name
    for name in _codec.RUN_FIELDS
)

SEQ_CACHE_THREADS = 50_000
_INTERPRETER_EXIT = "interpreter is shutting down"
"""DuckDB's refusal to scan Python objects (the arrow batch) once its atexit handler ran."""
"""Threads whose last seq a process remembers between writes (least recently written dropped first)."""


class _FileState:
    """Per database file, per process: the writers' lock and what is known while the file is held.

    DuckDB lets one process at a time hold a file, and all connections of a process to one file
    share it. So while any connection of this process is open, no other process can write, and the
    last ``seq`` of each thread this process wrote stays exact: ``write`` then needs no lookup for it.
    When the last connection closes, another process may write, so the cache is emptied.
    """

    def __init__(self) -> None:
        self.write_lock = threading.Lock()
        self.guard = threading.Lock()
        self.open_connections = 0
        self.last_seq: OrderedDict[str, int] = OrderedDict()
        self.forked_while_held = False  # see _after_fork_in_child

    def opened(self) -> None:
        with self.guard:
            if self.open_connections == 0:
                self.last_seq.clear()
            self.open_connections += 1

    def closed(self) -> None:
        with self.guard:
            self.open_connections -= 1
            if self.open_connections == 0:
                self.last_seq.clear()

    def remember(self, last: dict[str, int]) -> None:
        """Record the last seqs just committed (call with ``write_lock`` held)."""
        cache = self.last_seq
        for thread, seq in last.items():
            cache[thread] = seq
            cache.move_to_end(thread)
        while len(cache) > SEQ_CACHE_THREADS:
            cache.popitem(last=False)


_file_states: dict[str, _FileState] = {}
_file_states_guard = threading.Lock()


def _file_state(path: str) -> _FileState:
    with _file_states_guard:
        return _file_states.setdefault(path, _FileState())


_live_stores: weakref.WeakSet[DuckDBStore] = weakref.WeakSet()


@atexit.register
def _release_all_at_exit() -> None:
    """Close every idle connection before the interpreter finalises.

    A linger timer that fires (or a connection that is garbage-collected) while Python shuts down
    can make DuckDB abort the process; registered at import, this runs after the atexit flushes
    registered later (``configure()``'s), so nothing written is lost.
    """
    for store in list(_live_stores):
        with suppress(Exception):
            store._release_now()


def _after_fork_in_child() -> None:
    """A process forked while this one held a journal file inherits DuckDB's open instance of it.

    Written through, that copy never reaches the file (the parent holds it and checkpoints over the
    child's WAL); closed, it waits for DuckDB threads the child does not have. So the child keeps the
    inherited connections unused and unclosed for good, starts with fresh locks, and refuses to open
    those files for writing with a clear error (DuckDB would hand back the inherited instance).
    """
    global _file_states_guard
    _file_states_guard = threading.Lock()
    for path, state in list(_file_states.items()):
        fresh = _FileState()
        fresh.forked_while_held = state.forked_while_held or state.open_connections > 0
        _file_states[path] = fresh
    for store in list(_live_stores):
        store._forget_after_fork(_file_states[os.path.realpath(store.path)])


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _insert_module() -> ModuleType:
    """The write path's module, imported on first use (it loads pyarrow, which readers never need)."""
    from . import insert

    return insert


def _is_lock_conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text or "different configuration" in text


class DuckDBStore:
    """A run journal in one DuckDB file (see the module docstring for how processes share it).

    ``read_only=True`` opens an existing journal for queries only and changes nothing on disk (DuckDB's
    read-only mode, no file access beyond the journal, no extensions, settings locked: see
    ``readonly.py``); a file that is not a run journal is refused. ``timeout``: seconds to wait for
    a file held by another process. ``linger``: seconds an idle connection stays open (0 = close
    after every operation, ``math.inf`` = until :meth:`close`, with no timer thread). ``arrow``: use
    pyarrow for inserts (default: when it is installed).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        linger: float = DEFAULT_LINGER,
        arrow: bool | None = None,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"DuckDBStore needs a str or os.PathLike, got {type(path).__name__}")
        raw = os.fspath(path)
        if not isinstance(raw, str) or not raw or raw == ":memory:":
            raise ValueError(f"DuckDBStore needs a file path, got {path!r}")
        if timeout < 0 or linger < 0:
            raise ValueError("timeout and linger must be >= 0")
        # the insert module (and pyarrow) only for writers: readers start faster without them
        _insert: ModuleType | None = None if read_only else _insert_module()
        if arrow and (_insert is None or _insert.pa is None):
            raise ValueError("arrow=True needs pyarrow installed (pip install 'otel-runjournal[fast]')")
        self.path = os.path.abspath(raw)
        self.read_only = read_only
        self._timeout = timeout
        self._linger = linger
        has_arrow = _insert is not None and _insert.pa is not None
        self._mode = "arrow" if (has_arrow if arrow is None else arrow) else "json"
        self._state = _file_state(os.path.realpath(self.path))  # one state per file, not per spelling
        self._write_lock = self._state.write_lock
        self._mutex = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._batches: Any = None  # the json path's insert.Batches of this connection
        self._timer: threading.Timer | None = None
        self._opened_at = 0.0
        self._last_used = 0.0
        self._yield_before_open = False
        self._closed = False
        if read_only and not os.path.isfile(self.path):
            raise StoreError(
                f"no run journal at {self.path}"
                if not os.path.exists(self.path)
                else f"{self.path} is not a run journal (expected a DuckDB file written by otel-runjournal)"
            )
        if not read_only:
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the directory of {self.path}: {exc}") from exc
        self._run_select = _RUN_SELECT
        if read_only:
            with self._session() as con:
                check_journal(con, self.path, LATEST_VERSION)
                if not _has_column(con, "runs", "service_name"):  # a journal from before migration 5
                    self._run_select = _RUN_SELECT.replace("service_name", "NULL AS service_name")
        else:
            with self._write_lock, self._session() as con:
                self._migrate(con)
        _live_stores.add(self)

    # -- connection handling -------------------------------------------------------------------

    def _connect(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self._timeout
        delay = 0.005
        while True:
            try:
                if self.read_only:
                    return lock_down(duckdb.connect(self.path, read_only=True, config=READ_ONLY_CONFIG))
                if self._state.forked_while_held:
                    raise StoreError(
                        f"cannot write run journal {self.path}: this process was forked while its parent "
                        "held the file, and DuckDB cannot open it again here; configure the journal "
                        "after forking (or use the 'spawn' start method)"
                    )
                con = duckdb.connect(self.path)
                con.execute("SET TimeZone = 'UTC'")
                # a writer lives inside the user's process, beside their agent: one DuckDB thread
                # and a bounded buffer pool (DuckDB's defaults: every core, 80% of RAM)
                con.execute("SET threads = 1")
                con.execute("SET memory_limit = '512MB'")
                # WAL size that triggers a checkpoint inside a commit (default 16 MB, every ~30
                # exporter batches). A writer lets go of the file within MAX_HOLD seconds, and
                # closing checkpoints, so the WAL stays bounded; committed data is in the fsynced
                # WAL either way. Fewer checkpoints: +10% writes with pyarrow (measured).
                con.execute("SET checkpoint_threshold = '256MB'")
                con.execute("SET python_enable_replacements = true")  # pyarrow batches by name
                return con
            except duckdb.Error as exc:
                if not _is_lock_conflict(exc):
                    if self.read_only and "not a valid DuckDB database" in str(exc):
                        raise StoreError(
                            f"{self.path} is not a run journal (expected a DuckDB file written by "
                            "otel-runjournal)"
                        ) from exc
                    raise StoreError(f"cannot open run journal {self.path}: {first_line(exc)}") from exc
                if time.monotonic() + delay > deadline:
                    raise StoreLockedError(
                        f"run journal {self.path} was held by another process for more than "
                        f"{self._timeout:g}s; retry, raise the store's timeout, or read a copy of the file "
                        f"({str(exc).splitlines()[0]})"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, YIELD_AFTER_HOLD * 0.6)

    @contextmanager
    def _session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection for one operation; released ``linger`` seconds after the last one."""
        with self._mutex:
            if self._closed:
                raise StoreError(f"run journal {self.path} is closed")
            if self._con is None:
                if self._yield_before_open:
                    time.sleep(YIELD_AFTER_HOLD)
                    self._yield_before_open = False
                self._con = self._connect()
                self._state.opened()
                self._opened_at = time.monotonic()
            try:
                yield self._con
            finally:
                self._last_used = now = time.monotonic()
                if self._linger == 0:
                    self._release()
                elif now - self._opened_at > MAX_HOLD:
                    self._release()
                    self._yield_before_open = True
                elif self._timer is None and self._linger != math.inf:  # one timer per idle period
                    self._schedule_release(self._linger)

    def _schedule_release(self, delay: float) -> None:
        self._timer = threading.Timer(delay, self._release_idle)
        self._timer.daemon = True
        self._timer.start()

    def _release_idle(self) -> None:
        """Timer callback: release the file if idle for ``linger`` seconds, else check again later."""
        with self._mutex:
            if self._timer is not threading.current_thread():
                return
            self._timer = None
            if self._con is None:
                return
            idle = time.monotonic() - self._last_used
            if idle >= self._linger:
                self._release()
            else:
                self._schedule_release(self._linger - idle)

    def _batch_files(self, insert: ModuleType) -> Any:
        """This connection's :class:`insert.Batches` (json path), made on first use."""
        if self._batches is None and self._mode == "json":
            self._batches = insert.Batches()
        return self._batches

    def _release(self) -> None:
        con, self._con = self._con, None
        batches, self._batches = self._batches, None
        if batches is not None:  # its prepared statements belong to the connection closed here
            batches.close()
        if con is not None:
            with suppress(duckdb.Error):  # closing never fails the caller; DuckDB recovers on open
                con.close()
            self._state.closed()

    def _forget_after_fork(self, state: _FileState) -> None:
        """In a forked child (see :func:`_after_fork_in_child`): drop the parent's connection unclosed."""
        for inherited in (self._con, self._batches):
            if inherited is not None:  # never destroyed, not even at exit: closing it would hang
                ctypes.pythonapi.Py_IncRef(ctypes.py_object(inherited))
        self._con = self._batches = self._timer = None
        self._state, self._write_lock = state, state.write_lock
        self._mutex = threading.RLock()  # another thread of the parent may have held it at the fork

    def _release_now(self) -> None:
        """Cancel the idle timer and let go of the file; the store stays usable."""
        with self._mutex:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._release()

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._mutex:
            self._release_now()
            self._closed = True

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DuckDBStore({self.path!r}{', read_only=True' if self.read_only else ''})"

    # -- schema ----------------------------------------------------------------------------------

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            exists = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = $1", [SCHEMA_TABLE]
            ).fetchone()
            applied: set[int] = set()
            if exists and exists[0]:
                applied = {v for (v,) in con.execute(f"SELECT version FROM {SCHEMA_TABLE}").fetchall()}
            if applied and max(applied) > LATEST_VERSION:
                raise StoreError(
                    f"run journal {self.path} has schema version {max(applied)}, newer than this "
                    f"otel-runjournal ({LATEST_VERSION}); upgrade otel-runjournal"
                )
            pending = [m for m in MIGRATIONS if m[0] not in applied]
            if not pending:
                return
            if self.read_only:
                raise StoreError(f"run journal {self.path} needs migrating; open it once for writing")
            con.execute("BEGIN")
            try:
                con.execute(
                    f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version INTEGER PRIMARY KEY, "
                    "name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
                )
                for version, name, statements in pending:
                    for statement in statements:
                        con.execute(statement)
                    con.execute(f"INSERT INTO {SCHEMA_TABLE} VALUES ($1, $2, now())", [version, name])
                con.execute("COMMIT")
            except BaseException:
                _rollback(con)
                raise
        except duckdb.Error as exc:
            raise StoreError(f"cannot prepare run journal {self.path}: {exc}") from exc

    def schema_versions(self) -> list[tuple[int, str]]:
        """The recorded migrations, oldest first."""
        return [
            (int(v), str(n)) for v, n in self._rows(f"SELECT version, name FROM {SCHEMA_TABLE} ORDER BY 1")
        ]

    # -- writing ----------------------------------------------------------------------------------

    def write(self, batch: Sequence[RunWrite]) -> None:
        """Write ``batch`` in one transaction (see ``RunStore.write``); sets ``seq`` on its events."""
        if self.read_only:
            raise StoreError(f"run journal {self.path} was opened read-only")
        if not batch:
            return
        _insert = _insert_module()
        given, retry = batch, False
        with self._write_lock, self._session() as con:
            try:
                con.execute("BEGIN")
                try:
                    known, last = self._look_up(con, batch)
                    batch = _codec.drop_written(batch, _written_spans(con, batch, known))
                    events = [e for unit in batch for e in unit.events]
                    spans = [s for unit in batch for s in unit.spans]
                    runs = _codec.latest_runs(unit.run for unit in batch)
                    seqs, new_last = _codec.assign_seqs(events, last)
                    files = self._batch_files(_insert)
                    _insert.events(con, events, seqs, self._mode, files)
                    _insert.thread_seqs(con, new_last, set(last))
                    _insert.runs(con, runs, known, self._mode, files)
                    _insert.spans(con, spans, self._mode, files)
                    con.execute("COMMIT")
                except BaseException:
                    _rollback(con)
                    self._state.last_seq.clear()
                    raise
            except (duckdb.Error, TypeError, ValueError, OverflowError) as exc:  # incl. pyarrow's
                if not (self._mode == "arrow" and _INTERPRETER_EXIT in str(exc)):
                    raise StoreError(f"cannot write to run journal {self.path}: {exc}") from exc
                # at exit (atexit handlers after DuckDB's own) DuckDB scans no Python objects any
                # more: the last flush goes through the json path, which DuckDB reads from a file
                self._mode, retry = "json", True
            else:
                self._state.remember(new_last)
        if retry:
            self.write(given)
            return
        for event, seq in zip(events, seqs, strict=True):
            event.seq = seq

    # -- retention --------------------------------------------------------------------------------

    def prune(
        self,
        *,
        older_than: datetime,
        keep_errors: bool = False,
        thread_id: str | None = None,
        dry_run: bool = False,
    ) -> PruneResult:
        """Delete whole runs (rules: ``stores/retention.py``), one transaction per chunk of runs.

        Each chunk takes a turn on the file like a write, so writers of other processes get theirs in
        between. ``thread_seq`` is untouched: seq is never reused. Space is reused, not returned (see
        ``duckdb/retention.py``; :meth:`compact` returns it).
        """
        older_than = check_prune_args(older_than, thread_id)
        if self.read_only:
            raise StoreError(f"run journal {self.path} was opened read-only")
        where, params = _retention.prune_filter(older_than, keep_errors, thread_id)
        result = PruneResult(dry_run=dry_run)
        try:
            if dry_run:
                with self._session() as con:
                    result.add(*_retention.count(con, where, params), None)
                return result
            result.size_before = _retention.file_size(self.path)
            while True:
                with self._write_lock, self._session() as con:
                    con.execute("BEGIN")
                    try:
                        chunk = _retention.delete_chunk(con, where, params)
                        con.execute("COMMIT")
                    except BaseException:
                        _rollback(con)
                        raise
                if not chunk[0]:
                    break
                result.add(*chunk, None)
            with self._write_lock, self._session() as con:
                con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            raise StoreError(f"cannot prune run journal {self.path}: {first_line(exc)}") from exc
        result.size_after = _retention.file_size(self.path)
        return result

    def compact(self) -> tuple[int, int]:
        """Rewrite the file without its free blocks; return its size before and after (bytes).

        Copy and swap (``duckdb/retention.py``): holds the file for as long as the copy takes (about
        6 s per million rows, measured), so writers of other processes wait that long. Refused while
        another connection of this process has the file open (it would keep writing to the old one).
        """
        if self.read_only:
            raise StoreError(f"run journal {self.path} was opened read-only")
        with self._write_lock, self._mutex:
            before = _retention.file_size(self.path)
            with self._session() as con:
                if self._state.open_connections != 1:
                    raise StoreError(
                        f"cannot compact run journal {self.path}: another store of this process has it open"
                    )
                try:
                    _retention.compact(con, self.path)
                except (duckdb.Error, OSError) as exc:
                    raise StoreError(f"cannot compact run journal {self.path}: {first_line(exc)}") from exc
                finally:
                    self._release()
        return before, _retention.file_size(self.path)

    def _look_up(
        self, con: duckdb.DuckDBPyConnection, batch: Sequence[RunWrite]
    ) -> tuple[list[str], dict[str, int]]:
        """The batch's runs already stored, and the last seq of every thread in the batch.

        One statement for both (each costs DuckDB a fixed few hundred microseconds of planning): the
        runs' primary key answers the first, ``thread_seq`` the second for the threads this process
        does not remember (see :class:`_FileState`). New runs, the common case, need nothing more:
        no span look-up, no delete before their insert.
        """
        cache = self._state.last_seq
        last: dict[str, int] = {}
        missing: list[str] = []
        for thread in {e.thread_id for unit in batch for e in unit.events}:
            seq = cache.get(thread)
            if seq is None:
                missing.append(thread)
            else:
                last[thread] = seq
        run_ids = list({unit.run.run_id for unit in batch})
        found = con.execute(
            "SELECT run_id, NULL FROM runs WHERE run_id IN (SELECT unnest($1::VARCHAR[])) "
            "UNION ALL SELECT thread_id, last_seq FROM thread_seq "
            "WHERE thread_id IN (SELECT unnest($2::VARCHAR[]))",
            [run_ids, missing],
        ).fetchall()
        known = [key for key, seq in found if seq is None]
        last.update((key, seq) for key, seq in found if seq is not None)
        return known, last

    # -- reading ----------------------------------------------------------------------------------

    def update_costs(self, events: Sequence[RunEvent], runs: Sequence[RunRecord]) -> None:
        """``reprice``: replace the metadata of model-call events (by ``run_id`` + ``seq``) and the
        cost columns of their runs, in one transaction. Nothing else of the journal changes (not a
        ``seq``, not an event's content)."""
        if self.read_only:
            raise StoreError(f"run journal {self.path} was opened read-only")
        with self._write_lock, self._session() as con:
            try:
                con.execute("BEGIN")
                try:
                    if events:
                        con.executemany(
                            "UPDATE run_events SET metadata = CAST($1 AS JSON) "
                            "WHERE run_id = $2 AND seq = $3",
                            [[_codec.dumps(e.metadata), e.run_id, e.seq] for e in events],
                        )
                    if runs:
                        con.executemany(
                            "UPDATE runs SET cost_usd = $1, unpriced_call_count = $2 WHERE run_id = $3",
                            [[r.cost_usd, r.unpriced_call_count, r.run_id] for r in runs],
                        )
                    con.execute("COMMIT")
                except BaseException:
                    _rollback(con)
                    raise
            except duckdb.Error as exc:
                raise StoreError(f"cannot write to run journal {self.path}: {exc}") from exc

    def sql(self, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one reading statement (e.g. ``SELECT * FROM tokens_by_model``) and return its rows.

        Works at once in the process that writes (a notebook that just ran the agent), where a second
        ``duckdb.connect(path, read_only=True)`` is refused while this store holds the file. Anything
        but one reading statement (SELECT, WITH, DESCRIBE, ...) raises :class:`StoreError`.
        """
        return self.query(query, params)[1]

    def query(
        self, query: str, params: Sequence[Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Like :meth:`sql`, returning the column names too."""
        with self._session() as con:
            check_read_query(con, query)
            return self._select(con, query, params)

    def _select(
        self, con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        try:
            cursor = con.execute(query, params)
            columns = [d[0] for d in cursor.description or ()]
            return columns, cursor.fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"query on run journal {self.path} failed: {first_line(exc)}") from exc

    def _rows(self, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """The store's own queries (trusted SQL: no gate)."""
        with self._session() as con:
            return self._select(con, query, params)[1]

    def list_spans(self, run_id: str) -> list[SpanRecord]:
        """The run's span rows, by start time (the run's trace tree, as the ``spans`` table holds it)."""
        rows = self._rows(
            f"SELECT {_SPAN_SELECT} FROM spans WHERE run_id = $1 ORDER BY start_time, span_id", [run_id]
        )
        return [_span_from_row(r) for r in rows]

    def _page(
        self,
        key_column: str,
        key: str,
        keep: Any,
        after_seq: int | None,
        before_seq: int | None,
        limit: int,
    ) -> list[RunEvent]:
        """A page of the rows whose ``key_column`` is ``key``, in two statements.

        DuckDB (2.0) fetches a row through an index column by column, and a long, mostly distinct
        string (``content``, ``metadata``) costs tens of microseconds per row that way; a scan by
        rowid costs per row group touched and per column instead. So the first statement reads every
        column but those two through the index (the short ones) for all the key's rows, the second
        only those two by rowid for the page (measured in ``bench/README.md``, "Third round"). In
        one transaction, so the rowids of the first statement name the same rows in the second.
        """
        other = "run_id" if key_column == "thread_id" else "thread_id"
        with self._session() as con:
            try:
                con.execute("BEGIN")
                try:
                    found = con.execute(
                        f"SELECT rowid, seq, category::VARCHAR, event_type, {other}, epoch_us(created_at), "
                        f"trace_id, span_id FROM run_events WHERE {key_column} = $1",
                        [key],
                    ).fetchall()
                    by_seq = {row[1]: row for row in found if keep(row[2], row[3])}
                    page = [
                        by_seq[s] for s in _codec.select_page(sorted(by_seq), after_seq, before_seq, limit)
                    ]
                    rows = (
                        con.execute(
                            "SELECT rowid, content, metadata::VARCHAR FROM run_events "
                            "WHERE rowid IN (SELECT unnest($1::BIGINT[]))",
                            [[row[0] for row in page]],
                        ).fetchall()
                        if page
                        else []
                    )
                    texts = {rowid: (content, metadata) for rowid, content, metadata in rows}
                finally:
                    _rollback(con)
            except duckdb.Error as exc:
                raise StoreError(f"query on run journal {self.path} failed: {exc}") from exc
        events = []
        for rowid, seq, category, event_type, other_key, created_us, trace_id, span_id in page:
            content, metadata = texts[rowid]
            thread_id, run_id = (key, other_key) if key_column == "thread_id" else (other_key, key)
            created_at = _codec.from_us(created_us)
            assert created_at is not None
            events.append(
                _codec.event_from_values(
                    thread_id,
                    run_id,
                    seq,
                    event_type,
                    category,
                    content,
                    metadata,
                    created_at,
                    trace_id,
                    span_id,
                )
            )
        return events

    def list_events(
        self,
        run_id: str,
        *,
        category: str | None = None,
        event_types: Sequence[str] | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[RunEvent]:
        """One page of a run's events in ascending ``seq`` (cursor rules: ``stores._base``)."""
        check_page_args(limit=limit, after_seq=after_seq, before_seq=before_seq, category=category)
        types = None if event_types is None else frozenset(event_types)

        def keep(cat: str, event_type: str) -> bool:
            return (category is None or cat == category) and (types is None or event_type in types)

        return self._page("run_id", run_id, keep, after_seq, before_seq, limit)

    def list_messages(
        self,
        thread_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[RunEvent]:
        """One page of a thread's message rows (all its runs) in ascending ``seq``."""
        check_page_args(limit=limit, after_seq=after_seq, before_seq=before_seq)
        return self._page(
            "thread_id", thread_id, lambda cat, _t: cat == "message", after_seq, before_seq, limit
        )

    def _runs(self, where: str, params: list[Any], tail: str = "") -> list[RunRecord]:
        if "service_name" in where and self._run_select is not _RUN_SELECT:
            return []  # no run of a journal from before migration 5 has a service name
        rows = self._rows(f"SELECT {self._run_select} FROM runs {where} {tail}", params)
        return [_run_from_row(r) for r in rows]

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run's summary, or ``None``."""
        runs = self._runs("WHERE run_id = $1", [run_id])
        return runs[0] if runs else None

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
        """Runs, most recent first (by ``started_at``); the filters as in ``stores.base.RunStore``."""
        check_page_args(limit=limit, status=status)
        wanted = RunFilter(thread_id, status, name, service_name, started_after, started_before)
        where, params = _run_filter(**wanted.equal())
        where, params = _time_range(where, params, wanted)
        return self._runs(where, params, f"ORDER BY started_at DESC NULLS LAST, run_id LIMIT {limit:d}")

    def count_runs(self, **filters: Any) -> int:
        """How many runs ``list_runs`` would list with these filters (``RunFilter``'s) and no limit."""
        wanted = RunFilter(**filters)
        check_page_args(limit=1, status=wanted.status)
        where, params = _run_filter(**wanted.equal())
        where, params = _time_range(where, params, wanted)
        if wanted.service_name is not None and self._run_select is not _RUN_SELECT:
            return 0
        return int(self._rows(f"SELECT count(*) FROM runs {where}", params)[0][0])

    def token_usage(self, *, run_id: str | None = None, thread_id: str | None = None) -> TokenUsage:
        """Token totals over the selected runs (all runs when neither is given) and the caller split."""
        where, params = _run_filter(run_id=run_id, thread_id=thread_id)
        sums = ", ".join(f"coalesce(sum({f}), 0)" for f in _codec.RUN_TOKEN_FIELDS)
        totals = self._rows(
            "SELECT count(*), sum(cost_usd), coalesce(sum(unpriced_call_count), 0), "
            f"{sums} FROM runs {where}",
            params,
        )[0]
        usage = TokenUsage(run_count=int(totals[0]), unpriced_call_count=int(totals[2]))
        usage.cost_usd = None if totals[1] is None else float(totals[1])
        for name, value in zip(_codec.RUN_TOKEN_FIELDS, totals[3:], strict=True):
            setattr(usage, name, int(value))
        split = self._rows(
            f"SELECT key, sum(TRY_CAST(value AS BIGINT)) FROM runs, json_each(usage_by_caller) {where} "
            "GROUP BY key ORDER BY key",
            params,
        )
        usage.by_caller = {str(k): int(v or 0) for k, v in split}
        return usage


def _span_from_row(r: tuple[Any, ...]) -> SpanRecord:
    start, end = _codec.from_us(r[6]), _codec.from_us(r[7])
    assert start is not None and end is not None
    loads = _codec.loads
    return SpanRecord(
        r[0], r[1], r[2], r[3] or "", r[4] or "", r[5] or "", start, end, float(r[8] or 0.0), r[9] or "",
        r[10], loads(r[11] or "{}"), loads(r[12] or "[]"), loads(r[13] or "{}"),
    )  # fmt: skip


def _written_spans(
    con: duckdb.DuckDBPyConnection, batch: Sequence[RunWrite], known: Sequence[str]
) -> list[tuple[str, str]]:
    """Span keys already stored of the ``known`` runs (stored before) that have spans in ``batch``:
    a retry, or a run written in parts."""
    with_spans = {unit.run.run_id for unit in batch if unit.spans}
    run_ids = [r for r in known if r in with_spans]
    if not run_ids:
        return []
    return con.execute(
        "SELECT trace_id, span_id FROM spans WHERE run_id IN (SELECT unnest($1::VARCHAR[]))", [run_ids]
    ).fetchall()


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is still open (a failed COMMIT may already have ended it)."""
    with suppress(duckdb.Error):
        con.execute("ROLLBACK")


def _run_filter(**equal: str | None) -> tuple[str, list[Any]]:
    terms, params = [], []
    for column, value in equal.items():
        if value is not None:
            params.append(value)
            terms.append(f"runs.{column} = ${len(params)}")
    return ("WHERE " + " AND ".join(terms) if terms else ""), params


def _has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = $1 AND column_name = $2",
        [table, column],
    ).fetchone()
    return bool(row and row[0])


def _time_range(where: str, params: list[Any], wanted: RunFilter) -> tuple[str, list[Any]]:
    """``where`` extended by the filter's ``started_at`` range."""
    terms = [where[len("WHERE ") :]] if where else []
    for op, value in ((">=", wanted.started_after), ("<", wanted.started_before)):
        if value is not None:
            params = [*params, value]
            terms.append(f"runs.started_at {op} ${len(params)}")
    return ("WHERE " + " AND ".join(terms) if terms else ""), params


def _run_from_row(row: tuple[Any, ...]) -> RunRecord:
    values = dict(zip(_codec.RUN_FIELDS, row, strict=True))
    values["started_at"] = _codec.from_us(values["started_at"])
    values["ended_at"] = _codec.from_us(values["ended_at"])
    return _codec.run_from_dict(
        values | {"usage_by_caller": _codec.json.loads(values["usage_by_caller"] or "{}")}
    )
