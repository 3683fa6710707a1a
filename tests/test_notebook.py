"""The notebook habit: querying the journal with SQL in the process that just wrote it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from otel_runjournal.demo.agent import build_agent
from otel_runjournal.stores.base import StoreError
from otel_runjournal.wiring import configure


def test_sql_on_the_writing_store_works_at_once(tmp_path: Path) -> None:
    """Right after a run, `configured.store.sql(...)` answers from the file the store holds (where a
    second `duckdb.connect(path, read_only=True)` is refused), and a plain `duckdb.connect(path)` with
    the default configuration works too, as the README says."""
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
        with pytest.raises(duckdb.Error, match="different configuration"):
            duckdb.connect(path, read_only=True)
        con = duckdb.connect(path)
        try:
            assert con.execute("select count(*) from runs").fetchall() == [(1,)]
        finally:
            con.close()
        with pytest.raises(StoreError, match="read-only"):
            store.sql("delete from runs")  # type: ignore[attr-defined]
        assert store.sql("select count(*) from runs") == [(1,)]  # type: ignore[attr-defined]
    finally:
        wired.shutdown()
