"""`serve --retention`: the journal is pruned on a schedule while serve runs."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from serve_helpers import serving
from store_batches import aged_run

from otel_runjournal.cli.main import cli
from otel_runjournal.serve.retention import Retention
from otel_runjournal.stores import open_store


def _run_ids(location: str) -> list[str]:
    with open_store(location, read_only=True) as store:  # type: ignore[attr-defined]
        return sorted(r.run_id for r in store.list_runs())


@pytest.mark.parametrize("kind", ["duckdb", "jsonl"])
def test_serve_retention_prunes_old_runs_while_serving(kind: str, tmp_path: Path) -> None:
    """With retention 30d, serve deletes the runs older than 30 days and keeps the newer ones."""
    location = str(tmp_path / "j.duckdb") if kind == "duckdb" else f"jsonl:{tmp_path}/j"
    with open_store(location) as store:  # type: ignore[attr-defined]
        store.write([aged_run("old", "t1", 45), aged_run("older", "t2", 90), aged_run("new", "t1", 3)])
    with serving(location, tmp_path / "spool", retention=timedelta(days=30), retention_interval=0.2):
        deadline = time.monotonic() + 60
        while _run_ids(location) != ["new"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _run_ids(location) == ["new"]
        with open_store(location) as store:  # type: ignore[attr-defined]
            store.write([aged_run("late", "t3", 31)])  # arrives later: the next round takes it
        deadline = time.monotonic() + 60
        while _run_ids(location) != ["new"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _run_ids(location) == ["new"]


def test_retention_logs_a_failure_and_keeps_going(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A prune that fails (here: the location is a file, not a journal) is logged, not raised."""
    bad = tmp_path / "not-a-journal.duckdb"
    bad.write_text("hello")
    task = Retention(str(bad), timedelta(days=1), interval=60)
    task.prune_once()
    assert task.pruned_runs == 0
    assert "retention prune failed" in caplog.text


@pytest.mark.parametrize("how", ["flag", "env"])
def test_serve_rejects_a_malformed_retention(how: str, tmp_path: Path) -> None:
    """--retention / OTEL_RUNJOURNAL_RETENTION that is not an age: a usage error before serving."""
    args = ["serve", "--store", str(tmp_path / "j.duckdb"), "--grpc", "off", "--http", "127.0.0.1:0"]
    env = {"OTEL_RUNJOURNAL_RETENTION": "forever"} if how == "env" else {}
    if how == "flag":
        args += ["--retention", "forever"]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 2 and "not an age: 'forever'" in result.output
    assert not (tmp_path / "j.duckdb").exists()
