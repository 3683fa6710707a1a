"""`otel-runjournal prune`: retention from the command line, on every store kind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pg_server import Schema
from store_batches import aged_run

from otel_runjournal.cli.main import cli
from otel_runjournal.records import RunWrite
from otel_runjournal.stores import open_store


def _cli(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env={"COLUMNS": "160"})


@pytest.fixture(params=["duckdb", "jsonl", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        schema = Schema()
        yield schema.url
        schema.drop()
    else:
        yield str(tmp_path / "j.duckdb") if request.param == "duckdb" else f"jsonl:{tmp_path}/j"


def _journal(location: str) -> list[RunWrite]:
    units = [
        aged_run("old-ok", "t1", 40),
        aged_run("old-err", "t1", 35, status="error"),
        aged_run("old-other", "t2", 31),
        aged_run("recent", "t1", 2),
    ]
    with open_store(location) as store:  # type: ignore[attr-defined]
        store.write(units)
    return units


def _run_ids(location: str) -> list[str]:
    with open_store(location, read_only=True) as store:  # type: ignore[attr-defined]
        return sorted(r.run_id for r in store.list_runs())


def test_prune_dry_run_then_prune_by_age_errors_and_thread(location: str) -> None:
    """--dry-run counts and keeps everything; then --keep-errors, --thread and plain prunes delete."""
    units = {u.run.run_id: u for u in _journal(location)}
    result = _cli("prune", "--older-than", "30d", "--dry-run", "--json", "--store", location)
    assert result.exit_code == 0, result.output
    old = [units[r] for r in ("old-ok", "old-err", "old-other")]
    report = json.loads(result.output)
    assert (report["runs"], report["events"], report["spans"], report["dry_run"]) == (
        3,
        sum(len(u.events) for u in old),
        sum(len(u.spans) for u in old),
        True,
    )
    assert _run_ids(location) == sorted(units)
    result = _cli("prune", "--older-than", "30d", "--keep-errors", "--thread", "t1", "--store", location)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"deleted 1 run ({len(units['old-ok'].events)} events,")
    assert _run_ids(location) == ["old-err", "old-other", "recent"]
    assert _cli("prune", "--older-than", "4w", "--store", location).exit_code == 0
    assert _run_ids(location) == ["recent"]


def test_prune_refuses_a_missing_journal_and_bad_ages(tmp_path: Path) -> None:
    """No journal at the location: one error line and nothing created; a bad age is a usage error."""
    missing = tmp_path / "none.duckdb"
    result = _cli("prune", "--older-than", "30d", "--store", str(missing))
    assert result.exit_code == 1 and "no run journal at" in result.output
    assert not missing.exists()
    for age in ("30", "0d", "-1d", "month"):
        result = _cli("prune", "--older-than", age, "--store", str(missing))
        assert result.exit_code == 2 and "--older-than" in result.output


def test_prune_compact_shrinks_duckdb_and_is_refused_elsewhere(tmp_path: Path) -> None:
    """--compact gives a DuckDB file's space back; on a JSONL journal it is a one-line error."""
    duck = str(tmp_path / "j.duckdb")
    with open_store(duck) as store:  # type: ignore[attr-defined]
        store.write([aged_run(f"r{i}", "t", 60 - i / 10, "success") for i in range(200)])
    result = _cli("prune", "--older-than", "30d", "--compact", "--json", "--store", duck)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["runs"] == 200 and report["size_after"] < report["size_before"]
    assert Path(duck).stat().st_size == report["size_after"]
    jsonl = f"jsonl:{tmp_path}/j"
    _journal(jsonl)
    result = _cli("prune", "--older-than", "30d", "--compact", "--store", jsonl)
    assert result.exit_code == 1 and "--compact is for DuckDB" in result.output
