"""Spans that come late: when ``serve`` writes a run whose root overtook its children (a Collector
retrying after an outage sends the batches it held in backoff seconds after later ones) — whole, in
one part, when the children come within the wait the root's announced span count buys; appended
within seconds when later — and a late part of a run written before a restart adds to it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import (
    agent_spans,
    exported_events,
    health,
    journal_events,
    post,
    request_of,
    serving,
    wait_for,
)
from spanfactory import copy_of

from otel_runjournal import RunJournalExporter, open_store
from otel_runjournal.journal.assembler import Assembler


@pytest.fixture(scope="module")
def run_spans() -> list[Any]:
    """The spans of one run of the offline agent."""
    return agent_spans(1)


def _root(spans: list[Any]) -> Any:
    return next(s for s in spans if s.attributes.get("runjournal.is_root"))


def _held_and_written(port: int) -> tuple[int, int]:
    stats = health(port)[1]
    return stats["held_runs"], stats["written_runs"]


def _summary(location: str, run_id: str) -> tuple[Any, list[Any]]:
    store = open_store(location)
    try:
        return store.get_run(run_id), store.list_events(run_id, limit=1000)
    finally:
        store.close()


def test_a_root_ahead_of_its_children_waits_for_the_spans_it_announces(
    run_spans: list[Any], tmp_path: Path
) -> None:
    """Root first, children 1 s later (past settle 0.3 s, within 10 x settle): one write, the same
    events as in-process, run_end last and its roll-up equal to the run's totals, complete."""
    root = _root(run_spans)
    children = [s for s in run_spans if s is not root]
    location = str(tmp_path / "served.duckdb")
    with serving(location, tmp_path / "spool", settle=0.3) as server:
        port = server.http_port or 0
        assert post(port, request_of([root]).SerializeToString()).status == 200
        time.sleep(1.0)
        assert _held_and_written(port) == (0, 0)  # the root waits: 1 of its spans arrived
        assert post(port, request_of(children).SerializeToString()).status == 200
        wait_for(lambda: _held_and_written(port) == (0, 1), "the run written once, whole", timeout=20)
    expected = exported_events([run_spans], str(tmp_path / "local.duckdb"))
    assert journal_events(location) == expected
    run, events = _summary(location, root.attributes["runjournal.run_id"])
    assert run.complete is True and run.status == "success" and run.llm_call_count > 0
    assert events[-1].event_type == "run_end"
    assert events[-1].metadata["total_tokens"] == run.total_tokens > 0


def test_children_later_than_the_wait_are_appended_within_seconds(
    run_spans: list[Any], tmp_path: Path
) -> None:
    """Children arriving after their root was written (past 10 x settle) are appended once they stop
    arriving (settle), not after --run-idle-timeout: events as in-process, totals whole, complete."""
    root = _root(run_spans)
    children = [s for s in run_spans if s is not root]
    location = str(tmp_path / "served.duckdb")
    with serving(location, tmp_path / "spool", settle=0.1, run_idle_timeout=600) as server:
        port = server.http_port or 0
        assert post(port, request_of([root]).SerializeToString()).status == 200
        wait_for(lambda: _held_and_written(port) == (0, 1), "the root's part written", timeout=20)
        assert post(port, request_of(children).SerializeToString()).status == 200
        wait_for(lambda: _held_and_written(port) == (0, 2), "the late part appended", timeout=20)
    local = str(tmp_path / "local.duckdb")
    assert journal_events(location) == exported_events([run_spans], local)
    run_id = root.attributes["runjournal.run_id"]
    run, _ = _summary(location, run_id)
    reference, _ = _summary(local, run_id)
    assert run.complete is True and run.status == "success"
    totals = ("total_tokens", "input_tokens", "output_tokens", "llm_call_count", "message_count")
    assert [getattr(run, k) for k in totals] == [getattr(reference, k) for k in totals]
    assert run.total_tokens > 0


def test_a_late_span_after_a_restart_adds_to_the_run_written_before_it(
    run_spans: list[Any], tmp_path: Path
) -> None:
    """A span of a run written by serve before a restart, arriving after it (idle timeout), adds to the
    stored run: still ``success``, totals of the whole run, events as in-process."""
    root = _root(run_spans)
    late = next(s for s in run_spans if s.name.startswith("chat "))
    location = str(tmp_path / "served.duckdb")
    with serving(location, tmp_path / "spool", settle=0) as server:
        port = server.http_port or 0
        body = request_of([s for s in run_spans if s is not late]).SerializeToString()
        assert post(port, body).status == 200
        wait_for(lambda: _held_and_written(port) == (0, 1), "the run written without its late span")
    with serving(location, tmp_path / "spool", settle=0, run_idle_timeout=1) as server:
        port = server.http_port or 0
        assert post(port, request_of([late]).SerializeToString()).status == 200
        wait_for(lambda: _held_and_written(port) == (0, 1), "the late span written after the idle timeout")
    local = str(tmp_path / "local.duckdb")
    assert journal_events(location) == exported_events([run_spans], local)
    run_id = root.attributes["runjournal.run_id"]
    run, _ = _summary(location, run_id)
    reference, _ = _summary(local, run_id)
    totals = ("status", "total_tokens", "input_tokens", "llm_call_count", "message_count", "cost_usd")
    assert [getattr(run, k) for k in totals] == [getattr(reference, k) for k in totals]
    assert run.usage_by_caller == reference.usage_by_caller and run.total_tokens > 0


def test_exporter_after_a_restart_adds_a_late_part_to_the_stored_run(
    run_spans: list[Any], tmp_path: Path
) -> None:
    """An exporter (a restarted application) flushing a late span of a run an earlier exporter wrote
    keeps the stored run ``success`` and adds to its totals instead of replacing them."""
    root = _root(run_spans)
    late = next(s for s in run_spans if s.name.startswith("chat "))
    location = str(tmp_path / "journal.duckdb")
    first = RunJournalExporter(location)
    first.export([s for s in run_spans if s is not late])
    first.shutdown()
    second = RunJournalExporter(location)
    second.export([late])
    second.shutdown()  # the run's root never comes to this one: its part is written at shutdown
    run_id = root.attributes["runjournal.run_id"]
    run, _ = _summary(location, run_id)
    local = str(tmp_path / "local.duckdb")
    assert journal_events(location) == exported_events([run_spans], local)
    reference, _ = _summary(local, run_id)
    totals = ("status", "total_tokens", "output_tokens", "llm_call_count", "message_count")
    assert [getattr(run, k) for k in totals] == [getattr(reference, k) for k in totals]


def test_a_root_after_its_children_were_written_elsewhere_adds_to_them(
    run_spans: list[Any], tmp_path: Path
) -> None:
    """Children written by one exporter (its process ended mid-run: ``abandoned``), the root by the next:
    the run ends ``success`` with the totals and events of the whole run."""
    root = _root(run_spans)
    location = str(tmp_path / "journal.duckdb")
    first = RunJournalExporter(location)
    first.export([s for s in run_spans if s is not root])
    first.shutdown()
    assert _summary(location, root.attributes["runjournal.run_id"])[0].status == "abandoned"
    second = RunJournalExporter(location)
    second.export([root])
    second.shutdown()
    run_id = root.attributes["runjournal.run_id"]
    run, _ = _summary(location, run_id)
    local = str(tmp_path / "local.duckdb")
    assert journal_events(location) == exported_events([run_spans], local)
    reference, _ = _summary(local, run_id)
    totals = ("status", "total_tokens", "output_tokens", "llm_call_count", "message_count", "last_ai_message")
    assert [getattr(run, k) for k in totals] == [getattr(reference, k) for k in totals]
    assert run.usage_by_caller == reference.usage_by_caller


class _WriteOnlyStore:
    """A sink with only ``write`` and ``close`` (what a benchmark or a forwarding store may be)."""

    def __init__(self) -> None:
        self.writes: list[Any] = []

    def write(self, batch: list[Any]) -> None:
        self.writes.extend(batch)

    def close(self) -> None:
        pass


def test_exporter_with_a_write_only_store_writes_late_parts_as_before(run_spans: list[Any]) -> None:
    """A store without ``get_run`` is still accepted; a part without its root is written as it is."""
    late = next(s for s in run_spans if s.name.startswith("chat "))
    store = _WriteOnlyStore()
    exporter = RunJournalExporter(store)  # type: ignore[arg-type]
    assert exporter.export([late]).name == "SUCCESS"
    exporter.shutdown()
    (write,) = store.writes
    assert write.run.status == "abandoned" and write.run.llm_call_count == 1


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_assembler_late_parts_wait_the_late_timeout_and_drain_at_stop(run_spans: list[Any]) -> None:
    """A late part (its run written finished, same trace) waits ``late_idle_timeout``, not the run idle
    timeout, and ``drain_late`` hands it out at once; a run id reused in another trace is not late."""
    late = next(s for s in run_spans if s.name.startswith("chat "))
    clock = _Clock()
    assembler = Assembler(max_pending_spans=1000, run_idle_timeout=600, late_idle_timeout=5, clock=clock)
    (first,) = assembler.add([s for s in run_spans if s is not late])
    assert first.run.status == "success" and first.run.complete is False
    assert assembler.add([late]) == [] and assembler.pending_runs == 1
    clock.now = 4.9
    assert assembler.add([]) == []
    clock.now = 5.0
    (part,) = assembler.add([])
    assert part.run.complete is True and part.run.llm_call_count == first.run.llm_call_count + 1
    assert assembler.add([late]) == [] and len(assembler.drain_late()) == 1 and assembler.pending_runs == 0

    other = Assembler(max_pending_spans=1000, run_idle_timeout=600, late_idle_timeout=5, clock=clock)
    other.add(run_spans)
    reused = _in_other_trace(late)
    assert other.add([reused]) == [] and other.drain_late() == [] and other.pending_runs == 1


def test_assembler_counts_arrived_spans_without_other_instrumentations_duplicates(
    run_spans: list[Any],
) -> None:
    """``arrived_spans`` (what serve compares with the root's span count) counts the run's own spans
    held, not a provider SDK's span of a call ours owns (a duplicate)."""
    root = _root(run_spans)
    chat = next(s for s in run_spans if s.name.startswith("chat "))
    held = [s for s in run_spans if s is not root]
    assembler = Assembler(max_pending_spans=1000)
    assert assembler.add(held) == []
    foreign = copy_of(
        chat,
        span_xor=1,
        parent=chat.get_span_context(),
        attributes={k: v for k, v in chat.attributes.items() if not k.startswith("runjournal.")},
    )
    assert assembler.add([foreign]) == [] and assembler.ignored_spans == 1
    run_id = root.attributes["runjournal.run_id"]
    assert assembler.arrived_spans(run_id) == len(held) == root.attributes["runjournal.span_count"] - 1
    (write,) = assembler.add([root])
    assert write.run.complete is True and assembler.arrived_spans(run_id) == len(run_spans)


def _in_other_trace(span: Any) -> Any:
    """The span as if a new invocation reusing the run id had made it (another trace)."""
    from opentelemetry.trace import SpanContext

    parent = span.parent and SpanContext(
        span.parent.trace_id ^ 1, span.parent.span_id, span.parent.is_remote, span.parent.trace_flags
    )
    return copy_of(span, trace_xor=1, parent=parent)
