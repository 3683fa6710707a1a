"""A write-ahead spool: what ``serve`` acknowledged survives a SIGKILL until it is in the store.

``RunJournalExporter`` holds a run's spans until the run's root span ends; in an app that is fine
(the spans die with the app), but ``serve`` answers senders who then forget the data. So every
accepted request is appended here *before* it is acknowledged, and the ids of spans the store
committed are appended after each store write. A restart replays the data records minus the
committed spans, rebuilding exactly the runs that were held (or not yet written).

Files: ``DIR/NNNNNNNN.seg`` segments of records ``<u32 length><u32 crc32><u8 kind><payload>``, kind
``D`` (a serialized ``ExportTraceServiceRequest``) or ``C`` (packed little-endian u64 span ids); a
torn record at the end of a segment (a crash mid-append) ends that segment's replay. ``DIR/lock`` is
held (``flock``) by the one ``serve`` that owns the spool.

Durability: appends go to the OS with one ``write`` (a SIGKILL loses nothing); with ``fsync=True``
each append is also fsynced (power loss loses nothing acknowledged, at the cost of a disk flush per
batch). Size: a new segment starts every ``segment_bytes``; a closed segment is deleted once no run
with spans in it is still held (:meth:`Spool.release`), and when more than ``max_segments`` pile up
(runs held for a long time, e.g. a sender died mid-run) the held spans are copied forward into a
new segment and the old ones deleted (:meth:`Spool.compact`). So the spool stays within about
``max_segments`` x ``segment_bytes`` plus the spans held in memory (``max_pending_spans``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

_logger = logging.getLogger(__name__)

DATA = ord("D")
COMMIT = ord("C")
_HEADER = struct.Struct("<IIB")
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_SEGMENTS = 4


class SpoolError(Exception):
    """The spool directory cannot be used (held by another ``serve``, not writable)."""


def record(kind: int, payload: bytes) -> bytes:
    """One spool record (header, CRC and payload) as :meth:`Spool.append_records` appends it. ``serve``'s
    receiving process makes the records of its requests (the CRC is ~3k instructions a span, and that
    process has a core to spare), the journal process appends them as they are."""
    return _HEADER.pack(len(payload), zlib.crc32(payload), kind) + payload


def _read_segment(path: Path) -> Iterator[tuple[int, bytes]]:
    data = path.read_bytes()
    pos, size = 0, len(data)
    while pos + _HEADER.size <= size:
        length, crc, kind = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        payload = data[start : start + length]
        if len(payload) != length or zlib.crc32(payload) != crc or kind not in (DATA, COMMIT):
            _logger.warning("spool %s: torn record at byte %d (a crash mid-append); rest ignored", path, pos)
            return
        yield kind, payload
        pos = start + length


def pack_ids(ids: Iterable[int]) -> bytes:
    ids = list(ids)
    return struct.pack(f"<{len(ids)}Q", *ids)


def unpack_ids(payload: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(payload) // 8}Q", payload)


def _lock(fd: int, wait: float, directory: Path) -> bool:
    """Take the spool's lock, waiting up to ``wait`` seconds (a previous serve may still be finishing)."""
    deadline = time.monotonic() + wait
    logged = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            if not logged:
                _logger.warning("spool %s is held by another serve; waiting up to %.0f s", directory, wait)
                logged = True
            time.sleep(0.1)


class Spool:
    """Segments of data / commit records in one directory; used by the writer thread only."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: bool = False,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        max_segments: int = DEFAULT_MAX_SEGMENTS,
        lock_wait: float = 0.0,
    ) -> None:
        if segment_bytes < 1024 or max_segments < 2:
            raise ValueError("segment_bytes must be >= 1024 and max_segments >= 2")
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot use the spool directory {str(self.directory)!r}: {exc}") from None
        if not _lock(self._lock_fd, lock_wait, self.directory):
            os.close(self._lock_fd)
            raise SpoolError(
                f"the spool {str(self.directory)!r} is in use by another `otel-runjournal serve` "
                "(give each serve its own --spool)"
            ) from None
        self._fsync = fsync
        self._segment_bytes = segment_bytes
        self._max_segments = max_segments
        self._segments = sorted(int(p.stem) for p in self.directory.glob("*.seg") if p.stem.isdigit())
        self._fd = -1
        self._size = 0
        self.current = self._segments[-1] if self._segments else 0

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:08d}.seg"

    # --- replay ------------------------------------------------------------------------------------
    def recover(self) -> tuple[list[tuple[int, ExportTraceServiceRequest]], set[int]]:
        """(segment, request) of every data record, oldest first, and the ids the store committed."""
        committed: set[int] = set()
        data: list[tuple[int, ExportTraceServiceRequest]] = []
        for number in self._segments:
            for kind, payload in _read_segment(self._path(number)):
                if kind == COMMIT:
                    committed.update(unpack_ids(payload))
                    continue
                request = ExportTraceServiceRequest()
                try:
                    request.ParseFromString(payload)
                except Exception as exc:  # a bug or a foreign file: never fatal
                    _logger.warning("spool %s: unreadable data record skipped: %s", number, exc)
                    continue
                data.append((number, request))
        return data, committed

    # --- appending ---------------------------------------------------------------------------------
    def start_segment(self) -> int:
        """Close the current segment and start a new one; returns its number."""
        if self._fd >= 0:
            os.close(self._fd)
        self.current = (self._segments[-1] if self._segments else 0) + 1
        self._segments.append(self.current)
        self._fd = os.open(self._path(self.current), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = 0
        return self.current

    def append(self, kind: int, payloads: Iterable[bytes]) -> None:
        """Append records with one ``write`` (and an fsync with ``fsync=True``); raises ``OSError``."""
        self.append_records([record(kind, p) for p in payloads])

    def append_records(self, records: Iterable[bytes | memoryview]) -> None:
        """Append records made by :func:`record` with one ``write`` (and an fsync with ``fsync=True``);
        raises ``OSError``."""
        if self._fd < 0:
            self.start_segment()
        blob = b"".join(records)
        if not blob:
            return
        view = memoryview(blob)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self._fsync:
                os.fsync(self._fd)
        except OSError:  # e.g. disk full: cut a torn record off, so later appends stay readable
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise
        self._size += len(blob)

    @property
    def full(self) -> bool:
        """The current segment reached ``segment_bytes``: start a new one."""
        return self._size >= self._segment_bytes

    @property
    def segments(self) -> list[int]:
        return list(self._segments)

    @property
    def too_many(self) -> bool:
        return len(self._segments) > self._max_segments

    def release(self, below: int) -> int:
        """Delete closed segments numbered below ``below`` (nothing in them is held); returns how many."""
        gone = [n for n in self._segments if n < below and n != self.current]
        for number in gone:
            with contextlib.suppress(FileNotFoundError):
                self._path(number).unlink()
            self._segments.remove(number)
        return len(gone)

    def compact(self, keep: Callable[[Any], bool], recently_committed: Iterable[int]) -> int:
        """Copy the spans ``keep`` selects (held, not committed) from every segment into a new one
        that starts with ``recently_committed`` (so a restart still recognises re-sent data), then
        delete the old segments. Returns the number of spans copied."""
        old = list(self._segments)
        data, committed = self.recover()
        self.start_segment()
        window = [i for i in recently_committed]
        if window:
            self.append(COMMIT, [pack_ids(window)])
        copied = 0
        payloads: list[bytes] = []
        for _, request in data:
            out = ExportTraceServiceRequest()
            for rs in request.resource_spans:
                new_rs = None
                for ss in rs.scope_spans:
                    chosen = [
                        s for s in ss.spans if int.from_bytes(s.span_id, "big") not in committed and keep(s)
                    ]
                    if not chosen:
                        continue
                    if new_rs is None:
                        new_rs = out.resource_spans.add()
                        new_rs.resource.CopyFrom(rs.resource)
                        new_rs.schema_url = rs.schema_url
                    new_ss = new_rs.scope_spans.add()
                    new_ss.scope.CopyFrom(ss.scope)
                    new_ss.schema_url = ss.schema_url
                    new_ss.spans.extend(chosen)
                    copied += len(chosen)
            if out.resource_spans:
                payloads.append(out.SerializeToString())
        if payloads:
            self.append(DATA, payloads)
        os.fsync(self._fd)
        self._fsync_dir()
        for number in old:
            with contextlib.suppress(FileNotFoundError):
                self._path(number).unlink()
        self._segments = [self.current]
        return copied

    def sync(self) -> None:
        """fsync the current segment (shutdown)."""
        if self._fd >= 0:
            os.fsync(self._fd)

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """fsync and close the segment, release the directory lock (idempotent)."""
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
