"""A run journal as a directory of JSON Lines files, readable with DuckDB's ``read_json``.

Layout::

    runs.jsonl            run summaries; the last line of a run_id wins
    spans.jsonl           span rows
    events/<name>.jsonl   one file per run (name from :func:`safe_file_name`, never the raw id)
    commits.jsonl         the commit log: per batch an intent line (file sizes before the batch and
                          the last seq per thread it hands out), then an ``ok`` (or ``abort``) line
    .lock                 ``flock``-ed around every write (exclusive) and read (shared)

A write appends each file's part of the batch with one ``os.write`` in append mode. The batch is
atomic through the commit log: a batch whose intent has no ``ok`` (a process died mid-write, the
disk filled up) is rolled back by truncating its files to the recorded sizes, by whichever process
takes the lock next. Several writer processes take turns on the lock and re-read the commit log's
tail first, so every thread's ``seq`` stays unique and increasing across processes and restarts.

Long because the commit log, its recovery and the in-memory indexes that the query API reads are
one piece of state under one lock; file naming and the row codec live in modules of their own.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from ... import settings as _env
from ...records import RunEvent, RunRecord, RunWrite, SpanRecord, TokenUsage
from .. import codec as _codec
from ..base import DEFAULT_LIMIT, RunFilter, StoreError, StoreLockedError, check_page_args
from ..retention import PruneResult, check_prune_args, selected
from . import prune as _prune
from .names import safe_file_name
from .snapshot import CommittedReader, check_journal_directory, read_from

FSYNC_POLICIES = ("never", "batch")
DEFAULT_TIMEOUT = 10.0
RUNS_FILE = "runs.jsonl"
SPANS_FILE = "spans.jsonl"
COMMITS_FILE = "commits.jsonl"
EVENTS_DIR = "events"
LOCK_FILE = ".lock"
OPEN_AHEAD = 64
"""Files of one batch opened before its intent is logged (more are sized with ``stat``)."""
_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT


def _parse_fsync(text: str) -> str:
    value = text.strip().lower()
    if value not in FSYNC_POLICIES:
        raise ValueError(f"fsync must be one of {FSYNC_POLICIES}, got {text!r}")
    return value


def _complete_lines(data: bytes) -> Iterator[Any]:
    """Decoded JSON records of ``data``'s complete lines; a torn or corrupt line is skipped."""
    end = data.rfind(b"\n")
    for line in data[: end + 1].splitlines():
        if line.strip():
            try:
                yield _codec.loads(line)
            except ValueError:
                continue


def _size(path: str) -> int:
    """The file's size; 0 if it does not exist yet."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _write_all(fd: int, data: bytes) -> None:
    """One ``os.write`` (looping only if the kernel takes part of it)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class JsonlStore:
    """A run journal in ``directory`` (created if missing). ``fsync``: ``never`` | ``batch``
    (``OTEL_RUNJOURNAL_FSYNC``; default ``never``). ``timeout``: seconds to wait for the lock.

    ``read_only=True`` opens an existing journal for queries and never creates, modifies or locks
    anything (works on a read-only mount): it reads what is committed, see :mod:`.snapshot`.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        read_only: bool = False,
    ) -> None:
        if not isinstance(directory, (str, os.PathLike)):
            raise ValueError(f"JsonlStore needs a str or os.PathLike, got {type(directory).__name__}")
        raw = os.fspath(directory)
        if not isinstance(raw, str) or not raw:
            raise ValueError(f"JsonlStore needs a directory, got {directory!r}")
        if fsync is not None:
            _parse_fsync(fsync)
        if timeout < 0:
            raise ValueError("timeout must be >= 0")
        self.directory = os.path.abspath(raw)
        self.fsync = _env.resolve(fsync, _env.OTEL_RUNJOURNAL_FSYNC, "never", _parse_fsync)
        self._timeout = timeout
        self._mutex = threading.RLock()
        self._closed = False
        self._last_seq: dict[str, int] = {}
        self._log_offset = 0
        self._open_intent: dict[str, Any] | None = None
        self._runs: dict[str, RunRecord] = {}
        self._thread_runs: dict[str, dict[str, None]] = {}  # thread -> run ids (ordered set)
        self._runs_offset = 0
        self._runs_inode: int | None = None  # a prune replaces runs.jsonl: a new inode, read anew
        self.read_only = read_only
        self._lock_fd = -1
        self._committed = CommittedReader(self.directory)
        if read_only:
            check_journal_directory(self.directory)
            return
        try:
            os.makedirs(os.path.join(self.directory, EVENTS_DIR), exist_ok=True)
            self._lock_fd = os.open(os.path.join(self.directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open run journal directory {self.directory}: {exc}") from exc
        try:
            with self._locked(shared=False):
                self._recover_on_open()
        except BaseException:
            os.close(self._lock_fd)
            raise

    # -- locking and recovery ------------------------------------------------------------------

    @contextmanager
    def _locked(self, *, shared: bool) -> Iterator[None]:
        if self.read_only:  # readers take no lock: they read the committed part (see .snapshot)
            raise StoreError(f"run journal {self.directory} was opened read-only")
        with self._mutex:
            if self._closed:
                raise StoreError(f"run journal {self.directory} is closed")
            deadline = time.monotonic() + self._timeout
            delay = 0.001
            mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
            while True:
                try:
                    fcntl.flock(self._lock_fd, mode | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise StoreError(f"cannot lock run journal {self.directory}: {exc}") from exc
                    if time.monotonic() + delay > deadline:
                        raise StoreLockedError(
                            f"run journal {self.directory} was locked by another process for more than "
                            f"{self._timeout:g}s; retry or raise the store's timeout"
                        ) from exc
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _path(self, relative: str) -> str:
        return os.path.join(self.directory, relative)

    def _recover_on_open(self) -> None:
        """Cut torn last lines, roll back an unfinished batch, recover every thread's last seq."""
        for name in (COMMITS_FILE, RUNS_FILE, SPANS_FILE):
            self._cut_torn_tail(self._path(name))
        if not os.path.exists(self._path(COMMITS_FILE)):
            self._last_seq = self._scan_event_files()
        self._sync(exclusive=True)

    def _cut_torn_tail(self, path: str) -> None:
        try:
            with open(path, "rb+") as handle:
                size = handle.seek(0, os.SEEK_END)
                if size == 0:
                    return
                handle.seek(size - 1)
                if handle.read(1) == b"\n":
                    return
                start = max(0, size - (1 << 16))
                while True:  # find the last newline, reading backwards in chunks
                    handle.seek(start)
                    chunk = handle.read(size - start)
                    cut = chunk.rfind(b"\n")
                    if cut >= 0:
                        handle.truncate(start + cut + 1)
                        return
                    if start == 0:
                        handle.truncate(0)
                        return
                    start = max(0, start - (1 << 16))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreError(f"cannot repair {path}: {exc}") from exc

    def _scan_event_files(self) -> dict[str, int]:
        """Last seq per thread from the event files (a journal written without a commit log)."""
        last: dict[str, int] = {}
        folder = self._path(EVENTS_DIR)
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            self._cut_torn_tail(path)
            with open(path, "rb") as handle:
                for row in _complete_lines(handle.read()):
                    if isinstance(row, dict) and isinstance(row.get("seq"), int):
                        thread = str(row.get("thread_id"))
                        last[thread] = max(last.get(thread, 0), row["seq"])
        return last

    def _sync(self, *, exclusive: bool) -> None:
        """Read the commit log's new tail; under the exclusive lock, roll back an unfinished batch."""
        path = self._path(COMMITS_FILE)
        try:
            with open(path, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                if size < self._log_offset:  # replaced underneath us: start over
                    self._log_offset, self._open_intent = 0, None
                handle.seek(self._log_offset)
                data = handle.read(size - self._log_offset)
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
        end = data.rfind(b"\n")
        if exclusive and end + 1 < len(data):  # a torn line from a failed append: never glue onto it
            try:
                os.truncate(path, self._log_offset + end + 1)
            except OSError as exc:
                raise StoreError(f"cannot repair {path}: {exc}") from exc
        for record in _complete_lines(data):
            if not isinstance(record, dict):
                continue
            if "files" in record:
                self._open_intent = record
                for thread, seq in record.get("seq", {}).items():
                    if seq > self._last_seq.get(thread, 0):
                        self._last_seq[thread] = seq
            elif self._open_intent is not None and record.get("b") == self._open_intent.get("b"):
                self._open_intent = None
        self._log_offset += end + 1
        if exclusive and self._open_intent is not None:
            self._roll_back(self._open_intent)

    def _roll_back(self, intent: dict[str, Any]) -> None:
        """Truncate the batch's files to their sizes before it, then log the abort."""
        try:
            for relative, size in intent["files"].items():
                path = self._path(relative)
                if os.path.exists(path) and os.path.getsize(path) > size:
                    os.truncate(path, size)
            self._append_log({"b": intent["b"], "abort": 1})
            self._open_intent = None
        except OSError as exc:
            raise StoreError(f"cannot roll back an unfinished batch in {self.directory}: {exc}") from exc

    def _append_log(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        fd = os.open(self._path(COMMITS_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            _write_all(fd, data)
            if self.fsync == "batch":
                os.fsync(fd)
        finally:
            os.close(fd)
        self._log_offset += len(data)

    # -- writing ----------------------------------------------------------------------------------

    def write(self, batch: Sequence[RunWrite]) -> None:
        """Write ``batch`` atomically (see ``RunStore.write``); sets ``seq`` on its events."""
        if not batch:
            return
        with self._locked(shared=False):
            self._sync(exclusive=True)
            batch = _codec.drop_written(batch, self._written_spans(batch))
            if not batch:
                return
            parts, seqs, new_last = self._encode(batch)
            fds: dict[str, int] = {}
            try:
                self._write_parts(parts, new_last, fds)
            finally:
                for fd in fds.values():
                    os.close(fd)
        position = 0
        for unit in batch:
            for event in unit.events:
                event.seq = seqs[position]
                position += 1

    def _written_spans(self, batch: Sequence[RunWrite]) -> set[tuple[str | None, str | None]]:
        """Span keys of the batch's runs already stored (a retry, a run written in parts).

        New runs, the common case, cost a look-up in the runs index; ``spans.jsonl`` is read only
        when a run of the batch is already there, and only its lines naming such a run are parsed.
        """
        self._refresh_runs()
        known = {unit.run.run_id for unit in batch if unit.spans and unit.run.run_id in self._runs}
        if not known:
            return set()
        try:
            with open(self._path(SPANS_FILE), "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return set()
        except OSError as exc:
            raise StoreError(f"cannot read {self._path(SPANS_FILE)}: {exc}") from exc
        needles = [b'"run_id":' + _codec.dumpb(run_id) for run_id in known]
        keys: set[tuple[str | None, str | None]] = set()
        for line in data.splitlines():
            if any(needle in line for needle in needles):
                with suppress(ValueError):
                    row = _codec.loads(line)
                    if isinstance(row, dict) and row.get("run_id") in known:
                        keys.add(_codec.span_key(row.get("trace_id"), row.get("span_id")))
        return keys

    def _write_parts(self, parts: dict[str, bytes], new_last: dict[str, int], fds: dict[str, int]) -> None:
        """Log the intent (each file's size before), append every part, log ``ok``; roll back on error.

        The first :data:`OPEN_AHEAD` files are opened before the intent (their size is the open file's
        end, one syscall less than a ``stat`` and a later ``open``), the rest are sized with ``stat``.
        Opened descriptors are left in ``fds`` for the caller to close.
        """
        paths = {relative: f"{self.directory}/{relative}" for relative in parts}
        intent: dict[str, Any] = {"b": uuid.uuid4().hex, "files": {}, "seq": new_last}
        try:
            sizes = intent["files"]
            for relative, path in paths.items():
                if len(fds) < OPEN_AHEAD:
                    fd = fds[relative] = os.open(path, _APPEND_FLAGS, 0o644)
                    sizes[relative] = os.lseek(fd, 0, os.SEEK_END)
                else:
                    sizes[relative] = _size(path)
            self._append_log(intent)
        except OSError as exc:
            raise StoreError(f"cannot write to run journal {self.directory}: {exc}") from exc
        self._open_intent = intent
        self._last_seq.update(new_last)  # handed out even if the batch fails: never reused
        try:
            for relative, data in parts.items():
                fd = fds[relative] if relative in fds else os.open(paths[relative], _APPEND_FLAGS, 0o644)
                try:
                    _write_all(fd, data)
                    if self.fsync == "batch":
                        os.fsync(fd)
                finally:
                    if relative not in fds:
                        os.close(fd)
            self._append_log({"b": intent["b"], "ok": 1})
            self._open_intent = None
        except OSError as exc:
            with suppress(StoreError):  # if this fails too, the next writer or open rolls back
                self._roll_back(intent)
            raise StoreError(f"cannot write to run journal {self.directory}: {exc}") from exc

    def _encode(self, batch: Sequence[RunWrite]) -> tuple[dict[str, bytes], list[int], dict[str, int]]:
        """Each file's part of the batch (one encoder call for all files): events per run file, runs,
        spans; with the events' seqs (in batch order, after each thread's last) and the new last seqs."""
        records: dict[str, list[dict[str, Any]]] = {}
        files: dict[str, list[dict[str, Any]]] = {}  # run id -> its file's records
        last = self._last_seq
        new_last: dict[str, int] = {}
        seqs: list[int] = []
        utc, zone = _codec.utc, timezone.utc
        for unit in batch:
            for event in unit.events:
                run_id, thread_id = event.run_id, event.thread_id
                seq = (new_last.get(thread_id) or last.get(thread_id, 0)) + 1
                new_last[thread_id] = seq
                seqs.append(seq)
                lines = files.get(run_id)
                if lines is None:
                    lines = records.setdefault(f"{EVENTS_DIR}/{safe_file_name(run_id)}", [])
                    files[run_id] = lines
                lines.append(
                    {
                        "thread_id": thread_id,
                        "run_id": run_id,
                        "seq": seq,
                        "event_type": event.event_type,
                        "category": event.category,
                        "content": event.content,
                        "metadata": event.metadata,
                        "created_at": created
                        if (created := event.created_at).tzinfo is zone
                        else utc(created),
                        "trace_id": event.trace_id,
                        "span_id": event.span_id,
                    }
                )
        records[RUNS_FILE] = [_codec.run_to_dict(run) for run in _codec.latest_runs(u.run for u in batch)]
        spans = [_codec.span_to_dict(s) for unit in batch for s in unit.spans]
        if spans:
            records[SPANS_FILE] = spans
        parts = dict(zip(records, _codec.jsonl_groups(list(records.values())), strict=True))
        return parts, seqs, new_last

    # -- retention --------------------------------------------------------------------------------

    def prune(
        self,
        *,
        older_than: datetime,
        keep_errors: bool = False,
        thread_id: str | None = None,
        dry_run: bool = False,
    ) -> PruneResult:
        """Delete whole runs (rules: ``stores/retention.py``) under the exclusive lock (see ``prune.py``).

        Every thread's last seq stays in the commit log (a prune logs the pruned threads' high-water
        marks, all threads' when the log is new), so reopening never hands out a pruned seq again.
        """
        older_than = check_prune_args(older_than, thread_id)
        result = PruneResult(dry_run=dry_run)
        with self._locked(shared=False):
            self._sync(exclusive=True)
            self._refresh_runs()
            victims = {
                run.run_id
                for run in self._runs.values()
                if selected(run.status, run.started_at, older_than, keep_errors)
                and (thread_id is None or run.thread_id == thread_id)
            }
            if not victims:
                if not dry_run:
                    result.size_before = result.size_after = _prune.directory_size(self.directory)
                return result
            event_files = {run_id: self._path(f"{EVENTS_DIR}/{safe_file_name(run_id)}") for run_id in victims}
            events = event_bytes = 0
            for path in event_files.values():
                lines, size = _prune.event_file_size(path)
                events, event_bytes = events + lines, event_bytes + size
            kept_spans, spans, span_bytes = _prune.split_lines(self._path(SPANS_FILE), victims)
            kept_runs, _, run_bytes = _prune.split_lines(self._path(RUNS_FILE), victims)
            result.add(len(victims), events, spans, event_bytes + span_bytes + run_bytes)
            if dry_run:
                return result
            result.size_before = _prune.directory_size(self.directory)
            threads = {self._runs[r].thread_id for r in victims}
            new_log = not os.path.exists(self._path(COMMITS_FILE))
            marks = {t: s for t, s in self._last_seq.items() if new_log or t in threads}
            batch = uuid.uuid4().hex
            try:
                self._append_log({"b": batch, "files": {}, "seq": marks, "prune": len(victims)})
                for path in event_files.values():
                    with suppress(FileNotFoundError):
                        os.remove(path)
                if spans:
                    _prune.replace_file(self._path(SPANS_FILE), kept_spans)
                _prune.replace_file(self._path(RUNS_FILE), kept_runs)
                self._append_log({"b": batch, "ok": 1})
            except OSError as exc:
                raise StoreError(f"cannot prune run journal {self.directory}: {exc}") from exc
            self._open_intent = None
            self._refresh_runs()
        result.size_after = _prune.directory_size(self.directory)
        return result

    # -- reading ----------------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A shared lock on a journal with no unfinished batch, and the runs index brought up to date.

        Read-only: no lock; every file is read up to its committed size (:meth:`_read_from`)."""
        if self.read_only:
            with self._mutex:
                if self._closed:
                    raise StoreError(f"run journal {self.directory} is closed")
                self._refresh_runs()
                yield
            return
        with self._locked(shared=True):
            self._sync(exclusive=False)
            if self._open_intent is None:
                self._refresh_runs()
                yield
                return
        with self._locked(shared=False):  # a writer died mid-batch: roll it back first
            self._sync(exclusive=True)
            self._refresh_runs()
            yield

    def _read_from(self, relative: str, offset: int = 0) -> bytes | None:
        """The file's bytes from ``offset`` (``None`` if it does not exist, ``b""`` if it shrank below
        ``offset``); read-only stores get only the committed part (see ``snapshot.CommittedReader``)."""
        path = self._path(relative)
        if self.read_only:
            return self._committed.read(relative, offset)
        return read_from(path, offset)

    def _refresh_runs(self) -> None:
        try:
            inode: int | None = os.stat(self._path(RUNS_FILE)).st_ino
        except FileNotFoundError:
            inode = None
        if inode != self._runs_inode or (
            self._runs_offset and _size(self._path(RUNS_FILE)) < self._runs_offset
        ):  # replaced (a prune) or truncated: start over
            self._runs, self._thread_runs, self._runs_offset = {}, {}, 0
            self._runs_inode = inode
        data = self._read_from(RUNS_FILE, self._runs_offset)
        if data is None:
            return
        for row in _complete_lines(data):
            if isinstance(row, dict) and isinstance(row.get("run_id"), str):
                run = _codec.run_from_dict(row)
                self._runs[run.run_id] = run
                self._thread_runs.setdefault(run.thread_id, {})[run.run_id] = None
        self._runs_offset += data.rfind(b"\n") + 1

    def _read_events(self, run_id: str) -> list[RunEvent]:
        data = self._read_from(f"{EVENTS_DIR}/{safe_file_name(run_id)}")
        if not data:
            return []
        events = []
        for row in _complete_lines(data):
            if isinstance(row, dict) and row.get("run_id") == run_id:
                created_at = datetime.fromisoformat(row["created_at"])
                events.append(
                    _codec.event_from_values(
                        row["thread_id"],
                        run_id,
                        row["seq"],
                        row["event_type"],
                        row["category"],
                        row.get("content"),
                        row.get("metadata"),
                        created_at,
                        row.get("trace_id"),
                        row.get("span_id"),
                    )
                )
        return events

    @staticmethod
    def _page(
        events: list[RunEvent], after_seq: int | None, before_seq: int | None, limit: int
    ) -> list[RunEvent]:
        by_seq = {e.seq: e for e in events}
        return [by_seq[s] for s in _codec.select_page(sorted(by_seq), after_seq, before_seq, limit)]

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
        with self._reading():
            events = self._read_events(run_id)
        kept = [
            e
            for e in events
            if (category is None or e.category == category) and (types is None or e.event_type in types)
        ]
        return self._page(kept, after_seq, before_seq, limit)

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
        messages: list[RunEvent] = []
        with self._reading():
            for run_id in list(self._thread_runs.get(thread_id, ())):
                messages.extend(
                    e
                    for e in self._read_events(run_id)
                    if e.category == "message" and e.thread_id == thread_id
                )
        return self._page(messages, after_seq, before_seq, limit)

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run's summary, or ``None``."""
        with self._reading():
            return self._runs.get(run_id)

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
        runs = self._matching(wanted)
        runs.sort(key=lambda r: r.run_id)
        runs.sort(key=lambda r: _codec.to_us(r.started_at) or -1, reverse=True)
        return runs[:limit]

    def count_runs(self, **filters: Any) -> int:
        """How many runs ``list_runs`` would list with these filters (``RunFilter``'s) and no limit."""
        wanted = RunFilter(**filters)
        check_page_args(limit=1, status=wanted.status)
        return len(self._matching(wanted))

    def _matching(self, wanted: RunFilter) -> list[RunRecord]:
        with self._reading():
            runs = (
                [self._runs[r] for r in self._thread_runs.get(wanted.thread_id, ())]
                if wanted.thread_id is not None
                else list(self._runs.values())
            )
        return [r for r in runs if wanted.matches(r)]

    def list_spans(self, run_id: str) -> list[SpanRecord]:
        """The run's span rows, by start time (read from ``spans.jsonl``)."""
        with self._reading():
            data = self._read_from(SPANS_FILE) or b""
        spans = [
            _codec.span_from_dict(row)
            for row in _complete_lines(data)
            if isinstance(row, dict) and row.get("run_id") == run_id
        ]
        spans.sort(key=lambda s: (s.start_time, s.span_id))
        return spans

    def token_usage(self, *, run_id: str | None = None, thread_id: str | None = None) -> TokenUsage:
        """Token totals over the selected runs (all runs when neither is given) and the caller split."""
        usage = TokenUsage()
        with self._reading():
            for run in self._runs.values():
                if (run_id is None or run.run_id == run_id) and (
                    thread_id is None or run.thread_id == thread_id
                ):
                    _codec.merge_usage(usage, run)
        usage.by_caller = dict(sorted(usage.by_caller.items()))
        return usage

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the directory (idempotent)."""
        with self._mutex:
            if not self._closed:
                self._closed = True
                if self._lock_fd >= 0:
                    os.close(self._lock_fd)

    def __enter__(self) -> JsonlStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JsonlStore({self.directory!r}{', read_only=True' if self.read_only else ''})"
