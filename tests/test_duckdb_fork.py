"""A process forked while its parent holds the DuckDB journal: a clear error, never rows that vanish."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from store_batches import make_run

from otel_runjournal.stores import DuckDBStore, StoreError

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _in_child(action: Callable[[], int]) -> int:
    """Fork; run ``action`` in the child and return its exit status (the child never returns)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = action()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_child_forked_while_the_parent_holds_the_file_refuses_to_write(tmp_path: Path) -> None:
    """The parent holds the file at the fork: the child's writes (through the inherited store or a new
    one) raise StoreError naming the fork, instead of going to a copy of the parent's DuckDB instance
    and never reaching the file; the child exits normally; the parent writes on."""
    path = tmp_path / "j.duckdb"
    parent = DuckDBStore(path, linger=math.inf)
    parent.write([make_run("before", "t")])

    def child() -> int:
        refused = 0
        for store in (parent, None):
            try:
                (store or DuckDBStore(path, timeout=1)).write([make_run("from-child", "t")])
            except StoreError as exc:
                refused += "forked while its parent held the file" in str(exc)
        return 0 if refused == 2 else 3

    assert _in_child(child) == 0
    parent.write([make_run("after", "t")])
    parent.close()
    with DuckDBStore(path, read_only=True) as reader:
        assert sorted(r.run_id for r in reader.list_runs()) == ["after", "before"]
        seqs = [e.seq for run in ("before", "after") for e in reader.list_events(run, limit=1000)]
        assert seqs == list(range(1, len(seqs) + 1))  # in order, none taken by the child's refused write


def test_a_child_forked_while_the_parent_does_not_hold_the_file_writes(tmp_path: Path) -> None:
    """The parent let go of the file before the fork: the child opens it and its run is journaled."""
    path = tmp_path / "j.duckdb"
    parent = DuckDBStore(path, linger=0)
    parent.write([make_run("parent", "t")])

    def child() -> int:
        with DuckDBStore(path, linger=0) as store:
            store.write([make_run("child", "t")])
        return 0

    assert _in_child(child) == 0
    with DuckDBStore(path, read_only=True) as reader:
        assert sorted(r.run_id for r in reader.list_runs()) == ["child", "parent"]
    parent.close()
