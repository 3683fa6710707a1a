"""The RunStore contract, checked identically on DuckDBStore, JsonlStore and PostgresStore."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from pg_server import Schema
from store_batches import T0, make_run

from otel_runjournal.records import RunWrite
from otel_runjournal.stores import (
    DuckDBStore,
    JsonlStore,
    RunStore,
    StoreError,
    open_store,
)

Opener = Callable[[], RunStore]
TESTS_DIR = str(Path(__file__).parent)


@pytest.fixture(params=["duckdb", "jsonl", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["duckdb", "jsonl"])
def file_kind(request: pytest.FixtureRequest) -> str:
    """The stores kept in local files (the tests about paths, file limits and permissions)."""
    return str(request.param)


def _location(kind: str, tmp_path: Path) -> Path:
    return tmp_path / "journal.duckdb" if kind == "duckdb" else tmp_path / "journal"


@pytest.fixture
def opener(kind: str, tmp_path: Path) -> Iterator[Opener]:
    """Opens (and later closes) a store of ``kind`` at one fixed location."""
    opened: list[RunStore] = []
    schema = Schema() if kind == "postgres" else None
    location = _location(kind, tmp_path)

    def open_() -> RunStore:
        store: RunStore
        if schema is not None:
            from otel_runjournal.stores import PostgresStore

            store = PostgresStore(schema.url)
        else:
            store = DuckDBStore(location) if kind == "duckdb" else JsonlStore(location)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
    if schema is not None:
        schema.drop()


@pytest.fixture
def store(opener: Opener) -> RunStore:
    return opener()


def test_implements_protocol(store: RunStore) -> None:
    """Both stores satisfy the RunStore protocol."""
    assert isinstance(store, RunStore)


def test_write_assigns_seq_per_thread_in_list_order(store: RunStore) -> None:
    """seq starts at 1 per thread, follows list order, is set back on the event objects."""
    a, b = make_run("r1", "t1"), make_run("r2", "t2", tool_calls=2)
    store.write([a, b])
    assert [e.seq for e in a.events] == list(range(1, len(a.events) + 1))
    assert [e.seq for e in b.events] == list(range(1, len(b.events) + 1))
    stored = store.list_events("r1")
    assert [(e.seq, e.event_type) for e in stored] == [(e.seq, e.event_type) for e in a.events]


def test_seq_continues_after_thread_last_across_batches(store: RunStore) -> None:
    """A second run of a thread continues the thread's seq; other threads are independent."""
    first, second, other = make_run("r1", "t1"), make_run("r2", "t1"), make_run("r3", "t9")
    store.write([first])
    store.write([other, second])
    assert second.events[0].seq == first.events[-1].seq + 1
    assert other.events[0].seq == 1


def test_restart_keeps_seq_increasing(opener: Opener) -> None:
    """After closing and reopening, new events of a thread get seqs above every earlier one."""
    store = opener()
    first = make_run("r1", "t1")
    store.write([first])
    store.close()
    reopened = opener()
    second = make_run("r2", "t1")
    reopened.write([second])
    assert second.events[0].seq == first.events[-1].seq + 1
    assert [e.seq for e in reopened.list_events("r1")] == [e.seq for e in first.events]


def test_later_write_replaces_run_summary(store: RunStore) -> None:
    """The run row is upserted: the latest write of a run_id wins, also inside one batch."""
    running = make_run("r1", "t1")
    running.run.status = "running"
    store.write([running])
    done = make_run("r1", "t1", messages=1, tool_calls=0)
    later = replace(done.run, status="error", error="late")
    store.write([done, replace(done, run=later, events=[], spans=[])])
    run = store.get_run("r1")
    assert run is not None and run.status == "error" and run.error == "late"
    assert [r.run_id for r in store.list_runs()] == ["r1"]


def _span_rows(store: RunStore) -> list[tuple[str, str]]:
    """(trace_id, span_id) of every stored span row, duplicates kept."""
    if isinstance(store, JsonlStore):
        lines = Path(store.directory, "spans.jsonl").read_text().splitlines()
        return sorted((row["trace_id"], row["span_id"]) for row in map(__import__("json").loads, lines))
    return sorted(store.sql("SELECT trace_id, span_id FROM spans"))  # type: ignore[attr-defined]


def _snapshot(store: RunStore, runs: list[str]) -> object:
    return (
        [store.list_events(r, limit=1000) for r in runs],
        [store.get_run(r) for r in runs],
        store.token_usage(),
        _span_rows(store),
    )


def test_batch_delivered_twice_duplicates_nothing(store: RunStore) -> None:
    """The same batch written again (a retry after a commit that did succeed) adds no event, span or total."""
    store.write([make_run("r1", "t1"), make_run("r2", "t2", tool_calls=2)])
    before = _snapshot(store, ["r1", "r2"])
    again = [make_run("r1", "t1"), make_run("r2", "t2", tool_calls=2)]
    store.write(again)
    store.write(again + again)  # and twice inside one batch
    assert _snapshot(store, ["r1", "r2"]) == before
    assert len(_span_rows(store)) == 6
    later = make_run("r3", "t1")
    store.write([later])
    assert later.events[0].seq == max(e.seq for e in store.list_events("r1")) + 1


def test_run_written_in_parts_is_whole_and_a_resent_part_changes_nothing(store: RunStore) -> None:
    """Parts (running, then complete) end whole; resending the first part neither duplicates nor regresses."""
    full = make_run("r1", "t1", tool_calls=2)
    chat, tool = full.spans[1].span_id, full.spans[2].span_id
    first_events = [e for e in full.events if e.span_id in (chat, tool)]
    running = replace(full.run, status="running", ended_at=None, total_tokens=0)
    part1 = RunWrite(run=running, events=first_events, spans=full.spans[1:])
    part2 = RunWrite(
        run=full.run, events=[e for e in full.events if e not in first_events], spans=full.spans[:1]
    )
    store.write([part1])
    assert store.get_run("r1") == running
    store.write([part2])
    whole = _snapshot(store, ["r1"])
    resent = RunWrite(run=running, events=[replace(e, seq=0) for e in first_events], spans=full.spans[1:])
    store.write([resent])
    assert _snapshot(store, ["r1"]) == whole
    assert store.get_run("r1") == full.run
    assert len(store.list_events("r1")) == len(full.events)
    mixed = make_run("r1", "t1", tool_calls=2)  # one stored span, one new: only the new one's rows
    mixed.spans[0].span_id = "ab" * 8
    for event in mixed.events:
        if event.span_id == "cd" * 8:
            event.span_id = "ab" * 8
    store.write([mixed])
    assert len(store.list_events("r1")) == len(full.events) + 4  # run_start, human, ai, run_end again
    assert len(_span_rows(store)) == 4


def test_empty_batch_is_a_no_op(store: RunStore) -> None:
    """write([]) writes nothing and does not fail."""
    store.write([])
    assert store.list_runs() == []


def test_list_events_filters_by_category_and_types(store: RunStore) -> None:
    """category and event_types select rows; results stay in ascending seq."""
    store.write([make_run("r1", "t1", tool_calls=2)])
    life = store.list_events("r1", category="lifecycle")
    assert [e.event_type for e in life] == ["run_start", "run_end"]
    tools = store.list_events("r1", event_types=["tool_end", "tool_start"])
    assert [e.event_type for e in tools] == ["tool_start", "tool_end"] * 2
    assert [e.seq for e in tools] == sorted(e.seq for e in tools)
    assert store.list_events("r1", category="trace", event_types=["run_start"]) == []


def test_cursors_page_forwards_backwards_and_interval(store: RunStore) -> None:
    """after_seq = first rows above, before_seq = last rows below, both = open interval; ascending."""
    write = make_run("r1", "t1", tool_calls=3)  # 2 + 12 + 1 + 1 = 16 events
    store.write([write])
    all_seqs = [e.seq for e in write.events]
    assert [e.seq for e in store.list_events("r1", limit=4)] == all_seqs[:4]
    assert [e.seq for e in store.list_events("r1", after_seq=4, limit=3)] == [5, 6, 7]
    assert [e.seq for e in store.list_events("r1", before_seq=10, limit=3)] == [7, 8, 9]
    assert [e.seq for e in store.list_events("r1", after_seq=3, before_seq=7)] == [4, 5, 6]
    assert [e.seq for e in store.list_events("r1", after_seq=3, before_seq=9, limit=2)] == [4, 5]
    assert store.list_events("r1", after_seq=7, before_seq=7) == []
    # paging backwards from the end reassembles everything, each page ascending
    pages, cursor = [], max(all_seqs) + 1
    while page := store.list_events("r1", before_seq=cursor, limit=5):
        pages.append([e.seq for e in page])
        cursor = page[0].seq
    assert all(p == sorted(p) for p in pages)
    assert sorted(s for p in pages for s in p) == all_seqs


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": True},
        {"after_seq": -1},
        {"before_seq": "5"},
        {"category": "bogus"},
    ],
)
def test_invalid_page_arguments_raise_value_error(store: RunStore, kwargs: dict[str, object]) -> None:
    """Arguments outside the contract raise ValueError rather than being ignored."""
    with pytest.raises(ValueError):
        store.list_events("r1", **kwargs)  # type: ignore[arg-type]


def test_invalid_list_runs_arguments_raise_value_error(store: RunStore) -> None:
    """list_runs rejects an unknown status and a bad limit; list_messages a bad cursor."""
    with pytest.raises(ValueError):
        store.list_runs(status="done")
    with pytest.raises(ValueError):
        store.list_runs(limit=0)
    with pytest.raises(ValueError):
        store.list_messages("t1", before_seq=-3)


def test_list_messages_spans_runs_of_the_thread(store: RunStore) -> None:
    """Message rows of every run of the thread, in seq order; other threads and categories excluded."""
    store.write([make_run("r1", "t1", messages=3), make_run("x", "t2")])
    store.write([make_run("r2", "t1", messages=2, start=1)])
    messages = store.list_messages("t1")
    assert [(m.run_id, m.event_type) for m in messages] == [
        ("r1", "human_message"),
        ("r1", "ai_message"),
        ("r1", "ai_message"),
        ("r2", "human_message"),
        ("r2", "ai_message"),
    ]
    assert [m.seq for m in messages] == sorted(m.seq for m in messages)
    last_two = store.list_messages("t1", before_seq=messages[-1].seq + 1, limit=2)
    assert [m.seq for m in last_two] == [m.seq for m in messages[-2:]]
    assert [m.seq for m in store.list_messages("t1", after_seq=messages[1].seq, limit=2)] == [
        m.seq for m in messages[2:4]
    ]
    assert store.list_messages("nobody") == []


def test_list_runs_most_recent_first_with_filters(store: RunStore) -> None:
    """list_runs orders by started_at descending and filters by thread and status."""
    store.write([make_run("a", "t1", start=0), make_run("b", "t2", start=2, status="error")])
    store.write([make_run("c", "t1", start=1)])
    assert [r.run_id for r in store.list_runs()] == ["b", "c", "a"]
    assert [r.run_id for r in store.list_runs(thread_id="t1")] == ["c", "a"]
    assert [r.run_id for r in store.list_runs(status="error")] == ["b"]
    assert [r.run_id for r in store.list_runs(limit=1)] == ["b"]


def test_token_usage_totals_and_caller_split(store: RunStore) -> None:
    """token_usage sums the runs selected by run or thread and merges usage_by_caller."""
    store.write(
        [
            make_run("a", "t1", tokens=(10, 5), callers={"lead_agent": 9, "subagent:researcher": 6}),
            make_run("b", "t1", tokens=(4, 2), callers={"lead_agent": 4, "middleware:summarization": 2}),
            make_run("c", "t2", tokens=(100, 1)),
        ]
    )
    t1 = store.token_usage(thread_id="t1")
    assert (t1.run_count, t1.input_tokens, t1.output_tokens, t1.total_tokens) == (2, 14, 7, 21)
    assert t1.by_caller == {"lead_agent": 13, "middleware:summarization": 2, "subagent:researcher": 6}
    assert (t1.lead_agent_tokens, t1.subagent_tokens, t1.middleware_tokens) == (13, 6, 2)
    one = store.token_usage(run_id="c")
    assert (one.run_count, one.total_tokens, one.by_caller) == (1, 101, {"lead_agent": 101})
    assert store.token_usage().total_tokens == 21 + 101
    assert store.token_usage(run_id="c", thread_id="t1").run_count == 0


def test_unknown_ids_read_as_empty(store: RunStore) -> None:
    """Unknown run / thread ids give None or empty results, not errors."""
    assert store.get_run("nope") is None
    assert store.list_events("nope") == []
    assert store.list_runs(thread_id="nope") == []
    assert store.token_usage(run_id="nope").run_count == 0


def test_values_round_trip_exactly(store: RunStore) -> None:
    """Unicode, newlines, 1 MB content, nested metadata and µs UTC timestamps come back unchanged."""
    write = make_run("r1", "t1")
    big = 'λ→🚀\n"quoted"\t' + "x" * 1_000_000
    write.events[1].content = big
    write.events[1].metadata = {"nested": {"list": [1, 2.5, None, "ü"]}, "flag": True}
    store.write([write])
    stored = store.list_events("r1")
    assert stored == write.events
    assert stored[1].content == big
    assert stored[0].created_at.utcoffset() is not None
    run = store.get_run("r1")
    assert run == write.run


@pytest.mark.parametrize("bad_id", ["../../etc/x", "a/b\\c", "nul\x00byte", "é" * 5000, "..", ".", ""])
def test_hostile_ids_stay_inside_the_store(file_kind: str, tmp_path: Path, bad_id: str) -> None:
    """Run/thread ids with traversal, separators, NUL or huge length round-trip and write no outside file."""
    inside = tmp_path / "inside"
    inside.mkdir()
    location = _location(file_kind, inside)
    with DuckDBStore(location) if file_kind == "duckdb" else JsonlStore(location) as store:
        store.write([make_run(bad_id, bad_id)])
        assert [e.run_id for e in store.list_events(bad_id)] == [bad_id] * 8
        assert [m.thread_id for m in store.list_messages(bad_id)] == [bad_id] * 2
    assert [p for p in tmp_path.rglob("*") if p != inside and inside not in p.parents] == []
    assert not (inside / "journal" / "events" / "../../etc/x").exists()
    assert all(len(p.name) < 100 for p in inside.rglob("*"))


def test_close_is_idempotent_and_context_manager_closes(opener: Opener) -> None:
    """close() twice is fine; after close, use raises StoreError; `with` closes."""
    store = opener()
    store.close()
    store.close()
    with pytest.raises(StoreError):
        store.write([make_run("r1", "t1")])
    with opener() as again:  # type: ignore[attr-defined]
        again.write([make_run("r1", "t1")])
    with pytest.raises(StoreError):
        again.list_runs()


def _run_child(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": TESTS_DIR + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=120
    )


def test_disk_full_raises_store_error_and_writes_nothing_half(file_kind: str, tmp_path: Path) -> None:
    """With a tiny file-size limit (a full disk), write raises StoreError; reopened, no half run exists."""
    location = _location(file_kind, tmp_path)
    child = _run_child(
        f"""
        import resource, signal
        from store_batches import make_run
        from otel_runjournal.stores import open_store, StoreError
        store = open_store({str(location) + ("" if file_kind == "duckdb" else "/")!r})
        store.write([make_run("small", "t1")])
        store.close()
        store = open_store({str(location) + ("" if file_kind == "duckdb" else "/")!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
        try:
            store.write([make_run("big", "t1", content="y" * 600_000)])
        except StoreError as exc:
            print("STORE_ERROR", type(exc.__cause__).__name__)
        else:
            print("WROTE")
        """
    )
    assert "STORE_ERROR" in child.stdout, child.stdout + child.stderr
    with open_store(str(location) + ("" if file_kind == "duckdb" else "/")) as store:  # type: ignore[attr-defined]
        assert store.get_run("big") is None
        assert store.list_events("big") == []
        assert len(store.list_events("small")) == 8
        later = make_run("later", "t1")
        store.write([later])
        assert later.events[0].seq > max(e.seq for e in store.list_events("small"))


@pytest.mark.skipif(os.geteuid() != 0, reason="drops to the nobody user to get a read-only directory")
def test_read_only_directory_raises_store_error(file_kind: str) -> None:
    """A journal in a directory the process may not write to raises StoreError (not OSError)."""
    base = Path(tempfile.mkdtemp(prefix="rj-readonly-"))  # under /tmp, traversable by 'nobody'
    try:
        base.chmod(0o755)
        location = _location(file_kind, base)
        with DuckDBStore(location) if file_kind == "duckdb" else JsonlStore(location) as store:
            store.write([make_run("r1", "t1")])
        for path in [base, *base.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        child = _run_child(
            f"""
            import os
            from store_batches import make_run  # import before dropping privileges
            from otel_runjournal.stores import DuckDBStore, JsonlStore, StoreError
            batch = [make_run("r2", "t1")]
            os.setgid(65534); os.setuid(65534)
            try:
                store = {"DuckDBStore" if file_kind == "duckdb" else "JsonlStore"}({str(location)!r})
                store.write(batch)
            except StoreError as exc:
                print("STORE_ERROR", exc)
            else:
                print("WROTE")
            """
        )
        assert "STORE_ERROR" in child.stdout, child.stdout + child.stderr
    finally:
        for path in [base, *base.rglob("*")]:
            path.chmod(0o755)
        shutil.rmtree(base)


def test_open_store_picks_the_store_from_the_location(tmp_path: Path) -> None:
    """open_store maps file names, URLs and directories to the right store."""
    cases = {
        str(tmp_path / "a.duckdb"): DuckDBStore,
        f"duckdb://{tmp_path}/b.duckdb": DuckDBStore,
        f"jsonl://{tmp_path}/c": JsonlStore,
        str(tmp_path / "d") + "/": JsonlStore,
        str(tmp_path): JsonlStore,
    }
    for location, expected in cases.items():
        store = open_store(location)
        assert type(store) is expected, location
        store.close()


@pytest.mark.parametrize(
    "location", ["", "ftp:///x", "duckdb://host/x.duckdb", "jsonl:///d?x=1", "duckdb://", "plainfile"]
)
def test_open_store_rejects_malformed_locations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, location: str
) -> None:
    """Malformed or ambiguous locations raise a ValueError that says what to write instead."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError):
        open_store(location)


def test_open_store_reads_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an argument, open_store uses OTEL_RUNJOURNAL_STORE."""
    monkeypatch.setenv("OTEL_RUNJOURNAL_STORE", f"jsonl://{tmp_path}/env")
    store = open_store()
    assert isinstance(store, JsonlStore) and store.directory == str(tmp_path / "env")
    store.close()


def test_list_spans_gives_the_runs_span_rows(store: RunStore) -> None:
    """Every store reads back a run's span rows (the timeline's source) by start time, only that run's."""
    batch = [make_run("r1", "t1"), make_run("r2", "t1")]
    store.write(batch)
    spans = store.list_spans("r1")
    written = sorted(batch[0].spans, key=lambda s: (s.start_time, s.span_id))
    assert [(s.trace_id, s.span_id, s.name) for s in spans] == [
        (s.trace_id, s.span_id, s.name) for s in written
    ]
    assert {s.run_id for s in spans} == {"r1"}
    assert store.list_spans("no-such-run") == []


# -- retention (prune) --------------------------------------------------------------------------


def _events_and_spans(units: list[RunWrite]) -> tuple[int, int]:
    return sum(len(u.events) for u in units), sum(len(u.spans) for u in units)


def _journal(store: RunStore) -> dict[str, object]:
    """Everything the query API shows of every run (to compare before and after a prune)."""
    runs = store.list_runs(limit=1000)
    return {r.run_id: (r, store.list_events(r.run_id, limit=1000), store.list_spans(r.run_id)) for r in runs}


def test_prune_deletes_whole_old_runs_never_a_running_one(store: RunStore) -> None:
    """prune deletes runs started before the cut-off whole (events, spans, row), keeps open and newer ones."""
    old = [make_run("old1", "t1", start=0), make_run("old2", "t2", start=10, status="error")]
    running = make_run("open", "t3", start=5)
    running.run.status = "running"
    new = make_run("new", "t1", start=1000)
    store.write([*old, running, new])
    kept_before = {k: v for k, v in _journal(store).items() if k in ("open", "new")}
    result = store.prune(older_than=T0 + timedelta(minutes=500))
    events, spans = _events_and_spans(old)
    assert (result.runs, result.events, result.spans, result.dry_run) == (2, events, spans, False)
    for run_id in ("old1", "old2"):
        assert store.get_run(run_id) is None
        assert store.list_events(run_id) == [] and store.list_spans(run_id) == []
    assert _journal(store) == kept_before
    assert [e.seq for e in store.list_messages("t1")] == [
        e.seq for e in new.events if e.category == "message"
    ]
    assert store.prune(older_than=T0 + timedelta(minutes=500)).runs == 0


def test_prune_dry_run_counts_and_changes_nothing(store: RunStore) -> None:
    """--dry-run reports the runs, events and spans a prune would delete, and deletes none."""
    old = [make_run("a", "t1", start=0, tool_calls=2), make_run("b", "t2", start=1)]
    store.write([*old, make_run("c", "t1", start=100)])
    before = _journal(store)
    result = store.prune(older_than=T0 + timedelta(minutes=50), dry_run=True)
    assert (result.runs, result.events, result.spans) == (2, *_events_and_spans(old))
    assert result.dry_run and result.size_before is None
    assert _journal(store) == before


def test_prune_keep_errors_and_thread_filter(store: RunStore) -> None:
    """keep_errors spares failed runs; thread_id limits the prune to one thread."""
    store.write(
        [
            make_run("ok1", "t1", start=0),
            make_run("err1", "t1", start=1, status="error"),
            make_run("ok2", "t2", start=2),
        ]
    )
    cut = T0 + timedelta(minutes=60)
    assert store.prune(older_than=cut, keep_errors=True, thread_id="t1").runs == 1
    assert [r.run_id for r in store.list_runs(limit=10)] == ["ok2", "err1"]
    assert store.prune(older_than=cut, keep_errors=True).runs == 1
    assert [r.run_id for r in store.list_runs(limit=10)] == ["err1"]
    assert store.prune(older_than=cut).runs == 1
    assert store.list_runs() == []


def test_prune_never_lets_a_thread_reuse_seq(opener: Opener) -> None:
    """After every event of a thread is pruned, the thread goes on counting, also after a reopen."""
    store = opener()
    first, second = make_run("r1", "t1", start=0), make_run("r2", "t1", start=1)
    store.write([first, second])
    last = second.events[-1].seq
    assert store.prune(older_than=T0 + timedelta(days=1)).runs == 2
    assert store.list_messages("t1") == []
    third = make_run("r3", "t1", start=2)
    store.write([third])
    assert third.events[0].seq == last + 1
    store.close()
    reopened = opener()
    assert reopened.prune(older_than=T0 + timedelta(days=1)).runs == 1
    reopened.close()
    again = opener()
    fourth = make_run("r4", "t1", start=3)
    again.write([fourth])
    assert fourth.events[0].seq == third.events[-1].seq + 1


def test_prune_rejects_a_naive_cut_off(store: RunStore) -> None:
    """A cut-off without a timezone is a ValueError (it would be read in some local time)."""
    with pytest.raises(ValueError, match="timezone-aware"):
        store.prune(older_than=T0.replace(tzinfo=None))
