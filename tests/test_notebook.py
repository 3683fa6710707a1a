"""The notebook habit: querying the journal with SQL in the process that just wrote it."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest

from otel_runjournal.demo.agent import build_agent
from otel_runjournal.stores.base import StoreError
from otel_runjournal.wiring import configure


def test_sql_on_the_writing_store_works_at_once(tmp_path: Path) -> None:
    """Right after a run, `configured.store.sql(...)` answers from the file the store holds (where a
    second `duckdb.connect(path)`, read-only or not, is refused), a plain `duckdb.connect(path)` works
    once the store let go, and the store then answers through that connection's instance, as the
    README says."""
    path = str(tmp_path / "nb.duckdb")
    wired = configure(path, set_global=False)
    try:
        build_agent().invoke(
            {"messages": [("user", "hi")]},
            {"callbacks": [wired.handler], "configurable": {"thread_id": "nb"}},
        )
        wired.force_flush()
        store = wired.store
        assert store.sql("select status, thread_id from runs") == [("success", "nb")]  # type: ignore[attr-defined]
        columns, rows = store.query("select caller, llm_calls from tokens_by_caller order by 1")  # type: ignore[attr-defined]
        assert columns == ["caller", "llm_calls"] and rows and all(n > 0 for _, n in rows)
        for read_only in (True, False):
            with pytest.raises(duckdb.Error, match="Unique file handle conflict"):
                duckdb.connect(path, read_only=read_only)
        deadline = time.monotonic() + 10
        while True:  # the store lets go of the file 1 s (its linger) after its last operation
            try:
                con = duckdb.connect(path)
                break
            except duckdb.Error:
                assert time.monotonic() < deadline, "the store kept the file"
                time.sleep(0.1)
        try:
            assert con.execute("select count(*) from runs").fetchall() == [(1,)]
            # the store now shares the instance of the user's connection (DuckDB's cached instance)
            assert store.sql("select count(*) from runs") == [(1,)]  # type: ignore[attr-defined]
            with pytest.raises(StoreError, match="read-only"):
                store.sql("delete from runs")  # type: ignore[attr-defined]
        finally:
            con.close()
        assert store.sql("select count(*) from runs") == [(1,)]  # type: ignore[attr-defined]
    finally:
        wired.shutdown()
