"""The serve writer gathers finished runs for one store write; what it gathered is safe in the spool."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import agent_spans, exported_events, journal_events, request_of, wait_for

from otel_runjournal import open_store
from otel_runjournal.serve.spool import Spool
from otel_runjournal.serve.writer import JournalWriter


@pytest.fixture(scope="module")
def runs() -> list[list[Any]]:
    """The spans of three runs of the offline agent, one list per run."""
    return [agent_spans(1) for _ in range(3)]


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _writer(location: str, tmp_path: Path, **options: Any) -> JournalWriter:
    """A writer of ``location`` with its spool under ``tmp_path``, roots not settling."""
    return JournalWriter(
        open_store(location), Spool(str(tmp_path / "spool")), max_pending_spans=10_000, settle=0, **options
    )


def test_requests_are_acknowledged_at_once_and_written_together_when_due(
    runs: list[list[Any]], tmp_path: Path
) -> None:
    """Finished runs of several requests wait for one store write (each request answered at once) and
    are written when ``max_write_delay`` has passed, journaled as the exporter journals them."""
    clock = _Clock()
    location = str(tmp_path / "served.duckdb")
    writer = _writer(location, tmp_path, min_write_spans=1_000_000, max_write_delay=5.0, clock=clock)
    writer.start()
    try:
        for spans in runs:
            assert writer.submit_body(request_of(spans).SerializeToString()).ok
        # answered once in the spool; the writer gathers the request's runs right after answering
        wait_for(lambda: writer.health()["unwritten_runs"] == len(runs), "the runs gathered")
        assert (writer.health()["store_writes"], writer.health()["written_runs"]) == (0, 0)
        clock.now += 5.0  # the first gathered run is due: everything gathered goes in one write
        wait_for(lambda: writer.health()["written_runs"] == len(runs), "the gathered runs written")
        assert (writer.health()["store_writes"], writer.health()["unwritten_runs"]) == (1, 0)
    finally:
        writer.stop()
    assert journal_events(location) == exported_events(runs, str(tmp_path / "exported.duckdb"))


def test_enough_spans_are_written_without_waiting(runs: list[list[Any]], tmp_path: Path) -> None:
    """Once ``min_write_spans`` spans of finished runs are gathered they are written, the clock
    standing still."""
    location = str(tmp_path / "served.duckdb")
    run_spans = len(runs[0])
    writer = _writer(
        location, tmp_path, min_write_spans=2 * run_spans, max_write_delay=3600.0, clock=_Clock()
    )
    writer.start()
    try:
        assert writer.submit_body(request_of(runs[0]).SerializeToString()).ok
        assert writer.submit_body(request_of(runs[1]).SerializeToString()).ok
        wait_for(lambda: writer.health()["written_runs"] == 2, "two runs' spans written")
        assert writer.submit_body(request_of(runs[2]).SerializeToString()).ok
        wait_for(lambda: writer.health()["unwritten_runs"] == 1, "the third run gathered")
        assert writer.health()["store_writes"] == 1  # half of min_write_spans: it waits
    finally:
        writer.stop()  # the last gathered run is written at stop
    assert journal_events(location) == exported_events(runs, str(tmp_path / "exported.duckdb"))


def test_an_idle_writer_writes_what_it_gathered(runs: list[list[Any]], tmp_path: Path) -> None:
    """Gathered runs wait while requests keep coming, and are written once no request came for
    ``idle_write_delay`` seconds, long before ``max_write_delay`` or ``min_write_spans``."""
    clock = _Clock()
    location = str(tmp_path / "served.duckdb")
    writer = _writer(
        location,
        tmp_path,
        min_write_spans=1_000_000,
        max_write_delay=3600.0,
        idle_write_delay=0.5,
        clock=clock,
    )
    writer.start()
    try:
        for spans in runs:
            assert writer.submit_body(request_of(spans).SerializeToString()).ok
        wait_for(lambda: writer.health()["unwritten_runs"] == len(runs), "the runs gathered")
        clock.now += 0.4  # requests came 0.4 s ago: still gathering
        time.sleep(0.3)
        assert (writer.health()["store_writes"], writer.health()["written_runs"]) == (0, 0)
        clock.now += 0.1  # idle for idle_write_delay: one write
        wait_for(lambda: writer.health()["written_runs"] == len(runs), "the gathered runs written")
        assert writer.health()["store_writes"] == 1
    finally:
        writer.stop()
    assert journal_events(location) == exported_events(runs, str(tmp_path / "exported.duckdb"))


def test_gathered_runs_are_replayed_from_the_spool_after_a_crash(
    runs: list[list[Any]], tmp_path: Path
) -> None:
    """Acknowledged runs still gathered for a write when serve dies are in the spool (even with a
    segment per request: their segments are kept), and a restart journals each of them once."""
    spool_dir = tmp_path / "spool"
    writer = JournalWriter(
        open_store(str(tmp_path / "lost.duckdb")),
        Spool(str(spool_dir), segment_bytes=1024),  # a new segment after every append
        max_pending_spans=10_000,
        settle=0,
        min_write_spans=1_000_000,
        max_write_delay=3600.0,
        clock=_Clock(),
    )
    writer.start()
    try:
        for spans in runs:
            assert writer.submit_body(request_of(spans).SerializeToString()).ok
        wait_for(lambda: writer.health()["unwritten_runs"] == len(runs), "the runs gathered")
        # the crash: what a SIGKILL leaves on disk is the spool's files as they are now
        crashed = tmp_path / "crashed-spool"
        shutil.copytree(spool_dir, crashed, ignore=shutil.ignore_patterns("lock"))
    finally:
        writer.stop()
    location = str(tmp_path / "restarted.duckdb")
    restarted = JournalWriter(open_store(location), Spool(str(crashed)), max_pending_spans=10_000, settle=0)
    restarted.start()  # replays the spool
    restarted.stop()
    assert journal_events(location) == exported_events(runs, str(tmp_path / "exported.duckdb"))


def test_the_journal_loads_its_price_table_before_the_first_request(tmp_path: Path) -> None:
    """``open_journal`` imports what the first write would (the price table, where genai-prices is
    installed), so no request waits for it; checked in a fresh interpreter."""
    expected = importlib.util.find_spec("genai_prices") is not None
    script = (
        "import sys\n"
        "from otel_runjournal.serve.journal_process import JournalOptions, open_journal\n"
        "before = 'genai_prices' in sys.modules\n"
        f"writer = open_journal(JournalOptions(store={str(tmp_path / 'j.duckdb')!r}, "
        f"spool={str(tmp_path / 'spool')!r}, fsync=False, spool_segment_bytes=1 << 20, "
        "max_pending_spans=100, journal_content=True, max_queued_spans=100, settle=0.0, "
        "run_idle_timeout=60.0))\n"
        "print(before, 'genai_prices' in sys.modules)\n"
        "writer.stop()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["False", str(expected)]
