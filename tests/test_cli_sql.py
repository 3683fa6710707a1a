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
    from otel_runjournal.stores.jsonl.store import JsonlStore

    JsonlStore(tmp_path / "j").close()
    jsonl = _cli("sql", "select 1", "--store", f"jsonl://{tmp_path / 'j'}")
    assert jsonl.exit_code == 1 and "read_json" in jsonl.output


REFUSED = [
    "copy runs to '{tmp}/out.csv'",
    "copy (select 1) to '{tmp}/out.parquet' (format parquet)",
    "export database '{tmp}/dump'",
    "select * from read_csv('/etc/passwd')",
    "select * from read_text('/etc/hostname')",
    "select * from glob('/etc/*')",
    "attach '{tmp}/other.duckdb' as other",
    "install httpfs",
    "load httpfs",
    "set threads = 4",
    "reset threads",
    "checkpoint",
    "pragma enable_profiling",
    "call pragma_version()",
    "create table t as select 1",
    "delete from runs",
    "begin transaction",
    "select 1; select 2",
]


@pytest.mark.parametrize("query", REFUSED)
def test_sql_sees_the_journal_and_nothing_else(journal: tuple[str, Any], tmp_path: Path, query: str) -> None:
    """File reads/writes outside the journal, extensions, settings, checkpoints, attaching and more
    than one statement are each refused with one line; nothing is written anywhere."""
    location, _ = journal
    journal_dir = Path(location).parent
    before = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in journal_dir.iterdir())
    result = _cli("sql", query.format(tmp=tmp_path), "--store", location)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert list(tmp_path.iterdir()) == []
    assert sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in journal_dir.iterdir()) == before


@pytest.mark.parametrize("query", ["", ";", " ; ; ", "/* only a comment */"])
def test_empty_sql_is_one_line(journal: tuple[str, Any], query: str) -> None:
    """An empty statement gives one line saying what to write, not a traceback."""
    result = CliRunner().invoke(cli, ["sql", query, "--store", journal[0]])
    assert (result.exit_code == 1 and result.exception is None) or isinstance(result.exception, SystemExit)
    assert result.output.strip().splitlines() == [
        "Error: no SQL statement given (example: select * from runs limit 5)"
    ]


@pytest.mark.parametrize("query", ["describe runs", "show tables", "summarize runs", "from runs limit 1"])
def test_reading_statements_run(journal: tuple[str, Any], query: str) -> None:
    """DESCRIBE, SHOW, SUMMARIZE and FROM-first queries are reading statements and run."""
    assert _cli("sql", query, "--store", journal[0]).exit_code == 0


def test_wide_results_print_one_record_per_block(journal: tuple[str, Any]) -> None:
    """`select * from runs` at 80 columns prints one block per run (column, value lines), every line
    within 80 columns and every run id whole."""
    location, demo = journal
    result = CliRunner().invoke(
        cli, ["sql", "select * from runs", "--store", location], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert sum(line.startswith("-- record") for line in lines) == len(demo.run_ids)
    assert all(any(run_id in line for line in lines) for run_id in demo.run_ids)
    assert len(lines) < 40 * len(demo.run_ids)  # not a column of one letter per line


def test_empty_result_is_a_table(journal: tuple[str, Any]) -> None:
    """A query with no rows exits 0 with '0 rows' (and [] with --json)."""
    location, _ = journal
    table = _cli("sql", "select * from runs where false", "--store", location)
    assert table.exit_code == 0 and "0 rows" in table.output
    assert (
        json.loads(_cli("sql", "select * from runs where false", "--store", location, "--json").output) == []
    )
