"""The process's writer instance: DuckDB stores attach their files to one instance and detach to let go."""

from __future__ import annotations

import math
import multiprocessing
from pathlib import Path

import duckdb
import pytest
from store_batches import make_run

from otel_runjournal.stores import DuckDBStore


def _runs(path: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT run_id, thread_id FROM runs ORDER BY run_id").fetchall()
    finally:
        con.close()


def test_stores_of_two_files_in_one_process_each_get_their_own_schema_and_rows(tmp_path: Path) -> None:
    """A second file attached beside a held one is migrated and written on its own (the schema check
    does not see the other file's tables)."""
    a_path, b_path = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    with DuckDBStore(a_path, linger=math.inf) as a:
        a.write([make_run("ra", "ta")])
        with DuckDBStore(b_path, linger=math.inf) as b:
            assert len(b.schema_versions()) == 6
            assert b.sql("SELECT count(*) FROM runs") == [(0,)]
            b.write([make_run("rb", "tb")])
            a.write([make_run("ra2", "ta")])
            assert b.sql("SELECT run_id FROM runs") == [("rb",)]
    assert _runs(a_path) == [("ra", "ta"), ("ra2", "ta")]
    assert _runs(b_path) == [("rb", "tb")]


def test_the_file_is_let_go_when_the_last_store_of_the_process_lets_go(tmp_path: Path) -> None:
    """Two stores of one file share its attachment: it is held (another connection refused) until both
    let go, and then the file holds both stores' rows with seqs continued across them."""
    path = tmp_path / "j.duckdb"
    first, second = DuckDBStore(path, linger=math.inf), DuckDBStore(path, linger=math.inf)
    one, two = make_run("r1", "t1"), make_run("r2", "t1")
    first.write([one])
    second.write([two])
    assert two.events[0].seq == one.events[-1].seq + 1
    first.close()
    with pytest.raises(duckdb.Error):
        duckdb.connect(str(path), read_only=True)
    second.close()
    assert _runs(path) == [("r1", "t1"), ("r2", "t1")]


def _write_in_child(path: str) -> None:
    with DuckDBStore(path, linger=0) as store:
        store.write([make_run("child", "t1")])


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this OS")
def test_a_forked_child_writes_through_an_instance_of_its_own(tmp_path: Path) -> None:
    """A child forked after the parent used the writer instance opens the file with a new one (the
    parent's DuckDB state is not the child's), and the parent then reads the child's run."""
    path = tmp_path / "j.duckdb"
    with DuckDBStore(path, linger=0) as store:
        parent = make_run("parent", "t1")
        store.write([parent])
        child = multiprocessing.get_context("fork").Process(target=_write_in_child, args=(str(path),))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert {r.run_id for r in store.list_runs()} == {"child", "parent"}
        seqs = [e.seq for e in store.list_events("child")]
        assert seqs[0] == parent.events[-1].seq + 1
