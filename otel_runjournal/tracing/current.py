"""Our span as the current OpenTelemetry span while its step runs, with nothing left behind after it.

LangChain calls a step's start callback in the *caller's* context, then runs the step's body in a
copy of that context (``set_config_context`` / ``copy_context``; an async model's request in tasks of
its own), and calls the end callback in the caller's context again — except in async code, where
``on_chain_end`` / ``on_llm_end`` / ``on_retriever_end`` and their errors run in a task of their own
(LangChain's ``@shielded``), on a copy. So the start callback is the one place that can make our span
current for the body, and an end callback cannot always undo it: pairing attach with detach would
leave the caller's context pointing at an ended span after every async step (and after a stream
closed elsewhere), and ``detach`` of a token from another context logs "Failed to detach context".

The mechanism here is correct without any pairing. At a step's start the current span becomes a
:class:`StepSpan`: a stand-in that behaves as our span while the step runs and, from the moment the
step ends, as whatever was current before the step (it forgets our span then). So a context the end
could not reach is left with a span that *is* the previous one for every purpose — a span started
under it is a child of the previous span, ``get_span_context()`` is the previous one's —, and the
next step started in that context replaces the stand-in by what it stands for, so stand-ins never
pile up. Where the end does run in the step's caller's context (sync code, async tools), the
previous context object itself is put back, so there even ``context.get_current()`` is again the
very object it was. Nothing ever calls ``context.detach``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanContext
from opentelemetry.util import types


class StepSpan(Span):
    """Our span while its step runs; afterwards the span that was current before the step."""

    __slots__ = ("_before", "_span")

    def __init__(self, span: Span, before: Span) -> None:
        self._span: Span | None = span
        self._before = before  # not an ended StepSpan when this step started (see activate)

    def target(self) -> Span:
        """The span this stands for now."""
        step: StepSpan = self
        while True:
            span = step._span
            if span is not None:
                return span
            before = step._before
            if type(before) is not StepSpan:
                return before
            step = before

    def end_step(self) -> None:
        """The step ended: from now on stand for the previous span (and hold ours no longer)."""
        self._span = None

    # --- the Span API, delegated -----------------------------------------------------------------
    def end(self, end_time: int | None = None) -> None:
        self.target().end(end_time)

    def get_span_context(self) -> SpanContext:
        return self.target().get_span_context()

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        self.target().set_attributes(attributes)

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        self.target().set_attribute(key, value)

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        self.target().add_event(name, attributes, timestamp)

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        self.target().add_link(context, attributes)

    def update_name(self, name: str) -> None:
        self.target().update_name(name)

    def is_recording(self) -> bool:
        return self.target().is_recording()

    def set_status(self, status: Any, description: str | None = None) -> None:
        self.target().set_status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        self.target().record_exception(exception, attributes, timestamp, escaped)

    def __getattr__(self, name: str) -> Any:
        # what the Span API does not name (an SDK span's ``name``, ``attributes``, ``parent``, ...)
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.target(), name)

    def __repr__(self) -> str:
        return f"StepSpan({self.target()!r})"


class Activation:
    """What :func:`activate` changed, for :func:`deactivate`."""

    __slots__ = ("before", "ctx", "step")

    def __init__(self, step: StepSpan, ctx: Context, before: Context) -> None:
        self.step = step
        self.ctx = ctx
        self.before = before


def activate(span: Span) -> Activation:
    """Make ``span`` the current span of this context for the step about to run."""
    before = otel_context.get_current()
    current = trace.get_current_span(before)
    if type(current) is StepSpan and current._span is None:  # a step ended elsewhere: drop its stand-in
        current = _settled(current)
        before = trace.set_span_in_context(current, before)
    step = StepSpan(span, current)
    ctx = trace.set_span_in_context(step, before)
    otel_context.attach(ctx)  # the token is not kept: nothing is ever detached (see the module doc)
    return Activation(step, ctx, before)


def deactivate(activation: Activation) -> None:
    """The step ended: its stand-in now stands for the previous span everywhere; in the context that
    started it (when that is where we are) the previous context object is current again."""
    activation.step.end_step()
    if otel_context.get_current() is activation.ctx:
        otel_context.attach(activation.before)


def _settled(step: StepSpan) -> Span:
    """An ended stand-in's replacement: the nearest live stand-in or plain span before it."""
    current: Span = step
    while type(current) is StepSpan and current._span is None:
        current = current._before
    return current


__all__: Sequence[str] = ("Activation", "StepSpan", "activate", "deactivate")
