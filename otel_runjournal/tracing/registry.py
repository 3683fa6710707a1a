"""The bounded run-id → span map the handler parents spans from.

One lock, short critical sections, O(1) per callback. Reads (:meth:`RunRegistry.get`) take no lock: a
``dict.get`` is atomic. Bounded three ways: a root's descendants still open when it ends are handed
back to be ended with it; roots idle longer than the time-to-live are handed back (checked at most
every ``sweep_interval`` seconds, from root starts); :meth:`RunRegistry.drain` hands back the rest.
Runs dropped by verbosity are kept here as tiny records (nearest kept ancestor, caller) and freed
the same way.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID

from .current import Activation
from .usage import Usage


class RootState:
    """Per-run (per root) bookkeeping: identity, open descendants and the token roll-up."""

    __slots__ = (
        "ai_messages",
        "by_caller",
        "cache_read_tokens",
        "human_text",
        "input_tokens",
        "interrupt_value",
        "interrupted",
        "last_ai",
        "last_seen",
        "leftovers",
        "llm_calls",
        "model_spans",
        "name",
        "open",
        "output_tokens",
        "reasoning_tokens",
        "run_key",
        "span",
        "span_count",
        "summaries",
        "thread_from_config",
        "thread_id",
        "total_tokens",
    )

    def __init__(self, run_key: str, thread_id: str) -> None:
        self.run_key = run_key
        self.thread_id = thread_id
        self.open: dict[UUID, None] = {}  # open descendant run ids, in start order
        self.leftovers: list[RunState] = []
        self.last_seen = time.monotonic()
        self.input_tokens = self.output_tokens = self.total_tokens = 0
        self.cache_read_tokens = self.reasoning_tokens = self.llm_calls = 0
        self.by_caller: dict[str, int] = {}
        self.model_spans: list[Any] = []  # the run's model-call spans (on_run_end prices them)
        self.span_count = 0  # spans made for the run (the root's runjournal.span_count)
        self.interrupted = False
        self.interrupt_value: Any = None
        self.span: Any = None  # the root's span
        self.name = ""  # the run's name, as the journal's runs row gives it
        self.thread_from_config = False  # no thread id in metadata: the first child looks in the config
        # what on_run_end reports of the message rows (kept only when the handler has one)
        self.human_text: str | None = None
        self.ai_messages = self.summaries = 0
        self.last_ai: str | None = None


class RunState:
    """One open run: its span (``None`` when dropped by verbosity) and what its children inherit."""

    __slots__ = (
        "activation",
        "agent",
        "caller",
        "chunk_usage",
        "content",
        "ctx",
        "first_chunk_ns",
        "graph_node",
        "is_agent",
        "is_model",
        "is_root",
        "kept",
        "metric_attrs",
        "node_messages",
        "root",
        "span",
        "start_ns",
        "stream",
        "subagents",
        "tagged",
        "tool_name",
    )

    def __init__(
        self,
        span: Any,
        root: RootState,
        kept: RunState | None,
        caller: str,
        *,
        is_root: bool = False,
        graph_node: bool = False,
        subagents: tuple[str, ...] = (),
    ) -> None:
        self.span = span
        self.root = root
        self.kept: RunState = kept if kept is not None else self  # nearest run with a span
        self.caller = caller
        self.is_root = is_root
        self.is_agent = False
        self.graph_node = graph_node
        self.subagents = subagents
        self.ctx: Any = None  # OTel context holding ``span``, made on first child
        self.activation: Activation | None = None  # how ``span`` was made current (see .current)
        self.content: dict[str, Any] | None = None  # content for the journal, handed over at the end
        self.start_ns = 0
        self.first_chunk_ns = 0
        self.stream = False
        self.chunk_usage: Usage | None = None
        self.metric_attrs: dict[str, Any] | None = None
        self.agent: str | None = None  # the LangChain 1.x agent this run belongs to (``lc_agent_name``)
        self.tagged = False  # ``caller`` came from a tag (here or on an ancestor)
        self.tool_name: str | None = None  # set on tool runs (names an unnamed agent called in its body)
        self.is_model = False
        self.node_messages = -1  # a middleware node's input message count (for a summary's replaced_count)


class RunRegistry:
    """Thread-safe map of open runs, bounded by root lifetime, a time-to-live and :meth:`drain`."""

    def __init__(self, ttl_s: float, sweep_interval_s: float | None = None) -> None:
        self._lock = threading.Lock()
        self._runs: dict[UUID, RunState] = {}
        self._roots: dict[UUID, RootState] = {}
        self._ttl = ttl_s
        self._sweep_interval = sweep_interval_s if sweep_interval_s is not None else min(ttl_s, 60.0)
        self._next_sweep = time.monotonic() + self._sweep_interval

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, run_id: Any) -> RunState | None:
        """The open run ``run_id`` (``None`` if unknown); lock-free."""
        return self._runs.get(run_id)

    def add(self, run_id: UUID, state: RunState) -> bool:
        """Register a started run; ``False`` (and nothing changes) for a duplicate start."""
        with self._lock:
            if run_id in self._runs:
                return False
            self._runs[run_id] = state
            root = state.root
            if state.span is not None:
                root.span_count += 1
            if state.is_root:
                self._roots[run_id] = root
            else:
                root.open[run_id] = None
                root.last_seen = time.monotonic()
        return True

    def finish(self, run_id: Any) -> RunState | None:
        """Forget an ending run. For a root, its descendants still open are moved to
        ``root.leftovers`` (latest first) for the caller to end before the root."""
        with self._lock:
            state = self._runs.pop(run_id, None)
            if state is None:
                return None
            root = state.root
            if state.is_root:
                self._roots.pop(run_id, None)
                root.leftovers = self._pop_open(root)
            else:
                root.open.pop(run_id, None)
        return state

    def add_usage(self, state: RunState, usage: Usage) -> None:
        """Roll one model call's usage up into its root (by the call's caller)."""
        root = state.root
        total = (usage.input_tokens or 0) + (usage.output_tokens or 0)  # as the journal counts it
        with self._lock:
            root.llm_calls += 1
            root.input_tokens += usage.input_tokens or 0
            root.output_tokens += usage.output_tokens or 0
            root.total_tokens += total
            root.cache_read_tokens += usage.cache_read_tokens or 0
            root.reasoning_tokens += usage.reasoning_tokens or 0
            root.by_caller[state.caller] = root.by_caller.get(state.caller, 0) + total
            root.model_spans.append(state.span)

    def add_failed_call(self, state: RunState) -> None:
        """A model call that failed still counts as a call (as in the journal's ``runs`` row)."""
        with self._lock:
            root = state.root
            root.llm_calls += 1
            root.by_caller.setdefault(state.caller, 0)
            root.model_spans.append(state.span)

    def expired(self) -> list[RunState]:
        """Roots idle longer than the TTL (each with ``root.leftovers`` filled), checked at most every
        ``sweep_interval`` seconds; they are forgotten here."""
        now = time.monotonic()
        if now < self._next_sweep:
            return []
        out: list[RunState] = []
        with self._lock:
            self._next_sweep = now + self._sweep_interval
            deadline = now - self._ttl
            for run_id, root in list(self._roots.items()):
                if root.last_seen <= deadline:
                    del self._roots[run_id]
                    state = self._runs.pop(run_id, None)
                    root.leftovers = self._pop_open(root)
                    if state is not None:
                        out.append(state)
        return out

    def drain(self) -> list[RunState]:
        """Forget every open root (each with ``root.leftovers`` filled) and return them."""
        with self._lock:
            out: list[RunState] = []
            for run_id, root in list(self._roots.items()):
                state = self._runs.pop(run_id, None)
                root.leftovers = self._pop_open(root)
                if state is not None:
                    out.append(state)
            self._roots.clear()
            self._runs.clear()
        return out

    def _pop_open(self, root: RootState) -> list[RunState]:
        leftovers = [s for s in (self._runs.pop(i, None) for i in reversed(root.open)) if s is not None]
        root.open.clear()
        return leftovers
