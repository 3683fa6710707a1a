"""``serve``'s lifecycle: start the journal, start the receivers, stop gracefully.

The journal (spool, store, the writer thread) runs in a child process by default
(:mod:`.journal_process`): the receivers forward request bodies to it, so receiving and journaling
use two cores instead of sharing one interpreter lock. It opens spool and store and replays the
spool before the receivers listen; if it dies, serve stops and exits non-zero.

Shutdown (SIGTERM / SIGINT, or :meth:`Serve.stop`): the receivers stop accepting (gRPC lets the
RPCs in flight finish within the grace period; HTTP stops taking connections), the writer journals
every queued request and answers it, retries a failed write, then the spool and the store are closed.
Runs still waiting for their root span stay in the spool: the next start replays them.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .. import settings as _env
from ..stores.location import split_location
from .auth import TokenCheck, check_bind, load_tls
from .journal_process import Journal, JournalOptions, JournalProcess, open_journal
from .retention import DEFAULT_INTERVAL as DEFAULT_RETENTION_INTERVAL
from .retention import Retention
from .spool import DEFAULT_SEGMENT_BYTES
from .writer import DEFAULT_MAX_QUEUED_SPANS, DEFAULT_RUN_IDLE_S, DEFAULT_SETTLE_S

_logger = logging.getLogger("otel_runjournal.serve")

DEFAULT_GRPC = "127.0.0.1:4317"
DEFAULT_HTTP = "127.0.0.1:4318"
DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_PENDING_SPANS = 100_000


def default_spool(location: str) -> str:
    """Where the spool goes unless told: next to the store (``x.duckdb`` → ``x.duckdb.spool``)."""
    try:
        scheme, path = split_location(location)
    except ValueError:
        return "otel-runjournal-serve.spool"
    if scheme in ("", "duckdb", "jsonl"):
        return os.path.normpath(path.rstrip("/\\") or ".") + ".spool"
    return "otel-runjournal-serve.spool"


@dataclass
class ServeConfig:
    """Everything ``otel-runjournal serve`` takes (CLI flags → env → defaults, resolved by the CLI)."""

    store: str
    grpc: tuple[str, int] | None = ("127.0.0.1", 4317)
    http: tuple[str, int] | None = ("127.0.0.1", 4318)
    token: str | None = None
    insecure: bool = False
    spool: str | None = None
    fsync: bool = False
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_queued_spans: int = DEFAULT_MAX_QUEUED_SPANS
    max_pending_spans: int | None = None
    journal_content: bool | None = None
    request_timeout: float = 30.0
    spool_segment_bytes: int = DEFAULT_SEGMENT_BYTES
    settle: float = DEFAULT_SETTLE_S
    run_idle_timeout: float = DEFAULT_RUN_IDLE_S
    journal_process: bool = True  # journal in a child process (False: a thread of this process)
    tls_cert: str | None = None  # PEM certificate (chain) and key: TLS on both ports
    tls_key: str | None = None
    retention: timedelta | None = None  # prune runs older than this, every retention_interval seconds
    retention_interval: float = DEFAULT_RETENTION_INTERVAL


class Serve:
    """A running ``serve``: :meth:`start`, then :meth:`wait` or :meth:`stop`."""

    def __init__(self, config: ServeConfig) -> None:
        hosts = [a[0] for a in (config.grpc, config.http) if a is not None]
        if not hosts:
            raise ValueError("nothing to listen on: give --grpc and/or --http")
        check_bind(hosts, token=config.token, insecure=config.insecure)
        if config.max_request_bytes < 1024:
            raise ValueError("max_request_bytes must be at least 1024")
        self.config = config
        self._token = TokenCheck(config.token)
        self._tls = load_tls(config.tls_cert, config.tls_key)
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self._grpc: Any = None
        self._http: Any = None
        self._http_thread: threading.Thread | None = None
        self.grpc_port: int | None = None
        self.http_port: int | None = None
        self.writer: Journal | None = None
        self.failed = False  # the journal process died: serve stopped itself
        self._retention: Retention | None = None

    def start(self) -> None:
        """Open store and spool, replay the spool, start the receivers (raises on any failure)."""
        config = self.config
        spool_dir = config.spool or default_spool(config.store)
        options = JournalOptions(
            store=config.store,
            spool=spool_dir,
            fsync=config.fsync,
            spool_segment_bytes=config.spool_segment_bytes,
            max_pending_spans=_env.resolve(
                config.max_pending_spans,
                _env.OTEL_RUNJOURNAL_MAX_PENDING_SPANS,
                DEFAULT_MAX_PENDING_SPANS,
                int,
            ),
            journal_content=_env.resolve(
                config.journal_content, _env.OTEL_RUNJOURNAL_JOURNAL_CONTENT, True, _env.parse_bool
            ),
            max_queued_spans=config.max_queued_spans,
            settle=config.settle,
            run_idle_timeout=config.run_idle_timeout,
        )
        if config.journal_process:
            process = JournalProcess(options, on_exit=self._journal_exited)
            process.start()
            self.writer = process
        else:
            self.writer = open_journal(options)
        try:
            if config.grpc is not None:
                from .grpc_server import start_grpc  # grpc only when asked for

                self._grpc, self.grpc_port = start_grpc(
                    self.writer,
                    *config.grpc,
                    token=self._token,
                    max_request_bytes=config.max_request_bytes,
                    timeout=config.request_timeout,
                    tls=self._tls,
                )
            if config.http is not None:
                from .http_server import start_http

                self._http, self.http_port, self._http_thread = start_http(
                    self.writer,
                    *config.http,
                    token=self._token,
                    max_request_bytes=config.max_request_bytes,
                    timeout=config.request_timeout,
                    tls=self._tls,
                )
            if config.retention is not None:
                self._retention = Retention(
                    config.store, config.retention, interval=config.retention_interval
                )
                self._retention.start()
        except Exception:
            self.stop()
            raise
        where = []
        if self.grpc_port is not None and config.grpc is not None:
            where.append(f"OTLP/gRPC on {config.grpc[0]}:{self.grpc_port}")
        if self.http_port is not None and config.http is not None:
            scheme = "https" if self._tls else "http"
            where.append(
                f"OTLP/HTTP on {scheme}://{config.http[0]}:{self.http_port}/v1/traces (health: /health)"
            )
        _logger.info(
            "otel-runjournal serve: %s → journal %s (spool %s%s)",
            ", ".join(where),
            config.store,
            spool_dir,
            (", TLS" if self._tls else "") + (", bearer token required" if self._token.required else ""),
        )

    def _journal_exited(self) -> None:
        """The journal process died: nothing can be journaled, so serve stops (and exits non-zero)."""
        self.failed = True
        threading.Thread(target=self.stop, name="otel-runjournal-serve-stop", daemon=True).start()

    def install_signal_handlers(self) -> None:
        """SIGTERM / SIGINT stop the server gracefully (main thread only)."""

        def handle(signum: int, frame: Any) -> None:
            _logger.warning(
                "serve: %s received; finishing the requests in flight", signal.Signals(signum).name
            )
            threading.Thread(target=self.stop, name="otel-runjournal-serve-stop", daemon=True).start()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def wait(self) -> None:
        """Block until stopped."""
        while not self._stopped.wait(0.5):
            pass

    def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, journal what is queued, close spool and store (idempotent)."""
        with self._stop_lock:
            if self._stopped.is_set():
                return
            if self._retention is not None:
                self._retention.stop()
            if self._http is not None:
                self._http.shutdown()  # no new connections; handlers in flight keep running
                self._http.server_close()
            grpc_done = self._grpc.stop(grace) if self._grpc is not None else None
            if self.writer is not None:
                # requests already queued are journaled and answered; new ones are refused as retryable
                if grpc_done is not None:
                    grpc_done.wait(grace)
                self.writer.stop()
            self._stopped.set()
            _logger.info("otel-runjournal serve: stopped")
