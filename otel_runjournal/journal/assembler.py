"""Holds mapped spans per run until the run is complete, then hands out one :class:`RunWrite` per run.

When is a run complete?

- **Runs of our handler** (spans carry ``runjournal.run_id``): when the span marked
  ``runjournal.is_root`` ends (the handler ends it last).
- **Foreign GenAI spans** (other instrumentations; grouped by trace, ``run_id`` = trace id hex):
  when the trace's local root ends (a span with no parent or a remote parent, GenAI or not — e.g.
  the application's HTTP server span), or when no span of the group arrived for
  ``foreign_idle_timeout`` seconds, or on flush.
- **Foreign GenAI spans in a trace our handler traced** (a provider SDK's ``chat`` span below our
  ``chat`` span) report model calls our spans own: they join the run of ours last seen in that trace
  as rows marked ``runjournal.duplicate`` that count nothing (:func:`.mapping.as_duplicate`), and
  never make a run of their own — also when they arrive before any span of ours of that trace (the
  group held for them is adopted when the first one does).
- With ``run_idle_timeout`` (``serve`` sets it; the exporter does not), a handler run with no new span
  for that long is written as it is (``running``, or appended to the run already written): the
  sender died mid-run, or a span arrived after its run was written. ``late_idle_timeout`` (``serve``:
  its settle time) is the shorter wait for spans of a run already finished, in its trace: nothing
  more is coming for it, so its late part is appended once they stop arriving, not minutes later.

Memory is bounded by ``max_pending_spans``: past it the run seen first is written early as a partial
run (status ``running``) and its later spans are written when they arrive, appended after what was
already written (so a run written in parts is time-ordered within each part, and its ``run_start``
arrives with its root, in the last part). Spans of a run already complete (a ``run_id`` the
application reuses, a span ending after its root) are held like any others and written with the
next root of that run, the idle timeout (foreign groups), the bound or a flush; the ``runs`` row
then carries the totals of every part. Totals of runs already written are remembered in a bounded
LRU (``max_written_runs``) so that each ``runs`` upsert carries the run's cumulative totals.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, KeysView
from dataclasses import dataclass, field, replace

from opentelemetry.sdk.trace import ReadableSpan

from .. import semconv as sc
from ..guard import report_internal_error
from ..pricing import Pricer
from ..records import RunRecord, RunWrite
from . import mapping as m
from . import runwrite as _runwrite
from . import spanread as sr
from .emitter import MappedSpan
from .spanfacts import RootInfo, is_genai, is_local_root

_logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    run_id: str
    thread_id: str
    foreign: bool
    last_seen: float
    spans: list[MappedSpan] = field(default_factory=list)
    settled: bool = True  # False while it holds only duplicates (they do not know the run's thread)
    late: bool = False  # a late part: its run was already written finished, in this trace
    duplicates: int = 0  # of ``spans``: other instrumentations' spans of calls ours own

    @property
    def own(self) -> int:
        """Spans of the run's handler held (what ``runjournal.span_count`` counts)."""
        return len(self.spans) - self.duplicates


class Assembler:
    """Buffers mapped spans per run; not thread-safe (the exporter holds its lock around it)."""

    def __init__(
        self,
        *,
        max_pending_spans: int,
        with_content: bool = True,
        foreign_idle_timeout: float = 60.0,
        run_idle_timeout: float | None = None,
        late_idle_timeout: float | None = None,
        max_written_runs: int = 10_000,
        stored_run: Callable[[str], RunRecord | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        pricer: Pricer | None = None,
    ) -> None:
        self._pricer = pricer  # prices model calls as they are mapped (None: calls stay unpriced)
        self._max_pending = max_pending_spans
        self._with_content = with_content
        self._idle_timeout = foreign_idle_timeout
        self._run_idle_timeout = run_idle_timeout  # handler runs too (serve: senders that died mid-run)
        self._late_idle_timeout = late_idle_timeout  # late parts of finished runs (serve: its settle)
        self._max_written = max_written_runs
        # the store's summary of a run this assembler does not remember (written before a restart, or
        # evicted from the LRU): a part without its root then adds to it instead of replacing it
        self._stored_run = stored_run
        self._clock = clock
        self._pending: OrderedDict[str, _Pending] = OrderedDict()  # oldest first
        self._written: OrderedDict[str, RunRecord] = OrderedDict()  # LRU of runs already handed out
        self._spans_written: dict[str, int] = {}  # run id (in ``_written``) → its spans handed out
        self._announced: dict[str, int] = {}  # run id (in ``_written``) → its root's span count
        # LRU of traces with our spans → the run of ours last seen in each
        self._handler_traces: OrderedDict[str, str] = OrderedDict()
        self._last_handler_trace: str | None = None  # the newest entry of that LRU, and its run
        self._last_handler_run: str | None = None
        self.pending_spans = 0
        self.ignored_spans = 0  # foreign GenAI spans in traces our handler traced (kept as duplicates)
        self.unmapped_spans = 0  # spans the mapping failed on (internal errors)

    @property
    def pending_runs(self) -> int:
        return len(self._pending)

    def pending_run_ids(self) -> KeysView[str]:
        """Ids of the runs held (read-only view; ``serve`` keeps their spool segments)."""
        return self._pending.keys()

    # --- input -------------------------------------------------------------------------------------
    def add(self, spans: Iterable[ReadableSpan]) -> list[RunWrite]:
        """Take finished spans; return the writes of every run they complete (and early writes)."""
        out: list[RunWrite] = []
        now = self._clock()
        for span in spans:
            try:
                self._add_one(span, now, out)
            except Exception as exc:  # a bug in the mapping must not lose the whole batch
                self.unmapped_spans += 1
                report_internal_error("mapping a span to run events", exc)
        out.extend(self._expire_idle(now))
        out.extend(self._enforce_bound())
        return out

    def drain(self, *, final: bool) -> list[RunWrite]:
        """Write everything held: unfinished runs become ``abandoned`` (``final``) or stay ``running``."""
        unfinished = "abandoned" if final else "running"
        out = [self._finish(run_id, unfinished=unfinished) for run_id in list(self._pending)]
        if final:
            for record in list(self._written.values()):
                if record.status == "running":
                    out.append(self._remember(RunWrite(run=replace(record, status="abandoned"))))
        return out

    def _add_one(self, span: ReadableSpan, now: float, out: list[RunWrite]) -> None:
        attrs = sr.attributes_of(span)
        # the context read once: the trace id here, the span id and the content key in the mapping
        ctx = span.get_span_context()
        trace_id = sr.trace_hex(ctx.trace_id if ctx is not None else 0)
        run_id = attrs.get(sc.RJ_RUN_ID)
        if isinstance(run_id, str) and run_id:
            if trace_id != self._last_handler_trace or run_id != self._last_handler_run:
                self._handler_trace(trace_id, run_id, now)  # a run's spans come together: rarely here
            thread = attrs.get(sc.RJ_THREAD_ID)
            thread_id = thread if isinstance(thread, str) and thread else run_id
            mapped = m.map_one(
                span, ctx, attrs, trace_id, run_id, thread_id, self._with_content, False, self._pricer
            )
            pending = self._pending.get(run_id)
            if pending is not None:  # the common case, inline: another span of a run being held
                if not pending.settled:
                    pending.thread_id, pending.settled = thread_id, True
                pending.spans.append(mapped)
                pending.last_seen = now
                self.pending_spans += 1
            else:
                self._hold(run_id, thread_id, mapped, foreign=False, now=now)
            if mapped.is_root:
                out.append(self._finish(run_id, root=mapped.root))
        elif is_genai(span, attrs):
            owner = self._handler_traces.get(trace_id)
            if owner is not None:
                self.ignored_spans += 1
                mapped = m.map_duplicate(
                    span, owner, with_content=self._with_content, trace_id=trace_id, attrs=attrs
                )
                self._hold(owner, owner, mapped, foreign=False, now=now, settled=False)
            else:
                conversation = attrs.get(sc.GEN_AI_CONVERSATION_ID)
                thread_id = conversation if isinstance(conversation, str) and conversation else trace_id
                mapped = m.map_one(
                    span, ctx, attrs, trace_id, trace_id, thread_id, self._with_content, True, self._pricer
                )
                self._hold(trace_id, thread_id, mapped, foreign=True, now=now)
        if trace_id in self._pending and self._pending[trace_id].foreign and is_local_root(span):
            out.append(self._finish(trace_id))

    def _handler_trace(self, trace_id: str, run_id: str, now: float) -> None:
        """Note that a run of ours is in this trace; foreign GenAI spans held for the trace join it."""
        self._lru_add(self._handler_traces, trace_id, run_id)
        self._last_handler_trace, self._last_handler_run = trace_id, run_id
        group = self._pending.get(trace_id)
        if group is None or not group.foreign:
            return
        del self._pending[trace_id]
        self.pending_spans -= len(group.spans)
        self.ignored_spans += len(group.spans)
        for mapped in group.spans:
            self._hold(run_id, run_id, m.as_duplicate(mapped, run_id), foreign=False, now=now, settled=False)

    def _hold(
        self,
        run_id: str,
        thread_id: str,
        mapped: MappedSpan,
        *,
        foreign: bool,
        now: float,
        settled: bool = True,
    ) -> None:
        pending = self._pending.get(run_id)
        if pending is None:
            prior = self._written.get(run_id)
            pending = _Pending(run_id, prior.thread_id if prior else thread_id, foreign, now)
            pending.settled = settled or prior is not None
            # a late part: the run was written finished and this span is of the same invocation (an
            # application reusing a run id starts a new trace; its spans wait for their own root)
            pending.late = (
                prior is not None and prior.status != "running" and prior.trace_id == mapped.record.trace_id
            )
            self._pending[run_id] = pending
        elif not pending.settled and settled:
            pending.thread_id, pending.settled = thread_id, True
        elif foreign and pending.thread_id == run_id != thread_id and run_id not in self._written:
            pending.thread_id = thread_id  # a later span of the group names its conversation
        pending.spans.append(mapped)
        pending.last_seen = now
        pending.duplicates += mapped.duplicate
        self.pending_spans += 1

    def arrived_spans(self, run_id: str) -> int:
        """Spans of a run's handler that arrived: handed out in earlier parts plus held (not the
        duplicates of other instrumentations), to compare with its root's ``runjournal.span_count``."""
        pending = self._pending.get(run_id)
        held = pending.own if pending is not None else 0
        return self._spans_written.get(run_id, 0) + held

    def _finished(self, run_id: str) -> bool:
        prior = self._written.get(run_id)
        return prior is not None and prior.status != "running"

    # --- output ------------------------------------------------------------------------------------
    def _finish(
        self,
        run_id: str,
        root: RootInfo | None = None,
        *,
        complete: bool = True,
        unfinished: str = "running",
    ) -> RunWrite:
        """Hand out what is held for a run. ``complete``: a foreign group gets its root (and run_end)."""
        pending = self._pending.pop(run_id, None)
        spans = pending.spans if pending else []
        self.pending_spans -= len(spans)
        prior = self._written.get(run_id)
        if prior is None and pending is not None and not pending.foreign and self._elsewhere(pending, root):
            prior = self._lookup(run_id)  # rare: a part of a run written in parts, one of them elsewhere
        thread_id = prior.thread_id if prior else (pending.thread_id if pending else run_id)
        status = prior.status if prior is not None and prior.status != "running" else unfinished
        if pending is not None and pending.foreign:
            if pending.run_id in self._handler_traces:  # our handler traced it after all (kept above)
                spans = []
            elif complete and not self._finished(run_id):
                root = self._foreign_root(spans)
        before = self._spans_written.get(run_id, 0) if prior is not None else 0
        if root is not None and root.span_count is not None:
            self._announced[run_id] = root.span_count
        write = _runwrite.build_write(
            run_id,
            thread_id,
            spans,
            root=root,
            status=status,
            prior=prior,
            spans_before=before,
            announced=self._announced.get(run_id) if prior is not None else None,
        )
        # the run's own spans: the held ones less the duplicates, counted as they came
        self._spans_written[run_id] = before + (pending.own if pending is not None and spans else 0)
        for event in write.events:
            if event.thread_id != thread_id:  # the run's thread was settled by an earlier part
                event.thread_id = thread_id
        return self._remember(write)

    @staticmethod
    def _elsewhere(pending: _Pending, root: RootInfo | None) -> bool:
        """Whether an earlier part of a run this assembler has not written may be in the store: a part
        without its root (late, idle, over the bound), or a root whose run lacks spans it announces."""
        if root is None:
            return True
        announced = root.span_count
        return announced is not None and pending.own < announced

    def _lookup(self, run_id: str) -> RunRecord | None:
        if self._stored_run is None:
            return None
        try:
            return self._stored_run(run_id)
        except Exception as exc:  # the store is failing: write the part as this assembler knows it
            _logger.debug("journal: reading run %s from the store failed: %r", run_id, exc)
            return None

    def _foreign_root(self, spans: list[MappedSpan]) -> RootInfo | None:
        """The root of a foreign group: its top-level span(s) (parent not in the group)."""
        if not spans:
            return None
        ids = {s.record.span_id for s in spans}
        tops = [s.root for s in spans if s.record.parent_span_id not in ids and s.root is not None]
        start_ns = min(s.start_ns for s in spans)
        end_ns = max(s.end_ns for s in spans)
        return _runwrite.merge_roots(tops, spans[0].record.trace_id, start_ns, end_ns) if tops else None

    def _remember(self, write: RunWrite) -> RunWrite:
        self._written[write.run.run_id] = write.run
        self._written.move_to_end(write.run.run_id)
        while len(self._written) > self._max_written:
            old, _ = self._written.popitem(last=False)
            self._spans_written.pop(old, None)
            self._announced.pop(old, None)
        return write

    def drain_late(self) -> list[RunWrite]:
        """Write the late parts of finished runs now (``serve``'s graceful stop: nothing else is coming
        for them, unlike runs still waiting for their root)."""
        return [self._finish(run_id) for run_id in [k for k, p in self._pending.items() if p.late]]

    def _expire_idle(self, now: float) -> list[RunWrite]:
        run_idle = self._run_idle_timeout or float("inf")
        late_idle = run_idle if self._late_idle_timeout is None else self._late_idle_timeout
        idle = [
            run_id
            for run_id, p in self._pending.items()
            if now - p.last_seen >= (self._idle_timeout if p.foreign else late_idle if p.late else run_idle)
        ]
        return [self._finish(run_id) for run_id in idle]

    def _enforce_bound(self) -> list[RunWrite]:
        out: list[RunWrite] = []
        while self.pending_spans > self._max_pending and self._pending:
            out.append(self._finish(next(iter(self._pending)), complete=False))
        return out

    def _lru_add(self, lru: OrderedDict[str, str], key: str, value: str) -> None:
        lru[key] = value
        lru.move_to_end(key)
        while len(lru) > self._max_written:
            lru.popitem(last=False)
