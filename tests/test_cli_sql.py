"""`otel-runjournal sql`: read-only SQL over a real DuckDB journal, clear errors otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from otel_runjournal.cli.demo_run import run_demo
from otel_runjournal.cli.main import cli


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    """A DuckDB journal holding a small demo (3 successful runs, 1 failed)."""
    location = str(tmp_path_factory.mktemp("sql") / "journal.duckdb")
    return location, run_demo(location, runs=3)


def _cli(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env={"COLUMNS": "160"})


def test_sql_json_matches_the_query_api(journal: tuple[str, Any]) -> None:
    """Token totals by caller from SQL equal the store's own token_usage split."""
    location, _ = journal
    result = _cli("sql", "select caller, total_tokens from tokens_by_caller", "--store", location, "--json")
    assert result.exit_code == 0, result.output
    by_sql = {row["caller"]: row["total_tokens"] for row in json.loads(result.output)}
    from otel_runjournal import open_store

    store = open_store(location)
    try:
        usage = store.token_usage()
    finally:
        store.close()
    assert by_sql == {k: v for k, v in usage.by_caller.items() if v}
    assert set(by_sql) == {"lead_agent", "subagent:researcher", "middleware:summarization"}


def test_sql_table_lists_columns_and_rows(journal: tuple[str, Any]) -> None:
    """The table output names the columns and counts the rows."""
    location, demo = journal
    result = _cli("sql", "select run_id, status from runs order by run_id", "--store", location)
    assert result.exit_code == 0, result.output
    assert "run_id" in result.output and "status" in result.output
    assert f"{len(demo.run_ids)} rows" in result.output


def test_sql_is_read_only(journal: tuple[str, Any]) -> None:
    """A writing statement fails with one line and leaves the journal intact."""
    location, demo = journal
    result = _cli("sql", "delete from runs", "--store", location)
    assert result.exit_code == 1
    assert "read-only" in result.output and "Traceback" not in result.output
    count = json.loads(_cli("sql", "select count(*) n from runs", "--store", location, "--json").output)
    assert count == [{"n": len(demo.run_ids)}]


def test_sql_errors_are_one_line(tmp_path: Path) -> None:
    """Missing store, JSONL directory and bad SQL each give a one-line error, exit status 1."""
    missing = _cli("sql", "select 1", "--store", str(tmp_path / "none.duckdb"))
    assert missing.exit_code == 1 and "no run journal" in missing.output
    jsonl = _cli("sql", "select 1", "--store", f"jsonl://{tmp_path}")
    assert jsonl.exit_code == 1 and "read_json" in jsonl.output
