"""The store in a process of its own: the receiving process receives and maps, this one writes.

One Python process cannot journal much faster than one core: receiving, decoding, mapping and the
store's write share one interpreter lock. So ``serve`` splits the journal's work at the cheapest
hand-over: the receiving process decodes each request, spools it and runs the
:class:`~.writer.JournalWriter` (dedupe, settle, the mapping and run assembly), and a child process
(``python -m otel_runjournal.serve.journal_process FD``: no ``multiprocessing``, so nothing of the
parent's ``__main__`` is run again, as spawn would) owns the store and writes the finished runs —
while the parent maps the next batch (:class:`~.writer.PipelinedStore`). The runs cross as tuples
(:mod:`.wire`) over a socket pair (:mod:`.channel`). Measured in ``bench/bench_serve.py``.

Messages, parent → child: first the options (JSON); then ``W`` + write id (8 bytes) + the encoded
runs; ``S`` (stop). Child → parent: ``pickle(("ready" | "error", message))`` once, then
``pickle((id, None | error message))`` per write.

Lifecycle: the child ignores SIGINT / SIGTERM (the parent decides when to stop, so a Ctrl-C of the
process group cannot cut the journal short); on ``S`` it closes the store and exits. When the parent
is gone (the channel ends, e.g. the parent was SIGKILLed) it finishes the write it has, then takes
the spool over and journals what the parent accepted (the spool's replay, as a restart does, and
every run whose root arrived), and exits. If the child dies, the write in flight fails (its runs
stay in memory and in the spool) and the parent is told (``on_exit``): serve stops.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import json
import logging
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

from .channel import Channel
from .writer import JournalWriter, Outcome

_logger = logging.getLogger("otel_runjournal.serve")

_WRITE, _STOP = b"W", b"S"
SPOOL_LOCK_WAIT_S = 30.0
"""How long a starting journal waits for the spool of a previous serve still finishing (restart)."""


class Journal(Protocol):
    """What the receivers call: a :class:`~.writer.JournalWriter` (with the store here or in a child)."""

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


def _open_spool(options: JournalOptions) -> Any:
    from .spool import Spool

    return Spool(
        options.spool,
        fsync=options.fsync,
        segment_bytes=options.spool_segment_bytes,
        lock_wait=options.spool_lock_wait,
    )


def _writer(options: JournalOptions, store: Any, spool: Any, *, close_store: bool = True) -> JournalWriter:
    return JournalWriter(
        store,
        spool,
        max_pending_spans=options.max_pending_spans,
        journal_content=options.journal_content,
        max_queued_spans=options.max_queued_spans,
        settle=options.settle,
        run_idle_timeout=options.run_idle_timeout,
        close_store=close_store,
    )


def open_journal(options: JournalOptions) -> JournalWriter:
    """Open spool and store in this process, replay the spool, start the writer thread."""
    from ..stores.location import open_store

    spool = _open_spool(options)
    try:
        store = open_store(options.store)
    except Exception:
        spool.close()
        raise
    writer = _writer(options, store, spool)
    writer.start()
    return writer


# --- the child ------------------------------------------------------------------------------------
GC_THRESHOLDS = (100_000, 50, 100)


def tune_gc() -> None:
    """Collect cycles rarely: the journal allocates millions of short-lived objects and holds many
    (runs waiting for their root), so CPython's default thresholds (700, 10, 10) make it walk
    everything it holds again and again — a third of its time (``bench/bench_serve.py``). Only for
    processes that are serve's own; the objects of start-up are frozen out of collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _take_over(options: JournalOptions, store: Any) -> None:
    """The parent is gone: journal what it accepted from its spool (as a restart would), then stop."""
    _logger.warning("serve: the receiving process is gone; journaling what was accepted")
    try:
        spool = _open_spool(replace(options, spool_lock_wait=max(options.spool_lock_wait, SPOOL_LOCK_WAIT_S)))
    except Exception as exc:  # another serve took it: it replays the spool itself
        _logger.warning("serve: cannot take the spool over (%s); the next start journals it", exc)
        return
    writer = _writer(options, store, spool, close_store=False)
    writer.start()  # the replay: runs complete in the spool are written
    writer.stop()  # and every run whose root arrived


def _child_main(channel: Channel) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    settings = json.loads(channel.recv())
    logging.basicConfig(level=settings.pop("log_level"), format="%(asctime)s %(levelname)s %(message)s")
    options = JournalOptions(**settings)
    from ..stores.location import open_store
    from .wire import load_writes

    try:
        store = open_store(options.store)
    except Exception as exc:
        channel.send(pickle.dumps(("error", str(exc) or type(exc).__name__)))
        return
    tune_gc()
    channel.send(pickle.dumps(("ready", None)))
    parent_gone = False
    try:
        while True:
            try:
                message = channel.recv()
            except (EOFError, OSError):
                parent_gone = True
                break
            if message[:1] == _STOP:
                break
            request_id = int.from_bytes(message[1:9], "little")
            error: str | None = None
            try:
                store.write(load_writes(memoryview(message)[9:]))
            except Exception as exc:  # the parent keeps the runs and retries
                error = f"{type(exc).__name__}: {exc}"
            try:
                channel.send(pickle.dumps((request_id, error)))
            except OSError:
                parent_gone = True
                break
        if parent_gone:
            _take_over(options, store)
    finally:
        try:
            store.close()
        finally:
            channel.close()


# --- the parent's side ----------------------------------------------------------------------------
class StoreWriteError(Exception):
    """The journal process's store write failed (the message is the store's error)."""


class _StoreClient:
    """The child's store as the writer sees it: a :class:`~.writer.PipelinedStore`."""

    def __init__(self, process: JournalProcess) -> None:
        self._process = process
        self._pending: _Waiter | None = None

    def begin_write(self, writes: list[Any]) -> None:
        from .wire import dump_writes

        self._pending = self._process.send_write(dump_writes(writes))

    def end_write(self) -> None:
        waiter, self._pending = self._pending, None
        if waiter is None:
            return
        waiter.event.wait()
        if waiter.value is _GONE:
            raise StoreWriteError("the journal process is not running")
        if waiter.value is not None:
            raise StoreWriteError(waiter.value)

    def write(self, writes: list[Any]) -> None:
        self.begin_write(writes)
        self.end_write()

    def close(self) -> None:
        self._process.stop_child()


_GONE = object()


class _Waiter:
    __slots__ = ("event", "value")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.value: Any = _GONE


class JournalProcess:
    """The journal with its store in a child process, with the :class:`Journal` interface."""

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
        self._writer: JournalWriter | None = None

    def start(self, timeout: float = 300.0) -> None:
        """Open the spool, start the child (it opens the store), replay the spool, start the writer."""
        spool = _open_spool(self._options)
        try:
            self._start_child(timeout)
        except Exception:
            spool.close()
            raise
        writer = _writer(self._options, _StoreClient(self), spool)
        try:
            writer.start()
        except Exception:
            spool.close()
            self.stop_child()
            raise
        self._writer = writer

    def _start_child(self, timeout: float) -> None:
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
            channel.close()
            raise RuntimeError(
                f"the journal process did not start within {timeout:.0f} s"
                if code == -signal.SIGKILL
                else f"the journal process exited at start (exit code {code})"
            ) from None
        if first[0] == "error":
            self._process.wait(30)
            channel.close()
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
            waiter.event.set()  # value _GONE: the write failed
        if not self._stopping:
            _logger.error("serve: the journal process exited (exit code %s)", self._process.wait())
            if self._on_exit is not None:
                self._on_exit()

    def send_write(self, payload: bytes) -> _Waiter:
        """Send encoded runs to the child; the waiter is set when it answers (or is gone)."""
        waiter = _Waiter()
        if not self._alive or self._channel is None:
            waiter.event.set()
            return waiter
        request_id = next(self._ids)
        with self._waiting_lock:
            self._waiting[request_id] = waiter
        try:
            with self._send_lock:
                self._channel.send(_WRITE, request_id.to_bytes(8, "little"), payload)
        except (OSError, ValueError):
            with self._waiting_lock:
                self._waiting.pop(request_id, None)
            waiter.event.set()
        return waiter

    def stop_child(self, timeout: float = 30.0) -> None:
        """Let the child close the store; wait for it to exit (the writer's last step)."""
        if self._process is None or self._channel is None or self._process.returncode is not None:
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

    # --- the Journal interface (the receivers' threads) ---------------------------------------------
    def submit_body(self, body: bytes, *, timeout: float = 30.0) -> Outcome:
        """Decode an OTLP/protobuf body here, in the receiver's thread, and queue it for the writer."""
        assert self._writer is not None
        return self._writer.submit_body(body, timeout=timeout)

    def note_malformed(self) -> None:
        """Count a refused malformed request."""
        if self._writer is not None:
            self._writer.note_malformed()

    def health(self) -> dict[str, Any]:
        """The writer's status and counters."""
        if self._stopping or self._writer is None:
            return {"status": "stopping"}
        return self._writer.health()

    def stop(self, timeout: float = 30.0) -> None:
        """Journal what was accepted, close the spool, let the child close the store and exit."""
        if self._writer is None:
            return
        self._stopping = True
        self._writer.stop(timeout)
        self.stop_child()


if __name__ == "__main__":  # the child: python -m otel_runjournal.serve.journal_process FD
    _child_main(Channel(socket.socket(fileno=int(sys.argv[1]))))
