"""The one thread that journals what the receivers accepted: spool, dedupe, assemble, write, commit.

Receivers (gRPC, HTTP) call :meth:`JournalWriter.submit` with the spans of a request (the journal's
own :class:`~.journal_spans.JournalSpan` objects, read by the journal as it reads SDK spans) and
wait for the writer's answer. The writer takes the queued requests in arrival order, in batches:

1. appends them to the :class:`~.spool.Spool` (so an acknowledged span survives a SIGKILL);
2. drops spans it has already accepted (a sender's or the Collector's re-send; span ids of the last
   ``2 x seen_capacity`` spans, seeded at start from the spool);
3. hands the rest to the journal's own :class:`~otel_runjournal.journal.assembler.Assembler` — the
   same mapping and run assembly as ``RunJournalExporter`` — which returns the runs they complete;
4. gathers those runs for the next ``store.write``, made once ``min_write_spans`` spans are gathered,
   the first of them has waited ``max_write_delay`` seconds, or no request came for
   ``idle_write_delay`` seconds (a busy writer's fixed cost per write — DuckDB's statements, the
   commit — is then shared by ~8,000 spans, not one request's, and an idle one writes at once), and
   after each write appends the ids of the written spans to the spool as committed;
5. answers every request of the batch: success once the batch is in the spool and the store is
   healthy (the answer goes out before the store write: the gathered runs are acknowledged ahead of
   the store, held in the spool like the spans of runs whose root has not arrived, whose segments
   are kept until the write), retryable when the store is failing.

Never accept and drop: while the store fails, the failed runs stay in memory (and the spool), the
writer retries them every ``retry_interval`` seconds, and new requests are refused as retryable
(``store``); past ``max_queued_spans`` waiting in the queue requests are refused (``memory``);
during shutdown, too (``shutdown``). Re-sent spans are recognised and acknowledged, not journaled
twice. Memory: at most ``max_queued_spans`` spans queued, ``max_pending_spans`` held for unfinished
runs (past it the oldest run is written early as ``running``, like the exporter), the runs gathered
for the next write (``min_write_spans`` plus one batch), the failed runs of the last write, and the
span-id sets.

Long because it is one thread's state (queue, spool segments, settling roots,
failed writes, seen ids) whose invariants hold only together; split, they would be harder to check.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from opentelemetry.sdk.trace import ReadableSpan

from .. import semconv as sc
from ..journal.assembler import Assembler
from ..journal.spanfacts import announced_span_count
from ..journal.spanread import trace_hex
from ..pricing import resolve_pricer
from ..records import RunWrite
from ..stores.base import RunStore
from . import spool as _spool
from .journal_spans import JournalSpan, JournalSpans, journal_spans_of
from .otlp_spans import Decoded, MalformedRequest, decode, parse_protobuf

_logger = logging.getLogger("otel_runjournal.serve")

DEFAULT_MAX_QUEUED_SPANS = 20_000
DEFAULT_SEEN_CAPACITY = 200_000
DEFAULT_SETTLE_S = 3.0
DEFAULT_RUN_IDLE_S = 600.0
DEFAULT_MIN_WRITE_SPANS = 8192
DEFAULT_MAX_WRITE_DELAY_S = 1.0
DEFAULT_IDLE_WRITE_DELAY_S = 0.05
_MISSING_SETTLE_FACTOR = 10  # a root missing announced spans settles for up to 10 x settle
_RECENT_COMMITTED = 65_536  # span ids carried into each new spool segment (restart dedupe window)
_LOG_INTERVAL_S = 10.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """The writer's answer to one request."""

    ok: bool
    rejected: int = 0  # spans of the request refused as malformed (partial success)
    message: str | None = None
    reason: str = ""  # when not ok: malformed | store | memory | shutdown | spool | timeout
    retry_after: int = 0  # seconds (HTTP Retry-After / gRPC RetryInfo)


@dataclass(slots=True)
class _Request:
    spans: list[JournalSpan]
    record: bytes  # the body as a spool data record (:func:`.spool.record`)
    rejected: int
    reason: str | None
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None
    on_done: Callable[[Outcome], None] | None = None


class _SeenIds:
    """Span ids accepted recently: two generations of ``capacity`` each (bounded, O(1))."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._new: set[int] = set()
        self._old: set[int] = set()

    def add(self, span_id: int) -> None:
        if len(self._new) >= self._capacity:
            self._old, self._new = self._new, set()
        self._new.add(span_id)

    def fresh(self, spans: Sequence[JournalSpan]) -> list[JournalSpan]:
        """The spans whose ids are new (then remembered: a second span of an id in ``spans`` is not
        new either), in order; one call per request, not one per span."""
        out: list[JournalSpan] = []
        new, old, room = self._new, self._old, self._capacity - len(self._new)
        for span in spans:
            span_id = span.span_id
            if span_id in new or span_id in old:
                continue
            if room <= 0:
                self._old, self._new = new, set()
                new, old, room = self._new, self._old, self._capacity
            new.add(span_id)
            room -= 1
            out.append(span)
        return out


def read_body(body: bytes) -> Decoded | Outcome:
    """The spans of an OTLP/protobuf body as plain values, or the ``malformed`` answer to give."""
    try:
        return decode(parse_protobuf(body))
    except MalformedRequest as exc:
        return Outcome(False, message=str(exc), reason="malformed")
    except Exception as exc:  # anything else a hostile body can trigger: the protocol's error
        return Outcome(False, message=f"unreadable request: {type(exc).__name__}", reason="malformed")


def build_spans(decoded: Decoded) -> JournalSpans | Outcome:
    """:func:`~.journal_spans.journal_spans_of`, or the ``malformed`` answer if a value is refused."""
    try:
        return journal_spans_of(decoded)
    except Exception as exc:  # a hostile body must never stop the journal
        return Outcome(False, message=f"unreadable request: {type(exc).__name__}", reason="malformed")


def _span_ids(hex_ids: list[str]) -> Sequence[int]:
    """Span ids from their hex (the rows'): one ``bytes.fromhex`` and one unpack for all of them, not
    an ``int(text, 16)`` each (this runs for every span written)."""
    joined = "".join(hex_ids)
    if len(joined) == 16 * len(hex_ids):  # always, for the mapping's rows (8-byte ids, 16 hex digits)
        try:
            return struct.unpack(f">{len(hex_ids)}Q", bytes.fromhex(joined))
        except ValueError:
            pass
    return [int(text, 16) for text in hex_ids]


def _pb_run_key(span: Any) -> str:
    for kv in span.attributes:
        if kv.key == sc.RJ_RUN_ID and kv.value.string_value:
            return str(kv.value.string_value)
    return bytes(span.trace_id).hex()


class JournalWriter:
    """Owns the store, the spool and the assembler; one writer thread (see the module docstring)."""

    def __init__(
        self,
        store: RunStore,
        spool: _spool.Spool,
        *,
        max_pending_spans: int,
        journal_content: bool = True,
        max_queued_spans: int = DEFAULT_MAX_QUEUED_SPANS,
        max_batch_spans: int = 8192,
        retry_interval: float = 1.0,
        retry_after: int = 5,
        settle: float = DEFAULT_SETTLE_S,
        run_idle_timeout: float = DEFAULT_RUN_IDLE_S,
        seen_capacity: int = DEFAULT_SEEN_CAPACITY,
        min_write_spans: int = DEFAULT_MIN_WRITE_SPANS,
        max_write_delay: float = DEFAULT_MAX_WRITE_DELAY_S,
        idle_write_delay: float = DEFAULT_IDLE_WRITE_DELAY_S,
        close_store: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_queued_spans < 1 or max_batch_spans < 1 or max_pending_spans < 1:
            raise ValueError("max_queued_spans, max_batch_spans and max_pending_spans must be >= 1")
        self._store = store
        self._spool = spool
        self._close_store = close_store
        self._pricer = resolve_pricer()  # OTEL_RUNJOURNAL_PRICES, else genai-prices' table
        self._assembler = Assembler(
            max_pending_spans=max_pending_spans,
            with_content=journal_content,
            run_idle_timeout=run_idle_timeout,
            late_idle_timeout=settle,  # spans after their run was written: appended once they stop
            stored_run=getattr(store, "get_run", None),  # ... also to a run written before a restart
            pricer=self._pricer,
        )
        self._max_queued = max_queued_spans
        self._max_batch = max_batch_spans
        self._retry_interval = retry_interval
        self._settle = settle
        self._roots: dict[str, list[JournalSpan]] = {}  # run key → its root span(s), settling
        self._last_seen: dict[str, float] = {}  # run key (with a settling root) → last span arrival
        self._retry_after = retry_after
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[_Request] = deque()
        self._queued_spans = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._seen = _SeenIds(seen_capacity)
        self._recent: deque[int] = deque(maxlen=_RECENT_COMMITTED)
        self._run_seg: dict[str, int] = {}  # run key → oldest spool segment holding its unwritten spans
        self._backlog: list[RunWrite] = []  # runs whose store write failed, retried in order
        self._min_write_spans = min_write_spans
        self._max_write_delay = max_write_delay
        self._idle_write_delay = idle_write_delay
        self._last_request_at = 0.0  # when the writer last took requests (idle since then)
        self._unwritten: list[RunWrite] = []  # finished runs, acknowledged, gathered for one write
        self._unwritten_spans = 0
        self._unwritten_since = 0.0
        self._next_retry = 0.0
        self._last_failure_log: float | None = None
        self._last_summary = clock()
        self._summary_base: dict[str, int] = {}  # the counters at the last summary line
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "requests",
                "received_spans",
                "duplicate_spans",
                "rejected_spans",
                "malformed_requests",
                "written_runs",
                "written_events",
                "written_spans",
                "failed_writes",
                "refused_store",
                "refused_memory",
                "refused_shutdown",
                "refused_spool",
                "refused_timeout",
                "replayed_spans",
                "store_writes",
            ),
            0,
        )

    # --- lifecycle ---------------------------------------------------------------------------------
    def warm(self) -> None:
        """Import the price table now (~0.15 s of CPU), not inside the first request's write."""
        self._pricer.warm()

    def start(self) -> None:
        """Replay the spool (runs held or unwritten when serve last stopped), then start the thread."""
        self._replay()
        self._thread = threading.Thread(target=self._run, name="otel-runjournal-serve-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Refuse new requests, journal the queued ones, retry a failed write, close spool and store."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                _logger.warning("serve: the writer did not finish within %.0f s", timeout)

    @property
    def failing(self) -> bool:
        """The last store write failed (new requests are refused until a retry succeeds)."""
        return bool(self._backlog)

    def health(self) -> dict[str, Any]:
        """Status and counters (the ``/health`` endpoint)."""
        with self._cond:
            status = "stopping" if self._stopping else ("store_failing" if self._backlog else "ok")
            return {
                "status": status,
                "queued_spans": self._queued_spans,
                "held_runs": self._assembler.pending_runs,
                "settling_runs": len(self._roots),
                "held_spans": self._assembler.pending_spans,
                "failed_runs_waiting": len(self._backlog),
                "unwritten_runs": len(self._unwritten),
                "spool_segments": len(self._spool.segments),
                **self.counters,
            }

    # --- receivers' side ---------------------------------------------------------------------------
    def note_malformed(self) -> None:
        """Count a request the receivers answered 400 / INVALID_ARGUMENT (a body that is not OTLP)."""
        with self._cond:
            self.counters["malformed_requests"] += 1

    def submit_body(self, body: bytes, *, timeout: float = 30.0) -> Outcome:
        """Read an OTLP/protobuf body, queue its spans and wait for the answer (a malformed body is
        answered at once with reason ``malformed``)."""
        decoded = read_body(body)
        converted = decoded if isinstance(decoded, Outcome) else build_spans(decoded)
        if isinstance(converted, Outcome):
            return converted
        return self.submit(converted.spans, body, converted.rejected, converted.reason, timeout=timeout)

    def submit_async(
        self,
        spans: list[JournalSpan],
        record: bytes,
        rejected: int,
        reason: str | None,
        on_done: Callable[[Outcome], None],
    ) -> None:
        """:meth:`submit` without waiting: ``on_done(outcome)`` is called once, from this thread
        (nothing to journal, refused) or from the writer thread. ``record``: the request's body as a
        spool data record (``spool.record(spool.DATA, body)``, made by the receiving process)."""
        if not spans:
            on_done(Outcome(True, rejected, reason))
            return
        refusal = self._enqueue(_Request(spans, record, rejected, reason, on_done=on_done))
        if refusal is not None:
            on_done(refusal)

    def submit(
        self,
        spans: list[JournalSpan],
        raw: bytes,
        rejected: int = 0,
        reason: str | None = None,
        *,
        timeout: float = 30.0,
    ) -> Outcome:
        """Queue a request's spans and wait for the writer's answer (any receiver thread)."""
        if not spans:
            return Outcome(True, rejected, reason)
        request = _Request(spans, _spool.record(_spool.DATA, raw), rejected, reason)
        refusal = self._enqueue(request)
        if refusal is not None:
            return refusal
        if not request.done.wait(timeout):
            with self._cond:
                self.counters["refused_timeout"] += 1
            # still queued: it will be journaled; a re-send is recognised as a duplicate
            return Outcome(False, reason="timeout", message="the journal is busy", retry_after=1)
        assert request.outcome is not None
        return request.outcome

    def _enqueue(self, request: _Request) -> Outcome | None:
        """Queue ``request`` for the writer thread, or the refusal to answer it with."""
        count = len(request.spans)
        with self._cond:
            refusal = self._refusal(count)
            if refusal is not None:
                self.counters[f"refused_{refusal.reason}"] += 1
                return refusal
            self._queue.append(request)
            self._queued_spans += count
            self.counters["requests"] += 1
            self.counters["received_spans"] += count
            self._cond.notify_all()
        return None

    def _refusal(self, count: int) -> Outcome | None:
        if self._stopping:
            return Outcome(False, reason="shutdown", message="serve is shutting down", retry_after=5)
        if self._backlog:
            return Outcome(
                False,
                reason="store",
                message="the journal store is failing; retry later",
                retry_after=self._retry_after,
            )
        if self._queued_spans and self._queued_spans + count > self._max_queued:
            return Outcome(
                False, reason="memory", message="serve is over its memory bound; retry later", retry_after=1
            )
        return None

    # --- the writer thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue and not self._stopping:
                    self._cond.wait(timeout=self._wait_time())
                batch: list[_Request] = []
                count = 0
                while self._queue and (not batch or count + len(self._queue[0].spans) <= self._max_batch):
                    request = self._queue.popleft()
                    batch.append(request)
                    count += len(request.spans)
                self._queued_spans -= count
                done = self._stopping and not self._queue
            try:
                if batch:
                    self._process(batch)
                else:
                    self._idle()
            except Exception as exc:  # a bug: answer retryable, keep serving
                _logger.exception("serve: internal error in the writer: %s", exc)
                for request in batch:
                    if request.outcome is None:
                        self._answer(
                            request,
                            Outcome(
                                False, reason="store", message="internal error", retry_after=self._retry_after
                            ),
                        )
            self._maybe_log_summary()
            if done:
                break
        self._finish()

    def _answer(self, request: _Request, outcome: Outcome) -> None:
        request.outcome = outcome
        request.done.set()
        if request.on_done is not None:
            try:
                request.on_done(outcome)
            except Exception as exc:  # the receiver went away; the data is journaled all the same
                _logger.debug("serve: answering a request failed: %r", exc)

    def _process(self, batch: list[_Request]) -> None:
        self._last_request_at = self._clock()
        try:
            self._spool.append_records([r.record for r in batch])
        except OSError as exc:
            _logger.warning("serve: cannot append to the spool (%s); refusing %d requests", exc, len(batch))
            self.counters["refused_spool"] += len(batch)
            for request in batch:
                self._answer(
                    request,
                    Outcome(
                        False, reason="spool", message="spool not writable", retry_after=self._retry_after
                    ),
                )
            return
        segment = self._spool.current
        fresh: list[JournalSpan] = []
        for request in batch:
            self.counters["rejected_spans"] += request.rejected
            fresh.extend(self._accept(request.spans, segment))
        fresh.extend(self._settled_roots())
        # The batch is in the spool: with the store healthy it is acknowledged now, while its runs are
        # written (a write that fails keeps them, in memory and in the spool, and refuses what comes
        # next). So the store's commit latency does not hold the senders; at most one batch
        # (max_batch_spans) is acknowledged ahead of the store.
        early = not self._backlog
        if early:
            for request in batch:
                self._answer(request, Outcome(True, request.rejected, request.reason))
            ok = self._gather(self._assemble(fresh))
        else:
            ok = self._write(self._assemble(fresh))
        for request in batch:
            if early:
                continue
            if ok:
                self._answer(request, Outcome(True, request.rejected, request.reason))
            else:  # held in the spool and memory all the same: a re-send is a recognised duplicate
                self._answer(
                    request,
                    Outcome(
                        False,
                        reason="store",
                        message="the journal store is failing",
                        retry_after=self._retry_after,
                    ),
                )
        self._housekeeping()

    def _wait_time(self) -> float:
        """How long the idle writer waits for a request: until the gathered runs are due, at most
        ``retry_interval``."""
        if not self._unwritten:
            return self._retry_interval
        due = min(
            self._unwritten_since + self._max_write_delay, self._last_request_at + self._idle_write_delay
        )
        return min(self._retry_interval, max(due - self._clock(), 0.001))

    def _gather(self, writes: list[RunWrite]) -> bool:
        """Add finished runs to the next store write, and write once ``min_write_spans`` spans or
        ``max_write_delay`` seconds are gathered, or the writer has had no request for
        ``idle_write_delay`` seconds (False: that write failed).

        The runs' requests are acknowledged already (their spans are in the spool, which keeps the
        segments until the write's commit): gathering only changes when they reach the store. A
        store write costs a fixed part (DuckDB's statements, the commit) besides its rows: per span
        39 µs of CPU in writes of 512 spans (one request, what a writer that keeps up wrote), 17 µs
        at 8,192 (``bench/README.md``, sixth round of serve against the in-process exporter)."""
        if writes:
            if not self._unwritten:
                self._unwritten_since = self._clock()
            self._unwritten.extend(writes)
            self._unwritten_spans += sum(len(w.spans) for w in writes)
        now = self._clock()
        if not self._unwritten or (
            self._unwritten_spans < self._min_write_spans
            and now - self._unwritten_since < self._max_write_delay
            and now - self._last_request_at < self._idle_write_delay
        ):
            return True
        return self._write([])

    def _assemble(self, spans: list[JournalSpan]) -> list[RunWrite]:
        """The assembler's writes for ``spans``: :class:`JournalSpan` offers what the journal reads of a
        ``ReadableSpan`` (duck-typed; see :mod:`.journal_spans`)."""
        return self._assembler.add(cast("list[ReadableSpan]", spans))

    def _accept(self, spans: Sequence[JournalSpan], segment: int) -> list[JournalSpan]:
        """The spans not seen before, minus run roots (they settle first, see :meth:`_settled_roots`);
        remembers them and the spool segment their runs are held in."""
        out: list[JournalSpan] = []
        run_seg = self._run_seg
        roots, last_seen = self._roots, self._last_seen
        now = self._clock()
        run_id_key, is_root_key = sc.RJ_RUN_ID, sc.RJ_IS_ROOT
        fresh = self._seen.fresh(spans)
        for span in fresh:  # every span: names bound once, slots read (the run key as the assembler's)
            attrs = span._attributes
            key = attrs.get(run_id_key)
            if not isinstance(key, str) or not key:
                key = trace_hex(span.trace_id)
            if key not in run_seg:
                run_seg[key] = segment
            parent = span.parent
            if attrs.get(is_root_key) or parent is None or parent.is_remote:
                roots.setdefault(key, []).append(span)
                last_seen[key] = now
                continue
            if key in last_seen:
                last_seen[key] = now
            out.append(span)
        self.counters["duplicate_spans"] += len(spans) - len(fresh)
        return out

    def _settled_roots(self, *, everything: bool = False) -> list[JournalSpan]:
        """Roots of runs no span of which arrived for ``settle`` seconds.

        A run is complete when its root span arrives, in the sending process. Through a Collector
        (several senders in parallel, retries after an outage) a root can overtake its children, so
        the root is held until its run has been quiet for ``settle`` seconds — and, while fewer spans
        arrived than the root announces (``runjournal.span_count``), up to ``_MISSING_SETTLE_FACTOR``
        times that: a batch in a Collector's retry backoff can be several seconds behind the ones
        sent past it. Children later than that are appended to the run as a late part.
        """
        if not self._roots:
            return []
        now = self._clock()
        settle, patient = self._settle, self._settle * _MISSING_SETTLE_FACTOR
        due = [
            k
            for k, t in self._last_seen.items()
            if everything or (now - t >= settle and (now - t >= patient or self._all_arrived(k)))
        ]
        out: list[JournalSpan] = []
        for key in due:
            out.extend(self._roots.pop(key))
            del self._last_seen[key]
        return out

    def _all_arrived(self, key: str) -> bool:
        """Whether every span the run's root announces has arrived (``True`` when none is announced)."""
        roots = self._roots[key]
        counts = [n for n in (announced_span_count(r._attributes) for r in roots) if n is not None]
        return not counts or self._assembler.arrived_spans(key) + len(roots) >= max(counts)

    def _idle(self) -> None:
        if self._backlog and self._clock() >= self._next_retry:
            self._write([])
        elif not self._backlog:
            # + foreign groups past their idle timeout; the gathered runs once due
            self._gather(self._assemble(self._settled_roots()))
        self._housekeeping()

    def _write(self, writes: list[RunWrite]) -> bool:
        """One store write: the failed runs first, then the gathered ones, then ``writes``."""
        batch = self._backlog + self._unwritten + writes
        self._unwritten, self._unwritten_spans = [], 0
        if not batch:
            return True
        self.counters["store_writes"] += 1
        try:
            self._store.write(batch)
        except Exception as exc:  # any store failure: keep everything, refuse new data, retry
            self._backlog = batch
            self.counters["failed_writes"] += 1
            self._next_retry = self._clock() + self._retry_interval
            self._log_failure(exc, batch)
            return False
        if self._backlog:
            _logger.warning("serve: the store accepts writes again; %d held runs written", len(self._backlog))
        self._backlog = []
        ids = _span_ids([span.span_id for write in batch for span in write.spans])
        self.counters["written_runs"] += len(batch)
        self.counters["written_events"] += sum(len(w.events) for w in batch)
        self.counters["written_spans"] += len(ids)
        self._recent.extend(ids)
        try:
            self._spool.append(_spool.COMMIT, [_spool.pack_ids(ids)])
        except OSError as exc:  # the runs are in the store; a replay would re-write them
            _logger.warning("serve: cannot record a commit in the spool: %s", exc)
        return True

    def _housekeeping(self) -> None:
        """Forget written runs, delete spool segments nothing held needs, rotate / compact the spool
        (not while runs are gathered for a write or failed: their spans are in the spool only)."""
        if self._backlog or self._unwritten:
            return
        held = self._assembler.pending_run_ids()
        roots = self._roots
        run_seg = self._run_seg
        for key in [k for k in run_seg if k not in held and k not in roots]:
            del run_seg[key]
        spool = self._spool
        floor = min(run_seg.values(), default=spool.current + 1)
        spool.release(floor)
        if spool.full:
            spool.start_segment()
            if self._recent:
                spool.append(_spool.COMMIT, [_spool.pack_ids(self._recent)])
            spool.release(min(run_seg.values(), default=spool.current))
        if spool.too_many:
            held_keys = set(held) | set(roots)
            copied = spool.compact(lambda s: _pb_run_key(s) in held_keys, self._recent)
            for key in run_seg:
                run_seg[key] = spool.current
            _logger.info(
                "serve: spool compacted (%d held spans of %d runs copied forward)", copied, len(held)
            )

    def _replay(self) -> None:
        data, committed = self._spool.recover()
        if not data:
            self._spool.start_segment()
            return
        for span_id in committed:
            self._seen.add(span_id)
        writes: list[RunWrite] = []
        replayed = 0
        for segment, request in data:
            spans = journal_spans_of(decode(request)).spans
            fresh = self._accept([s for s in spans if s.span_id not in committed], segment)
            replayed += len(fresh)
            writes.extend(self._assemble(fresh))
        self.counters["replayed_spans"] = replayed
        self._write(writes)
        held = set(self._assembler.pending_run_ids()) | set(self._roots)
        if self._backlog:  # the store fails at start: keep every segment, write into a new one
            self._spool.start_segment()
        else:
            self._spool.compact(lambda s: _pb_run_key(s) in held, self._recent)
            for key in self._run_seg:
                self._run_seg[key] = self._spool.current
        _logger.info(
            "serve: replayed %d spans from the spool %s: %d runs written, %d runs held for their root",
            replayed,
            self._spool.directory,
            len(writes),
            len(held),
        )

    def _finish(self) -> None:
        roots = self._settled_roots(everything=True)  # graceful stop: every run whose root arrived
        if not self._backlog:  # ... and the late parts of runs already written
            writes = self._assemble(roots)
            self._write(writes + self._assembler.drain_late())
        for _ in range(3):
            if not self._backlog or self._write([]):
                break
            time.sleep(self._retry_interval)
        self._housekeeping()  # the segments of what the last write committed are not needed again
        held_runs, held_spans = self._assembler.pending_runs, self._assembler.pending_spans
        if self._backlog:
            _logger.error(
                "serve: the store still fails; %d runs stay in the spool %s, written at the next start",
                len(self._backlog),
                self._spool.directory,
            )
        if held_runs:
            _logger.info(
                "serve: %d unfinished runs (%d spans) stay in the spool %s; they are journaled when serve "
                "starts again and their remaining spans arrive",
                held_runs,
                held_spans,
                self._spool.directory,
            )
        self._spool.close()
        if self._close_store:
            try:
                self._store.close()
            except Exception as exc:
                _logger.warning("serve: closing the store failed: %s", exc)
        self._log_summary()

    # --- logs --------------------------------------------------------------------------------------
    def _log_failure(self, exc: Exception, batch: list[RunWrite]) -> None:
        now = self._clock()
        if self._last_failure_log is not None and now - self._last_failure_log < 60.0:
            _logger.debug("serve: store write failed again: %r", exc)
            return
        self._last_failure_log = now
        _logger.warning(
            "serve: writing %d runs to the store failed (%s: %s); they are kept and retried every %.0f s, "
            "new requests are refused as retryable meanwhile",
            len(batch),
            type(exc).__name__,
            exc,
            self._retry_interval,
        )

    def _maybe_log_summary(self) -> None:
        now = self._clock()
        if now - self._last_summary >= _LOG_INTERVAL_S:
            self._log_summary(now - self._last_summary)
            self._last_summary = now

    def _log_summary(self, interval: float | None = None) -> None:
        """What happened since the last line (``interval`` seconds; nothing logged when nothing did),
        or, at stop (``None``), since start."""
        with self._cond:
            now = dict(self.counters)
        base = self._summary_base if interval is not None else {}
        c = {k: v - base.get(k, 0) for k, v in now.items()}
        self._summary_base = now
        if interval is not None and not any(c.values()):
            return
        refused = {k[8:]: v for k, v in c.items() if k.startswith("refused_") and v}
        _logger.info(
            "serve: %s: received %d spans in %d requests (%d malformed requests refused); wrote %d runs "
            "(%d events, %d spans); %d duplicates ignored, %d malformed spans rejected; refused %s; "
            "holding %d runs",
            "since start" if interval is None else f"last {interval:.0f} s",
            c["received_spans"],
            c["requests"],
            c["malformed_requests"],
            c["written_runs"],
            c["written_events"],
            c["written_spans"],
            c["duplicate_spans"],
            c["rejected_spans"],
            refused or "none",
            self._assembler.pending_runs,
        )
