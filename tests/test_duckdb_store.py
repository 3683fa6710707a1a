"""DuckDBStore specifics: schema and migrations, views, read-only use, both insert paths."""

from __future__ import annotations

import copy
import json
import os
from datetime import timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest
from store_batches import make_run

from otel_runjournal.stores import DuckDBStore, StoreError
from otel_runjournal.stores.duckdb import insert as _duckdb_insert

EXPECTED_COLUMNS = {
    "run_events": "thread_id run_id seq event_type category content metadata created_at trace_id span_id",
    "runs": "run_id thread_id trace_id name status started_at ended_at duration_ms input_tokens "
    "output_tokens total_tokens cached_input_tokens reasoning_tokens llm_call_count lead_agent_tokens "
    "subagent_tokens "
    "middleware_tokens message_count first_human_message last_ai_message error usage_by_caller "
    "service_name cost_usd unpriced_call_count complete",
    "spans": "trace_id span_id parent_span_id run_id name kind start_time end_time duration_ms status_code "
    "status_message attributes events resource",
    "thread_seq": "thread_id last_seq",
}


def test_schema_has_the_contract_columns_and_recorded_migrations(tmp_path: Path) -> None:
    """Tables carry DESIGN.md's columns in order; migrations are recorded by version and name."""
    with DuckDBStore(tmp_path / "j.duckdb") as store:
        for table, columns in EXPECTED_COLUMNS.items():
            rows = store.sql(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1 "
                "ORDER BY ordinal_position",
                [table],
            )
            assert [r[0] for r in rows] == columns.split(), table
        assert store.schema_versions() == [
            (1, "create_tables"),
            (2, "create_views"),
            (3, "views_count_failed_model_calls"),
            (4, "views_count_model_calls_once"),
            (5, "runs_service_name"),
            (6, "cost"),
        ]
    with DuckDBStore(tmp_path / "j.duckdb") as again:  # reopening applies nothing twice
        assert len(again.schema_versions()) == 6


def test_views_answer_common_questions(tmp_path: Path) -> None:
    """tokens_by_model/by_caller/per_day, slowest_tools, error_runs and messages return the expected rows."""
    with DuckDBStore(tmp_path / "j.duckdb") as store:
        store.write([make_run("a", "t1", tokens=(10, 5)), make_run("b", "t1", tokens=(4, 2), status="error")])
        assert store.sql(
            "SELECT model, llm_calls, input_tokens, output_tokens, total_tokens FROM tokens_by_model"
        ) == [("m", 2, 14, 7, 21)]
        assert store.sql("SELECT caller, total_tokens FROM tokens_by_caller") == [("lead_agent", 21)]
        assert store.sql("SELECT CAST(day AS VARCHAR), total_tokens FROM tokens_per_day") == [
            ("2025-03-01", 21)
        ]
        assert store.sql("SELECT tool_name, calls, errors, max_ms FROM slowest_tools") == [("t", 2, 0, 30.0)]
        assert store.sql("SELECT run_id, error FROM error_runs") == [("b", "boom")]
        assert [r[0] for r in store.sql("SELECT event_type FROM messages")] == [
            "human_message",
            "ai_message",
        ] * 2


def test_read_only_store_reads_but_never_writes(tmp_path: Path) -> None:
    """read_only=True answers queries, refuses write(), and needs an existing journal."""
    path = tmp_path / "j.duckdb"
    with pytest.raises(StoreError, match="no run journal"):
        DuckDBStore(path, read_only=True)
    with DuckDBStore(path) as store:
        store.write([make_run("r1", "t1")])
    with DuckDBStore(path, read_only=True) as reader:
        assert reader.get_run("r1") is not None
        with pytest.raises(StoreError, match="read-only"):
            reader.write([make_run("r2", "t1")])


@pytest.mark.skipif(_duckdb_insert.pa is None, reason="pyarrow not installed")
def test_pyarrow_and_pure_python_paths_store_the_same_rows(tmp_path: Path) -> None:
    """Both columnar insert paths produce identical events, runs and spans."""
    results = []
    for arrow in (True, False):
        with DuckDBStore(tmp_path / f"{arrow}.duckdb", arrow=arrow) as store:
            write = make_run("r1", "t1")
            write.events[1].content = "ünï\ncode"
            store.write([write])
            spans = store.sql(
                "SELECT * EXCLUDE (attributes), attributes::VARCHAR FROM spans ORDER BY span_id"
            )
            results.append((store.list_events("r1"), store.get_run("r1"), spans))
    assert results[0] == results[1]


@pytest.mark.skipif(_duckdb_insert.pa is None, reason="pyarrow not installed")
def test_a_resource_shared_by_every_span_row_is_stored_whole_on_each(tmp_path: Path) -> None:
    """Span rows sharing one resource dict (as the exporter makes them) each store that resource,
    and a run written again in a later batch replaces its summary instead of duplicating it."""
    shared = {"service.name": "svc", "telemetry.sdk.version": "1.0", "list": [1, "ü"]}
    writes = [make_run(f"r{i}", f"t{i}") for i in range(6)]
    for write in writes:
        for span in write.spans:
            span.resource = shared
    writes[0].spans[0].resource = {"service.name": "other"}
    with DuckDBStore(tmp_path / "j.duckdb", arrow=True) as store:
        store.write(writes)
        rows = store.sql("SELECT run_id, span_id, resource::VARCHAR FROM spans")
        again = make_run("r1", "t1", tokens=(7, 3))
        again.spans = []
        store.write([again])
        runs = store.sql("SELECT run_id, input_tokens FROM runs ORDER BY run_id")
    expected = {(s.run_id, s.span_id): s.resource for w in writes for s in w.spans}
    assert len(rows) == len(expected)
    assert {(r, s): json.loads(text) for r, s, text in rows} == expected
    latest = {w.run.run_id: w.run.input_tokens for w in [*writes, again]}
    assert runs == sorted(latest.items())
    assert latest["r1"] != writes[1].run.input_tokens


def test_newer_schema_is_refused_with_advice(tmp_path: Path) -> None:
    """A journal written by a newer version is not touched; the error says to upgrade."""
    path = tmp_path / "j.duckdb"
    DuckDBStore(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_migrations VALUES (999, 'future', now())")
    con.close()
    with pytest.raises(StoreError, match="upgrade"):
        DuckDBStore(path)


def test_failed_transaction_leaves_nothing_and_no_seq(tmp_path: Path) -> None:
    """A batch that fails inside the transaction (bad category) leaves no rows and seq unassigned."""
    with DuckDBStore(tmp_path / "j.duckdb") as store:
        store.write([make_run("ok", "t1")])
        bad = make_run("bad", "t1")
        bad.events[3].category = "not-a-category"
        with pytest.raises(StoreError):
            store.write([bad])
        assert store.get_run("bad") is None and store.list_events("bad") == []
        assert all(e.seq == 0 for e in bad.events)
        assert store.sql("SELECT last_seq FROM thread_seq") == [(8,)]


def test_linger_zero_releases_the_file_after_each_operation(tmp_path: Path) -> None:
    """With linger=0 another connection (another process's view) can open the file between operations."""
    path = tmp_path / "j.duckdb"
    with DuckDBStore(path, linger=0) as store:
        store.write([make_run("r1", "t1")])
        assert store._con is None
        con = duckdb.connect(str(path), read_only=True)
        assert con.execute("SELECT count(*) FROM run_events").fetchone() == (8,)
        con.close()


def test_two_stores_in_one_process_interleave_without_reusing_seq(tmp_path: Path) -> None:
    """Two DuckDBStores on one file in one process share the remembered seqs: no seq reused."""
    a, b = DuckDBStore(tmp_path / "j.duckdb"), DuckDBStore(tmp_path / "j.duckdb")
    runs = [make_run(f"r{i}", "t1") for i in range(6)]
    for i, run in enumerate(runs):
        (a if i % 2 else b).write([run])
    seqs = [e.seq for run in runs for e in run.events]
    assert seqs == list(range(1, len(seqs) + 1))
    a.close()
    b.close()


def test_seq_is_read_again_after_the_file_was_released(tmp_path: Path) -> None:
    """Once the process let go of the file, a write reads thread_seq again (another process may have
    advanced it), so remembered seqs never hand out a seq twice."""
    path = tmp_path / "j.duckdb"
    with DuckDBStore(path, linger=0) as store:
        first = make_run("r1", "t1")
        store.write([first])
        assert first.events[-1].seq == 8
        con = duckdb.connect(str(path))  # stands in for another process writing in between
        con.execute("UPDATE thread_seq SET last_seq = 100 WHERE thread_id = 't1'")
        con.close()
        second = make_run("r2", "t1")
        store.write([second])
        assert second.events[0].seq == 101


def test_failed_write_forgets_remembered_seqs(tmp_path: Path) -> None:
    """After a failed transaction the next write of the thread continues from what was committed."""
    with DuckDBStore(tmp_path / "j.duckdb", linger=60) as store:
        store.write([make_run("ok", "t1")])
        bad = make_run("bad", "t1")
        bad.events[-1].category = "nope"
        with pytest.raises(StoreError):
            store.write([bad])
        after = make_run("after", "t1")
        store.write([after])
        assert after.events[0].seq == 9


@pytest.mark.parametrize("arrow", [False, True] if _duckdb_insert.pa is not None else [False])
def test_awkward_values_round_trip_on_both_insert_paths(tmp_path: Path, arrow: bool) -> None:
    """NUL, emoji, newlines, NaN, ints beyond 64 bits, non-string keys and naive timestamps are stored
    (JSON made valid: NaN as null, big ints kept) on the pyarrow and the read_json (no pyarrow) path."""
    with DuckDBStore(tmp_path / "j.duckdb", arrow=arrow) as store:
        write = make_run("r\x00🚀", "t\n1")
        write.events[1].content = "a\x00b\n🚀"
        write.events[1].metadata = {"nan": float("nan"), "big": 2**70, 1: "int key", "nested": [1.5, None]}
        write.events[2].created_at = write.events[2].created_at.replace(tzinfo=None)
        write.spans[0].attributes = {"x": float("inf")}
        store.write([write])
        stored = store.list_events("r\x00🚀")
        assert stored[1].content == "a\x00b\n🚀"
        assert stored[1].metadata == {"nan": None, "big": 2**70, "1": "int key", "nested": [1.5, None]}
        assert stored[2].created_at == write.events[2].created_at.replace(tzinfo=timezone.utc)
        assert store.sql("SELECT attributes::VARCHAR FROM spans WHERE span_id = $1", ["cd" * 8]) == [
            ('{"x":null}',)
        ]


@pytest.mark.parametrize("arrow", [False, True] if _duckdb_insert.pa is not None else [False])
def test_hard_text_huge_values_and_deep_json_are_stored_exactly(tmp_path: Path, arrow: bool) -> None:
    """Line and paragraph separators, quotes, backslashes, NULs, non-BMP text, a value larger than
    read_json's default 16 MB document and JSON nested 60 deep come back exactly as written (events,
    spans and the run summary), and a run summary orjson refuses keeps its values, on both paths."""
    hard = 'a"b\\c\x00d\re\nf\u2028g\u2029h\tñ🚀\x7f\x1f'
    huge = "x€" * (9 * 2**20)  # 27 MB of UTF-8: the batch document outgrows the default limit
    deep: object = ["leaf", hard]
    for i in range(60):
        deep = {f"k{i}ü": deep, "n": i, "f": 0.1 * i}
    write = make_run("r1", "t1")
    write.events[1].content = hard
    write.events[2].content = huge
    write.events[3].metadata = {"deep": deep, hard: [hard, None, True, -(2**63)]}
    write.spans[0].attributes = {"deep": deep, "é": hard}
    write.spans[0].status_message = hard
    write.run.first_human_message = hard
    write.run.usage_by_caller = {hard: 7}
    odd = make_run("r2", "t2")  # orjson refuses these: the stdlib encodes the run row instead
    odd.run.usage_by_caller = {"big": 2**70, 3: 1}  # type: ignore[dict-item]
    expected_events = [copy.deepcopy(e) for e in write.events]
    expected_span = copy.deepcopy(write.spans[0])
    expected_run = copy.deepcopy(write.run)
    with DuckDBStore(tmp_path / "j.duckdb", arrow=arrow) as store:
        store.write([write, odd])
        stored_odd = store.get_run("r2")
        assert stored_odd is not None and stored_odd.usage_by_caller == {"big": 2**70, "3": 1}
        for seq, event in enumerate(expected_events, start=1):
            event.seq = seq
        assert store.list_events("r1") == expected_events
        assert [s for s in store.list_spans("r1") if s.span_id == expected_span.span_id] == [expected_span]
        assert store.get_run("r1") == expected_run


def test_pages_of_interleaved_runs_read_back_every_field(tmp_path: Path) -> None:
    """A page of a thread or run read while other threads' rows sit between its rows: every field exact."""
    written = []
    with DuckDBStore(tmp_path / "j.duckdb") as store:
        for i in range(6):  # each write interleaves three threads' runs, so a thread's rows are far apart
            batch = [
                make_run(f"r{i}-{t}", f"t{t}", start=i, messages=3, tool_calls=2, content=f"text {i} {t} ")
                for t in range(3)
            ]
            for unit in batch:
                for n, event in enumerate(unit.events):
                    event.metadata = {**event.metadata, "n": n, "run": unit.run.run_id}
            store.write(batch)
            written.extend(copy.deepcopy(batch))
    by_thread = sorted((e for u in written for e in u.events if e.thread_id == "t1"), key=lambda e: e.seq)
    messages = [e for e in by_thread if e.category == "message"]
    with DuckDBStore(tmp_path / "j.duckdb", read_only=True) as reader:
        assert reader.list_messages("t1", limit=1000) == messages
        assert reader.list_messages("t1", before_seq=messages[-1].seq, limit=4) == messages[-5:-1]
        run = [e for e in by_thread if e.run_id == "r3-1"]
        assert reader.list_events("r3-1") == run
        assert reader.list_events("r3-1", after_seq=run[2].seq, limit=3) == run[3:6]
        tools = [e for e in run if e.event_type in ("tool_start", "tool_end")]
        assert reader.list_events("r3-1", event_types=["tool_start", "tool_end"]) == tools


def test_json_path_prepares_once_per_connection_and_leaves_no_files(tmp_path: Path) -> None:
    """Later writes on one connection reuse the prepared inserts with new data; nothing is left in temp."""
    store = DuckDBStore(tmp_path / "j.duckdb", arrow=False, linger=float("inf"))
    try:
        store.write([make_run("a", "t1", content="first ")])
        batch_dir = store._batches.dir
        later = [make_run("b", "t1", start=1, content="second "), make_run("c", "t2", start=2)]
        store.write(later)
        assert store._batches.dir == batch_dir and os.listdir(batch_dir) == []  # files gone after each write
        assert [r.run_id for r in store.list_runs()] == ["c", "b", "a"]
        assert store.list_events("b") == later[0].events  # the second batch's rows, not the first's again
        assert store.list_spans("c") == sorted(later[1].spans, key=lambda s: (s.start_time, s.span_id))
    finally:
        store.close()
    assert not os.path.exists(batch_dir)  # removed with the connection


def test_json_path_reconnecting_caches_no_statement_per_connection(tmp_path: Path) -> None:
    """A connection per write (linger 0) releases its batch files each time and grows no cached statement."""
    with DuckDBStore(tmp_path / "j.duckdb", arrow=False, linger=0) as store:
        store.write([make_run("a", "t1")])
        cached = (
            _duckdb_insert._formatted.cache_info().currsize,
            _duckdb_insert._runs_rows_sql.cache_info().currsize,
        )
        for i in range(3):
            store.write([make_run(f"b{i}", "t1", start=i + 1)])
        assert (
            _duckdb_insert._formatted.cache_info().currsize,
            _duckdb_insert._runs_rows_sql.cache_info().currsize,
        ) == cached
        assert store._batches is None  # released with its connection after each write
        assert len(store.list_runs()) == 4


def test_json_path_sends_a_shared_resource_once_and_stores_it_on_every_span(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without pyarrow, a resource dict shared by span rows travels once in the batch document, and
    every span row stores its own resource (the shared one, another one, an equal copy)."""
    shared = {"service.name": "svc", "marker": "shared-resource-7f3a", "list": [1, "ü", None]}
    writes = [make_run(f"r{i}", f"t{i}") for i in range(6)]
    for write in writes:
        for span in write.spans:
            span.resource = shared
    writes[0].spans[0].resource = {"service.name": "other"}
    writes[1].spans[2].resource = copy.deepcopy(shared)  # equal, but not the same object
    documents: dict[str, bytes] = {}
    real_file = _duckdb_insert.Batches.file

    def recording_file(self: _duckdb_insert.Batches, name: str, data: bytes) -> Any:
        documents[name] = data
        return real_file(self, name, data)

    monkeypatch.setattr(_duckdb_insert.Batches, "file", recording_file)
    with DuckDBStore(tmp_path / "j.duckdb", arrow=False) as store:
        store.write(writes)
        rows = store.sql("SELECT run_id, span_id, resource::VARCHAR FROM spans")
        spans = store.list_spans("r1")
    expected = {(s.run_id, s.span_id): s.resource for w in writes for s in w.spans}
    assert len(rows) == len(expected) == 18
    assert {(r, s): json.loads(text) for r, s, text in rows} == expected
    assert spans == sorted(writes[1].spans, key=lambda s: (s.start_time, s.span_id))
    assert documents["spans"].count(b"shared-resource-7f3a") == 2  # the shared object once, the copy once
