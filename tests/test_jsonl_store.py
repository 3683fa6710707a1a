"""JsonlStore specifics: torn lines, commit-log rollback, seq recovery, safe names, DuckDB read_json."""

from __future__ import annotations

import errno
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from store_batches import make_run

from otel_runjournal.records import RunWrite
from otel_runjournal.stores import JsonlStore, StoreError
from otel_runjournal.stores.jsonl import store as jsonl_module
from otel_runjournal.stores.jsonl.names import safe_file_name


def test_torn_last_line_is_cut_and_next_record_not_glued(tmp_path: Path) -> None:
    """A crash-torn last line in runs.jsonl is cut on open; the next write starts on a fresh line."""
    with JsonlStore(tmp_path) as store:
        store.write([make_run("r1", "t1")])
    with open(tmp_path / "runs.jsonl", "ab") as handle:
        handle.write(b'{"run_id": "torn", "thread_')
    with JsonlStore(tmp_path) as store:
        store.write([make_run("r2", "t1")])
        assert store.get_run("torn") is None
        assert store.get_run("r2") is not None
    lines = (tmp_path / "runs.jsonl").read_bytes().splitlines()
    assert [json.loads(line)["run_id"] for line in lines] == ["r1", "r2"]


def test_unfinished_batch_is_rolled_back_on_open(tmp_path: Path) -> None:
    """A batch whose commit-log intent has no ok line (writer died) is truncated away on open."""
    with JsonlStore(tmp_path) as store:
        store.write([make_run("r1", "t1")])
    events = tmp_path / "events" / safe_file_name("r1")
    sizes = {
        "runs.jsonl": (tmp_path / "runs.jsonl").stat().st_size,
        f"events/{events.name}": events.stat().st_size,
    }
    with open(tmp_path / "commits.jsonl", "a") as log:
        log.write(json.dumps({"b": "dead", "files": sizes, "seq": {"t1": 99}}) + "\n")
    with open(events, "a") as handle:
        handle.write('{"thread_id": "t1", "run_id": "r1", "seq": 9, "event_type": "x", "category": "trace"')
    with open(tmp_path / "runs.jsonl", "a") as handle:
        handle.write('{"run_id": "half", "thread_id": "t1"}\n')
    with JsonlStore(tmp_path) as store:
        assert store.get_run("half") is None
        assert len(store.list_events("r1")) == 8
        after = make_run("r2", "t1")
        store.write([after])
        assert after.events[0].seq == 100  # seqs reserved by the dead batch are never reused


def test_failed_write_rolls_back_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When a file write fails mid-batch (disk full), the batch's earlier appends are truncated away."""
    with JsonlStore(tmp_path) as store:
        store.write([make_run("r1", "t1")])
        before = {p.name: p.stat().st_size for p in tmp_path.rglob("*.jsonl") if p.name != "commits.jsonl"}
        real_write, calls = os.write, [0]

        def failing_write(fd: int, data: bytes) -> int:
            calls[0] += 1
            if calls[0] == 3:  # intent ok, first file ok, second file: disk full
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        monkeypatch.setattr(jsonl_module.os, "write", failing_write)
        batch = [make_run("r2", "t1"), make_run("r3", "t2")]
        with pytest.raises(StoreError, match="No space"):
            store.write(batch)
        monkeypatch.setattr(jsonl_module.os, "write", real_write)
        after = {p.name: p.stat().st_size for p in tmp_path.rglob("*.jsonl") if p.name != "commits.jsonl"}
        assert {k: v for k, v in after.items() if v} == before
        assert all(e.seq == 0 for unit in batch for e in unit.events)
        assert store.get_run("r2") is None and store.list_events("r2") == []


def test_seq_recovered_from_event_files_without_commit_log(tmp_path: Path) -> None:
    """A journal whose commit log is gone still resumes every thread after its highest seq on disk."""
    with JsonlStore(tmp_path) as store:
        first = make_run("r1", "t1")
        store.write([first])
    (tmp_path / "commits.jsonl").unlink()
    with JsonlStore(tmp_path) as store:
        second = make_run("r2", "t1")
        store.write([second])
    assert second.events[0].seq == first.events[-1].seq + 1


def test_two_instances_in_one_process_share_seq(tmp_path: Path) -> None:
    """Two stores on one directory interleaving writes re-sync from the commit log: no seq reused."""
    a, b = JsonlStore(tmp_path), JsonlStore(tmp_path)
    runs = [make_run(f"r{i}", "t1") for i in range(6)]
    for i, run in enumerate(runs):
        (a if i % 2 else b).write([run])
    seqs = [e.seq for run in runs for e in run.events]
    assert seqs == list(range(1, len(seqs) + 1))
    a.close()
    b.close()


def test_everything_is_readable_with_duckdb_read_json(tmp_path: Path) -> None:
    """The README's read_json queries load events, runs and spans with the right types."""
    with JsonlStore(tmp_path) as store:
        store.write([make_run("r1", "t1"), make_run("r2", "t1", start=1)])
        later = make_run("r1", "t1", status="error").run  # a later summary of r1 (no new spans) wins
        store.write([RunWrite(run=later)])
    con = duckdb.connect()
    events = con.execute(
        f"SELECT thread_id, seq, event_type, typeof(created_at) FROM read_json('{tmp_path}/events/*.jsonl') "
        "WHERE category = 'message' ORDER BY seq"
    ).fetchall()
    assert [row[2] for row in events] == ["human_message", "ai_message"] * 2
    assert events[0][3] == "TIMESTAMP WITH TIME ZONE"
    latest = con.execute(
        f"SELECT run_id, last(status ORDER BY n) FROM (SELECT *, row_number() OVER () AS n "
        f"FROM read_json('{tmp_path}/runs.jsonl')) GROUP BY run_id ORDER BY run_id"
    ).fetchall()
    assert latest == [("r1", "error"), ("r2", "success")]
    spans = con.execute(f"SELECT count(*) FROM read_json('{tmp_path}/spans.jsonl')").fetchone()
    assert spans == (6,)  # two runs of three spans; the resent run added none


@pytest.mark.parametrize("identifier", ["../../etc/x", "a/b", "\x00", "..", "", "x" * 10_000, "ÅÄÖ", "CON"])
def test_safe_file_name_is_one_plain_component(identifier: str) -> None:
    """Names use only [A-Za-z0-9_-] plus the suffix, stay short, and differ for different ids."""
    name = safe_file_name(identifier)
    stem = name.removesuffix(".jsonl")
    assert stem and all(c.isascii() and (c.isalnum() or c in "_-") for c in stem)
    assert len(name) <= 80 and "/" not in name and not name.startswith(".")
    assert safe_file_name(identifier + "!") != name


def test_fsync_policy_from_argument_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync comes from the argument, else OTEL_RUNJOURNAL_FSYNC, else never; bad arguments raise."""
    monkeypatch.setenv("OTEL_RUNJOURNAL_FSYNC", "batch")
    with JsonlStore(tmp_path) as store:
        assert store.fsync == "batch"
        store.write([make_run("r1", "t1")])
    with JsonlStore(tmp_path, fsync="never") as store:
        assert store.fsync == "never"
    with pytest.raises(ValueError):
        JsonlStore(tmp_path, fsync="always")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def test_batch_beyond_open_ahead_writes_fails_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files past OPEN_AHEAD are sized with stat; a failure in either kind rolls all back, leaks no
    descriptor, leaves seq unset; the retry succeeds with seqs after the ones the failure reserved."""
    monkeypatch.setattr(jsonl_module, "OPEN_AHEAD", 2)
    with JsonlStore(tmp_path) as store:
        store.write([make_run("r0", "t1")])
        reserved = store.list_events("r0")[-1].seq
        before = {p.name: p.stat().st_size for p in tmp_path.rglob("*.jsonl") if p.name != "commits.jsonl"}
        fds = _open_fds()
        real_write, calls = os.write, [0]

        def failing_write(fd: int, data: bytes) -> int:
            calls[0] += 1
            if calls[0] == 5:  # intent, two opened-ahead files, one stat-sized file, then disk full
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        batch = [make_run(f"r{i}", "t1") for i in range(1, 6)]
        monkeypatch.setattr(jsonl_module.os, "write", failing_write)
        with pytest.raises(StoreError, match="No space"):
            store.write(batch)
        monkeypatch.setattr(jsonl_module.os, "write", real_write)
        after = {p.name: p.stat().st_size for p in tmp_path.rglob("*.jsonl") if p.name != "commits.jsonl"}
        assert {k: v for k, v in after.items() if v} == before
        assert _open_fds() == fds
        assert all(e.seq == 0 for unit in batch for e in unit.events)
        reserved += sum(len(unit.events) for unit in batch)  # handed out to the failed batch
        store.write(batch)
        assert _open_fds() == fds
        seqs = [e.seq for unit in batch for e in unit.events]
        assert seqs == list(range(reserved + 1, reserved + 1 + len(seqs)))
        for unit in batch:
            stored = store.list_events(unit.run.run_id)
            assert [(e.seq, e.event_type) for e in stored] == [(e.seq, e.event_type) for e in unit.events]
        assert {r.run_id for r in store.list_runs()} == {f"r{i}" for i in range(6)}


def test_timestamps_in_any_zone_are_written_as_utc(tmp_path: Path) -> None:
    """Aware non-UTC and naive datetimes land in the files as ISO-8601 UTC (+00:00), read back equal."""
    plus_two = timezone(timedelta(hours=2))
    run = make_run("r1", "t1")
    run.events[0].created_at = datetime(2025, 3, 1, 14, 0, 0, 5, tzinfo=plus_two)
    run.events[1].created_at = datetime(2025, 3, 1, 12, 0, 1)  # naive: taken as UTC
    run.spans[0].start_time = run.spans[0].start_time.astimezone(plus_two)
    run.run.ended_at = datetime(2025, 3, 1, 15, 0, tzinfo=plus_two)
    with JsonlStore(tmp_path) as store:
        store.write([run])
        stored = store.list_events("r1")
        assert stored[0].created_at == datetime(2025, 3, 1, 12, 0, 0, 5, tzinfo=timezone.utc)
        assert stored[1].created_at == datetime(2025, 3, 1, 12, 0, 1, tzinfo=timezone.utc)
    events = [
        json.loads(line) for line in (tmp_path / "events" / safe_file_name("r1")).read_bytes().splitlines()
    ]
    assert events[0]["created_at"] == "2025-03-01T12:00:00.000005+00:00"
    assert events[1]["created_at"] == "2025-03-01T12:00:01+00:00"
    assert all(e["created_at"].endswith("+00:00") for e in events)
    span = json.loads((tmp_path / "spans.jsonl").read_bytes().splitlines()[0])
    assert span["start_time"].endswith("+00:00")
    summary = json.loads((tmp_path / "runs.jsonl").read_bytes())
    assert summary["ended_at"] == "2025-03-01T13:00:00+00:00"


def test_open_failure_before_the_intent_leaks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If opening a batch's files fails (too many open files), nothing is logged or leaked; retry works."""
    with JsonlStore(tmp_path) as store:
        store.write([make_run("first", "t1")])
        fds, log = _open_fds(), (tmp_path / "commits.jsonl").read_bytes()
        real_open, calls = os.open, [0]

        def failing_open(path: str, flags: int, mode: int = 0o777) -> int:
            calls[0] += 1
            if calls[0] == 3:
                raise OSError(errno.EMFILE, "Too many open files")
            return real_open(path, flags, mode)

        batch = [make_run(f"r{i}", "t1") for i in range(4)]
        monkeypatch.setattr(jsonl_module.os, "open", failing_open)
        with pytest.raises(StoreError, match="Too many"):
            store.write(batch)
        monkeypatch.setattr(jsonl_module.os, "open", real_open)
        assert _open_fds() == fds
        assert (tmp_path / "commits.jsonl").read_bytes() == log
        assert all(e.seq == 0 for unit in batch for e in unit.events)
        store.write(batch)
        assert batch[0].events[0].seq == store.list_events("first")[-1].seq + 1
