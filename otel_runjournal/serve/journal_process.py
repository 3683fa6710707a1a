"""The journal in a process of its own: the receivers' process only receives, this one journals.

One Python process cannot journal much faster than one core: the receivers (gRPC, HTTP) and the
writer (parse, map, write) share one interpreter lock. So ``serve`` runs the
:class:`~.writer.JournalWriter` — spool, store, assembler, all of its state — in a child process
(``python -m otel_runjournal.serve.journal_process FD``: no ``multiprocessing``, so nothing of the
parent's ``__main__`` is run again, as spawn would) and the receivers forward each request to it
over a socket pair (:mod:`.channel`); the answers come back the same way. Measured in
``bench/bench_serve.py``.

Messages, parent → child: first the options (JSON); then ``R`` + request id (8 bytes) + record size
(8 bytes) + the body as a spool record (:func:`.spool.record`: its CRC is computed here, in the
receiving process, which has a core to spare) + the :class:`~.otlp_spans.Decoded` body as a
``marshal``-ed tuple (plain values only: ``marshal`` reads them back in ~70% of ``pickle``'s time
and keeps the keys interned); ``H`` + id (health); ``M`` + id (a malformed request was refused:
counted, not answered); ``S`` (stop).
Child → parent: ``pickle(("ready" | "error", message))`` once, then ``pickle((id, Outcome | health
dict))``.

Lifecycle: the child ignores SIGINT / SIGTERM (the parent decides when to stop, so a Ctrl-C of the
process group cannot cut the journal short); on ``S`` or when the parent is gone (the channel ends,
e.g. the parent was SIGKILLed) it journals what it accepted, closes spool and store, and exits. If
the child dies, every waiting request is answered as retryable and the parent is told (``on_exit``).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import itertools
import json
import logging
import marshal
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from . import spool as _spool
from .channel import Channel
from .otlp_spans import Decoded
from .writer import JournalWriter, Outcome, build_spans, read_body

_logger = logging.getLogger("otel_runjournal.serve")

_REQUEST, _HEALTH, _STOP, _MALFORMED = b"R", b"H", b"S", b"M"
SPOOL_LOCK_WAIT_S = 30.0
"""How long a starting journal waits for the spool of a previous serve still finishing (restart)."""


class Journal(Protocol):
    """What the receivers call: in this process (:class:`~.writer.JournalWriter`) or in a child."""

    def submit_body(self, body: bytes, *, timeout: float = 30.0) -> Outcome: ...

    def note_malformed(self) -> None: ...

    def health(self) -> dict[str, Any]: ...

    def stop(self, timeout: float = 30.0) -> None: ...


@dataclass(frozen=True)
class JournalOptions:
    """What the journal needs to open its spool and store (resolved in the parent, picklable)."""

    store: str
    spool: str
    fsync: bool
    spool_segment_bytes: int
    max_pending_spans: int
    journal_content: bool
    max_queued_spans: int
    settle: float
    run_idle_timeout: float
    spool_lock_wait: float = 0.0


def open_journal(options: JournalOptions) -> JournalWriter:
    """Open spool and store, replay the spool, start the writer thread (the receiving process of a
    two-process serve never calls this, so it never loads DuckDB)."""
    from ..stores.location import open_store
    from .spool import Spool

    spool = Spool(
        options.spool,
        fsync=options.fsync,
        segment_bytes=options.spool_segment_bytes,
        lock_wait=options.spool_lock_wait,
    )
    try:
        store = open_store(options.store)
    except Exception:
        spool.close()
        raise
    writer = JournalWriter(
        store,
        spool,
        max_pending_spans=options.max_pending_spans,
        journal_content=options.journal_content,
        max_queued_spans=options.max_queued_spans,
        settle=options.settle,
        run_idle_timeout=options.run_idle_timeout,
    )
    writer.warm()
    if "duckdb" in sys.modules and "pyarrow" in sys.modules:  # the DuckDB store's write path
        warm_arrow_scan()
    writer.start()
    return writer


def warm_arrow_scan() -> None:
    """Scan a one-row Arrow table in a throwaway in-memory DuckDB: DuckDB imports pandas (and
    numpy) on its first Arrow scan, ~0.4 s of CPU that a fresh ``serve`` otherwise spent inside its
    first store write, with requests waiting (``bench/bench_serve.py``). Never fails the start."""
    try:
        import duckdb
        import pyarrow

        con = duckdb.connect(":memory:")
        try:
            con.register("warm", pyarrow.table({"x": [1]}))
            con.execute("SELECT count(*) FROM warm").fetchall()
        finally:
            con.close()
    except Exception as exc:  # only a warm-up: the first write pays instead
        _logger.debug("serve: warming DuckDB's Arrow scan failed: %r", exc)


# --- the child ------------------------------------------------------------------------------------
GC_THRESHOLDS = (100_000, 50, 100)


def _tune_gc() -> None:
    """Collect cycles rarely: the journal allocates millions of short-lived objects and holds many
    (runs waiting for their root), so CPython's default thresholds (700, 10, 10) make it walk
    everything it holds again and again — a third of its time (``bench/bench_serve.py``). This is
    our own process, so it is ours to tune; the objects of start-up are frozen out of collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _child_main(channel: Channel) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    settings = json.loads(channel.recv())
    logging.basicConfig(level=settings.pop("log_level"), format="%(asctime)s %(levelname)s %(message)s")
    try:
        writer = open_journal(JournalOptions(**settings))
    except Exception as exc:
        channel.send(pickle.dumps(("error", str(exc) or type(exc).__name__)))
        return
    _tune_gc()
    send_lock = threading.Lock()

    def reply(request_id: int, payload: Outcome | dict[str, Any]) -> None:
        data = pickle.dumps((request_id, payload))
        with send_lock:
            channel.send(data)

    channel.send(pickle.dumps(("ready", None)))
    try:
        while True:
            try:
                message = channel.recv()
            except (EOFError, OSError):
                _logger.warning("serve: the receiving process is gone; journaling what was accepted")
                break
            kind, request_id = message[:1], int.from_bytes(message[1:9], "little")
            if kind == _REQUEST:
                size = int.from_bytes(message[9:17], "little")
                converted = build_spans(Decoded(*marshal.loads(memoryview(message)[17 + size :])))
                if isinstance(converted, Outcome):
                    reply(request_id, converted)
                    continue
                writer.submit_async(
                    converted.spans,
                    message[17 : 17 + size],
                    converted.rejected,
                    converted.reason,
                    functools.partial(reply, request_id),
                )
            elif kind == _HEALTH:
                reply(request_id, writer.health())
            elif kind == _MALFORMED:
                writer.note_malformed()
            elif kind == _STOP:
                break
    finally:
        writer.stop()
        channel.close()


# --- the parent's side ----------------------------------------------------------------------------
class _Waiter:
    __slots__ = ("event", "value")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.value: Any = None


class JournalProcess:
    """The journal in a child process, with the :class:`Journal` interface for the receivers."""

    def __init__(self, options: JournalOptions, *, on_exit: Callable[[], None] | None = None) -> None:
        self._options = replace(options, spool_lock_wait=max(options.spool_lock_wait, SPOOL_LOCK_WAIT_S))
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: Channel | None = None
        self._on_exit = on_exit
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._waiting: dict[int, _Waiter] = {}
        self._waiting_lock = threading.Lock()
        self._alive = False
        self._stopping = False
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = 300.0) -> None:
        """Start the child and wait until it has opened spool and store and replayed the spool."""
        ours, theirs = socket.socketpair()
        # the child imports this very package, wherever it was imported from here
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "otel_runjournal.serve.journal_process", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            theirs.close()
        self._channel = channel = Channel(ours)
        settings = dataclasses.asdict(self._options)
        settings["log_level"] = logging.getLogger("otel_runjournal.serve").getEffectiveLevel()
        ours.settimeout(timeout)
        try:
            channel.send(json.dumps(settings).encode())
            first = pickle.loads(channel.recv())
        except (EOFError, OSError):
            self._process.kill()
            code = self._process.wait()
            raise RuntimeError(
                f"the journal process did not start within {timeout:.0f} s"
                if code == -signal.SIGKILL
                else f"the journal process exited at start (exit code {code})"
            ) from None
        if first[0] == "error":
            self._process.wait(30)
            raise RuntimeError(first[1])
        ours.settimeout(None)
        self._alive = True
        self._reader = threading.Thread(target=self._read, name="otel-runjournal-journal-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._channel is not None and self._process is not None
        while True:
            try:
                request_id, payload = pickle.loads(self._channel.recv())
            except (EOFError, OSError):
                break
            with self._waiting_lock:
                waiter = self._waiting.pop(request_id, None)
            if waiter is not None:
                waiter.value = payload
                waiter.event.set()
        self._alive = False
        with self._waiting_lock:
            waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            waiter.event.set()  # value None: answered as retryable below
        if not self._stopping:
            _logger.error("serve: the journal process exited (exit code %s)", self._process.wait())
            if self._on_exit is not None:
                self._on_exit()

    def _call(self, kind: bytes, body: bytes, timeout: float) -> Any:
        """Send one message, wait for its answer (None: the child is gone or ``timeout`` passed)."""
        if not self._alive:
            return None
        request_id = next(self._ids)
        waiter = _Waiter()
        with self._waiting_lock:
            self._waiting[request_id] = waiter
        assert self._channel is not None
        try:
            with self._send_lock:
                self._channel.send(kind, request_id.to_bytes(8, "little"), body)
        except (OSError, ValueError):
            with self._waiting_lock:
                self._waiting.pop(request_id, None)
            return None
        if not waiter.event.wait(timeout):
            with self._waiting_lock:
                self._waiting.pop(request_id, None)
        return waiter.value

    def submit_body(self, body: bytes, *, timeout: float = 30.0) -> Outcome:
        """Journal an OTLP/protobuf body in the child; its answer (retryable when it cannot answer).

        The body is decoded here, in the receiver's thread, and sent along as plain values: decoding
        is a quarter of the journal's work per span, and this process has a core to spare."""
        decoded = read_body(body)
        if isinstance(decoded, Outcome):
            return decoded
        if not decoded.spans:
            return Outcome(True, decoded.rejected, decoded.reason)
        payload = marshal.dumps(tuple(decoded))
        record = _spool.record(_spool.DATA, body)
        outcome = self._call(_REQUEST, len(record).to_bytes(8, "little") + record + payload, timeout)
        if isinstance(outcome, Outcome):
            return outcome
        if self._alive:  # still queued in the child: journaled there; a re-send is a duplicate
            return Outcome(False, reason="timeout", message="the journal is busy", retry_after=1)
        return Outcome(False, reason="shutdown", message="the journal is not running", retry_after=5)

    def note_malformed(self) -> None:
        """Count a refused malformed request in the child (its counters and log are the journal's)."""
        if not self._alive or self._channel is None:
            return
        try:
            with self._send_lock:
                self._channel.send(_MALFORMED, bytes(8), b"")
        except (OSError, ValueError):
            pass

    def health(self) -> dict[str, Any]:
        """The child's status and counters (``status: down`` when it does not answer)."""
        if self._stopping:
            return {"status": "stopping"}
        answer = self._call(_HEALTH, b"", 10.0)
        return answer if isinstance(answer, dict) else {"status": "down"}

    def stop(self, timeout: float = 30.0) -> None:
        """Let the child journal what it accepted and close spool and store; wait for it to exit."""
        if self._stopping or self._process is None or self._channel is None:
            return
        self._stopping = True
        if self._alive:
            try:
                with self._send_lock:
                    self._channel.send(_STOP)
            except (OSError, ValueError):
                pass
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            _logger.warning("serve: the journal process did not finish within %.0f s; killing it", timeout)
            self._process.kill()
            self._process.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        self._channel.close()


if __name__ == "__main__":  # the child: python -m otel_runjournal.serve.journal_process FD
    _child_main(Channel(socket.socket(fileno=int(sys.argv[1]))))
