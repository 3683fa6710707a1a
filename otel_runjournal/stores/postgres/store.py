"""``PostgresStore``: the run journal in a PostgreSQL database, for many writer processes on many hosts.

Every process keeps a small pool of connections (psycopg 3 + psycopg_pool) and writes each batch in
one transaction (:mod:`.write`): no turn-taking, the per-thread ``seq`` is allocated inside the
transaction. Reads are single statements on the indexes the schema adds.

Failure: connecting waits at most ``connect_timeout`` seconds and every statement at most
``statement_timeout`` (a slow or stuck server); a dead connection is detected when taken from the
pool and replaced (a write takes it unchecked, one round trip less, and is written again once on a
new connection when it turns out dead). Any failure raises :class:`StoreError` with a one-line
message that never shows the password; the exporter then returns FAILURE and retries the batch
later. A batch whose commit did succeed before the error was reported is harmless to retry: writes
are idempotent per span.

A writer whose server does not answer at start-up opens anyway (the application must not fail
because its journal is away): writes raise until the server answers, then the schema is checked.
A refusal (wrong user, password or database) raises at once. ``read_only=True`` opens sessions with
``default_transaction_read_only``, runs no migrations and raises when the server does not answer
(the CLI and other readers). Text values cannot contain NUL in PostgreSQL: a NUL character is stored as
U+FFFD.

Long because one pool serves the schema check, the writes, retention and the query API, and each
turns driver errors into the same password-free one-line :class:`StoreError`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any

try:
    import psycopg
    from psycopg import conninfo as _conninfo
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - exercised where the extra is missing
    raise ImportError(
        "the PostgreSQL store needs psycopg 3 and psycopg_pool: pip install 'otel-runjournal[postgres]'"
    ) from exc

from ...records import RunEvent, RunRecord, RunWrite, SpanRecord, TokenUsage
from .. import codec as _codec
from ..base import DEFAULT_LIMIT, RunFilter, StoreError, check_page_args
from ..retention import PruneResult, check_prune_args
from . import migrate as _migrate
from . import prune as _prune
from . import rows as _rows
from . import sandbox as _sandbox
from . import write as _write
from .conninfo import mask, refused, scrub
from .schema import SCHEMA_TABLE

_logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_STATEMENT_TIMEOUT = 30.0
DEFAULT_POOL_SIZE = 4
IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000
"""A client that stops mid-transaction (a hung host) releases its thread_seq row locks after this."""


class _Unreachable(StoreError):
    """No answer from the server (down, unreachable, timed out), as opposed to a refusal."""


class PostgresStore:
    """A run journal in a PostgreSQL database (``postgresql://user[:password]@host:port/db[?...]``).

    ``connect_timeout`` / ``statement_timeout``: seconds (defaults 5 and 30; the URL's
    ``connect_timeout`` / ``options=-c statement_timeout=...`` win when given). ``pool_size``:
    connections this process may open. ``read_only``: query only (no migrations, read-only sessions).
    """

    def __init__(
        self,
        location: str,
        *,
        read_only: bool = False,
        connect_timeout: float | None = None,
        statement_timeout: float | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        if not isinstance(location, str) or not location.strip():
            raise ValueError(f"PostgresStore needs a postgresql:// URL, got {location!r}")
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size!r}")
        for name, value in (("connect_timeout", connect_timeout), ("statement_timeout", statement_timeout)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        self._location = location.strip()
        self.location = mask(self._location)
        """The location with the password masked (safe to print)."""
        self.read_only = read_only
        try:
            params = _conninfo.conninfo_to_dict(self._location)
        except psycopg.Error as exc:
            raise ValueError(f"malformed PostgreSQL location {self.location!r}: {self._scrub(exc)}") from exc
        given_connect = params.get("connect_timeout")
        self._connect_timeout = float(
            connect_timeout or (given_connect if given_connect is not None else DEFAULT_CONNECT_TIMEOUT)
        )
        options = str(params.get("options") or "")
        self._settings: dict[str, str] = {"TimeZone": "UTC"}
        if statement_timeout is not None or "statement_timeout" not in options:
            seconds = statement_timeout or DEFAULT_STATEMENT_TIMEOUT
            self._settings["statement_timeout"] = f"{int(seconds * 1000)}"
        self._settings["idle_in_transaction_session_timeout"] = str(IDLE_IN_TRANSACTION_TIMEOUT_MS)
        if read_only:
            self._settings["default_transaction_read_only"] = "on"
        self._kwargs: dict[str, Any] = {
            "connect_timeout": max(1, round(self._connect_timeout)),
            "application_name": params.get("application_name") or "otel-runjournal",
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
        self._lock = threading.Lock()
        self._unchecked = threading.local()  # .on: this thread's next checkout skips the pool's check
        self._closed = False
        self._ready = False  # schema checked (and migrated)
        try:  # a clear error now for a wrong user, password or database; then the schema
            with self._direct() as conn:
                self._migrate(conn)
            self._ready = True
        except _Unreachable as exc:
            if read_only:
                raise
            # the server is down or unreachable right now: the application starts anyway; writes
            # fail (the exporter keeps and retries them) until it answers, then the schema is checked
            _logger.warning("%s; writes fail until it answers", exc)
        self._pool = ConnectionPool(
            self._location,
            min_size=1,
            max_size=pool_size,
            kwargs=self._kwargs,
            configure=self._configure,
            check=self._check,
            timeout=self._connect_timeout,
            reconnect_timeout=0,  # no background retry loop: each request while down tries anew
            name="otel-runjournal",
            open=False,
        )
        self._pool.open(wait=False)

    # -- connections ------------------------------------------------------------------------------

    def _scrub(self, exc: BaseException | str) -> str:
        return scrub(str(exc) or type(exc).__name__, self._location)

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        """Session settings (timeouts, UTC, read-only), the COPYs' dumpers."""
        _write.prepare(conn)
        conn.autocommit = True
        for name, value in self._settings.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        conn.autocommit = False

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        """The pool's check of a connection it hands out (a round trip), except for a write: a write
        on a dead connection fails at its first statement, and :meth:`write` writes it again on a
        new one."""
        if not getattr(self._unchecked, "on", False):
            ConnectionPool.check_connection(conn)

    @contextmanager
    def _direct(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            conn = psycopg.connect(self._location, **self._kwargs)
        except psycopg.Error as exc:
            error = StoreError if refused(str(exc)) else _Unreachable
            raise error(f"cannot connect to run journal {self.location}: {self._scrub(exc)}") from None
        try:
            self._configure(conn)
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _connection(self, action: str, *, checked: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (``checked``: alive when handed out, else maybe dead); every driver
        error becomes a one-line, password-free StoreError."""
        if self._closed:
            raise StoreError(f"run journal {self.location} is closed")
        self._unchecked.on = not checked  # read by _check, in this thread, while the pool hands out
        try:
            with self._pool.connection() as conn:
                self._unchecked.on = False
                if not self._ready:
                    with self._lock:
                        if not self._ready:
                            self._migrate(conn)
                            self._ready = True
                yield conn
        except PoolTimeout:
            raise StoreError(
                f"cannot {action} run journal {self.location}: no connection within "
                f"{self._connect_timeout:g}s (server down, unreachable or refusing)"
            ) from None
        except psycopg.Error as exc:
            raise StoreError(f"cannot {action} run journal {self.location}: {self._scrub(exc)}") from None
        finally:
            self._unchecked.on = False

    def close(self) -> None:
        """Close the pool (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._pool.close(timeout=self._connect_timeout)

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r}{', read_only=True' if self.read_only else ''})"

    __str__ = __repr__

    # -- schema -----------------------------------------------------------------------------------

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        try:
            _migrate.migrate(conn, self.location, read_only=self.read_only)
        except psycopg.Error as exc:
            raise StoreError(f"cannot prepare run journal {self.location}: {self._scrub(exc)}") from None

    def schema_versions(self) -> list[tuple[int, str]]:
        """The recorded migrations, oldest first."""
        return [
            (int(v), str(n)) for v, n in self._read(f"SELECT version, name FROM {SCHEMA_TABLE} ORDER BY 1")
        ]

    # -- writing ----------------------------------------------------------------------------------

    def write(self, batch: Sequence[RunWrite]) -> None:
        """Write ``batch`` in one transaction (see ``RunStore.write``); sets ``seq`` on its events."""
        if self.read_only:
            raise StoreError(f"run journal {self.location} was opened read-only")
        if not batch:
            return
        for checked in (False, True):  # unchecked: one round trip less; dead, then on a checked one
            with self._connection("write to", checked=checked) as conn:
                try:
                    events, seqs = self._write(conn, batch)
                    break
                except psycopg.OperationalError:
                    if checked or not conn.broken:
                        raise
                    # the connection was dead (the pool discards it): nothing was committed by it
                    # unless the commit itself was cut off, and a batch written twice is harmless
                except (TypeError, ValueError, OverflowError) as exc:  # a value the driver cannot encode
                    message = f"cannot write to run journal {self.location}: {self._scrub(exc)}"
                    raise StoreError(message) from None
        for event, seq in zip(events, seqs, strict=True):
            event.seq = seq

    @staticmethod
    def _write(conn: psycopg.Connection[Any], batch: Sequence[RunWrite]) -> tuple[list[RunEvent], list[int]]:
        """One transaction; when it is refused for spans or runs already stored or for a NUL or naive
        datetime, rolled back and written again the careful way (see :func:`.write.write`)."""
        clean = stored = upsert = False
        while True:
            try:
                with conn.transaction():
                    return _write.write(conn, batch, clean=clean, stored=stored, upsert=upsert)
            except psycopg.errors.UniqueViolation as exc:
                if exc.diag.table_name == "runs" and not (upsert or stored):
                    upsert = True  # a run written before (in parts): the runs upserted
                elif exc.diag.table_name != "runs" and not stored:
                    stored = True
                else:
                    raise
            except (psycopg.DataError, ValueError, TypeError):
                if clean or not _write.unusual(batch):
                    raise
                clean = True

    def update_costs(self, events: Sequence[RunEvent], runs: Sequence[RunRecord]) -> None:
        """``reprice``: new event metadata and run cost columns, in one transaction (see
        :meth:`DuckDBStore.update_costs`)."""
        if self.read_only:
            raise StoreError(f"run journal {self.location} was opened read-only")
        with self._connection("reprice") as conn, conn.transaction():
            _write.update_costs(conn, events, runs)

    # -- retention --------------------------------------------------------------------------------

    def prune(
        self,
        *,
        older_than: datetime,
        keep_errors: bool = False,
        thread_id: str | None = None,
        dry_run: bool = False,
    ) -> PruneResult:
        """Delete whole runs (rules: ``stores/retention.py``), a transaction per chunk, row locks as in
        ``postgres/prune.py``; then ``VACUUM (ANALYZE)`` so the space is reusable at once."""
        older_than = check_prune_args(older_than, thread_id)
        if self.read_only:
            raise StoreError(f"run journal {self.location} was opened read-only")
        where, params = _prune.prune_filter(
            older_than, keep_errors, None if thread_id is None else _write.text(thread_id)
        )
        with self._connection("prune") as conn:
            result = _prune.run(conn, where, params, dry_run=dry_run)
        if dry_run:
            return result
        if result.runs:
            _prune.vacuum_or_log(self._direct, self._scrub)
        with self._connection("prune") as conn, conn.transaction():
            result.size_after = _prune.tables_size(conn)
        return result

    # -- reading ----------------------------------------------------------------------------------

    def sql(self, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one reading SQL statement (``%s`` placeholders) in the sandbox and return its rows."""
        return self.query(query, params)[1]

    def query(
        self, query: str, params: Sequence[Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one reading SQL statement (``%s`` placeholders) and return its column names and rows.

        The statement runs in a read-only transaction as the role that can only read the journal's
        tables and views (:mod:`.sandbox`): no server files, programs or other roles, whatever the
        connecting role may do. Refused, with what to run, where that role is missing."""
        with self._connection("query") as conn:
            conn.read_only = True  # BEGIN READ ONLY, whatever the store's mode
            try:
                why = _sandbox.missing(conn)
                if why is not None:
                    raise StoreError(why)
                columns, rows = _sandbox.run(conn, query, params)
                return columns, _rows.plain_values(rows)  # int where DuckDB gives int
            except _sandbox.Refused as exc:
                raise StoreError(
                    f"cannot query run journal {self.location}: {self._scrub(str(exc))}"
                ) from None
            finally:
                conn.rollback()  # ends the read-only transaction (it changed nothing)
                conn.read_only = None

    def _read(self, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """The store's own reads (fixed SQL, values as parameters): no sandbox needed."""
        with self._connection("query") as conn:
            conn.read_only = True
            try:
                with conn.cursor() as cur:
                    cur.execute(query, params)
                    return cur.fetchall() if cur.description else []
            finally:
                conn.rollback()
                conn.read_only = None

    def list_spans(self, run_id: str) -> list[SpanRecord]:
        """The run's span rows, by start time (the run's trace tree, as the ``spans`` table holds it)."""
        rows = self._read(
            f"SELECT {_rows.SPAN_SELECT} FROM spans WHERE run_id = %s ORDER BY start_time, span_id",
            [_write.text(run_id)],
        )
        return [_rows.span_from_row(r) for r in rows]

    def _events(
        self, where: str, params: list[Any], after: int | None, before: int | None, limit: int
    ) -> list[RunEvent]:
        if after is not None:
            where += " AND seq > %s"
            params.append(after)
        if before is not None:
            where += " AND seq < %s"
            params.append(before)
        backwards = before is not None and after is None
        order = "DESC" if backwards else "ASC"
        rows = self._read(
            f"SELECT {_rows.EVENT_SELECT} FROM run_events WHERE {where} ORDER BY seq {order} LIMIT {limit:d}",
            params,
        )
        if backwards:
            rows.reverse()
        return [_codec.event_from_values(*r) for r in rows]

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
        """One page of a run's events in ascending ``seq`` (cursor rules: ``stores.base``)."""
        check_page_args(limit=limit, after_seq=after_seq, before_seq=before_seq, category=category)
        where = "run_id = %s"
        params: list[Any] = [_write.text(run_id)]
        if category is not None:
            where += " AND category = %s"
            params.append(category)
        if event_types is not None:
            where += " AND event_type = ANY(%s)"
            params.append(list(event_types))
        return self._events(where, params, after_seq, before_seq, limit)

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
        return self._events(
            "thread_id = %s AND category = 'message'", [_write.text(thread_id)], after_seq, before_seq, limit
        )

    def _runs(self, where: str, params: list[Any], tail: str = "") -> list[RunRecord]:
        rows = self._read(f"SELECT {_rows.RUN_SELECT} FROM runs {where} {tail}", params)
        return [_rows.run_from_row(r) for r in rows]

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run's summary, or ``None``."""
        runs = self._runs("WHERE run_id = %s", [_write.text(run_id)])
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
        where, params = _rows.run_filter(wanted)
        return self._runs(where, params, f"ORDER BY started_at DESC NULLS LAST, run_id LIMIT {limit:d}")

    def count_runs(self, **filters: Any) -> int:
        """How many runs ``list_runs`` would list with these filters (``RunFilter``'s) and no limit."""
        wanted = RunFilter(**filters)
        check_page_args(limit=1, status=wanted.status)
        where, params = _rows.run_filter(wanted)
        return int(self._read(f"SELECT count(*) FROM runs {where}", params)[0][0])

    def token_usage(self, *, run_id: str | None = None, thread_id: str | None = None) -> TokenUsage:
        """Token totals over the selected runs (all runs when neither is given) and the caller split."""
        where, params = _rows.run_filter(RunFilter(thread_id=thread_id), run_id)
        sums = ", ".join(f"coalesce(sum({f}), 0)" for f in _codec.RUN_TOKEN_FIELDS)
        totals = self._read(
            "SELECT count(*), sum(cost_usd), coalesce(sum(unpriced_call_count), 0), "
            f"{sums} FROM runs {where}",
            params,
        )[0]
        usage = TokenUsage(run_count=int(totals[0]), unpriced_call_count=int(totals[2]))
        usage.cost_usd = None if totals[1] is None else float(totals[1])
        for name, value in zip(_codec.RUN_TOKEN_FIELDS, totals[3:], strict=True):
            setattr(usage, name, int(value))
        split = self._read(
            "SELECT e.key, sum(CASE WHEN e.value ~ '^-?[0-9]{1,18}$' THEN e.value::BIGINT ELSE 0 END) "
            f"FROM runs, json_each_text(runs.usage_by_caller) AS e {where} GROUP BY e.key ORDER BY e.key",
            params,
        )
        usage.by_caller = {str(k): int(v or 0) for k, v in split}
        return usage
