"""`otel-runjournal export`: Parquet by day from every store, read back by DuckDB and pandas."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result
from pg_server import Schema
from store_batches import make_run

from otel_runjournal.cli.main import cli
from otel_runjournal.records import RunWrite
from otel_runjournal.stores import open_store

DAY = 24 * 60  # make_run's start is in minutes after 2025-03-01 12:00 UTC

EXPECTED_SCHEMA = {
    "runs": [
        ("run_id", "VARCHAR"), ("thread_id", "VARCHAR"), ("trace_id", "VARCHAR"), ("name", "VARCHAR"),
        ("status", "VARCHAR"), ("started_at", "TIMESTAMP WITH TIME ZONE"),
        ("ended_at", "TIMESTAMP WITH TIME ZONE"), ("duration_ms", "DOUBLE"), ("input_tokens", "BIGINT"),
        ("output_tokens", "BIGINT"), ("total_tokens", "BIGINT"), ("cached_input_tokens", "BIGINT"),
        ("reasoning_tokens", "BIGINT"), ("llm_call_count", "BIGINT"), ("lead_agent_tokens", "BIGINT"),
        ("subagent_tokens", "BIGINT"), ("middleware_tokens", "BIGINT"), ("message_count", "BIGINT"),
        ("first_human_message", "VARCHAR"), ("last_ai_message", "VARCHAR"), ("error", "VARCHAR"),
        ("usage_by_caller", "VARCHAR"), ("service_name", "VARCHAR"), ("cost_usd", "DOUBLE"),
        ("unpriced_call_count", "BIGINT"), ("complete", "BOOLEAN"),
    ],
    "run_events": [
        ("thread_id", "VARCHAR"), ("run_id", "VARCHAR"), ("seq", "BIGINT"), ("event_type", "VARCHAR"),
        ("category", "VARCHAR"), ("content", "VARCHAR"), ("metadata", "VARCHAR"),
        ("created_at", "TIMESTAMP WITH TIME ZONE"), ("trace_id", "VARCHAR"), ("span_id", "VARCHAR"),
    ],
    "spans": [
        ("trace_id", "VARCHAR"), ("span_id", "VARCHAR"), ("parent_span_id", "VARCHAR"), ("run_id", "VARCHAR"),
        ("name", "VARCHAR"), ("kind", "VARCHAR"), ("start_time", "TIMESTAMP WITH TIME ZONE"),
        ("end_time", "TIMESTAMP WITH TIME ZONE"), ("duration_ms", "DOUBLE"), ("status_code", "VARCHAR"),
        ("status_message", "VARCHAR"), ("attributes", "VARCHAR"), ("events", "VARCHAR"),
        ("resource", "VARCHAR"),
    ],
}  # fmt: skip


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


def _units() -> list[RunWrite]:
    """Runs on three UTC days (2025-03-01 .. 03), one just before midnight, one failed, odd text."""
    return [
        make_run("a", "t1", start=0, content='ünïcode, "quotes"\nand a newline'),
        make_run("b", "t2", start=11 * 60 + 59, status="error"),  # 23:59 on 03-01
        make_run("c", "t1", start=DAY, tool_calls=2),
        make_run("d", "t3", start=2 * DAY, messages=3),
    ]


def _write(location: str, units: list[RunWrite]) -> None:
    with open_store(location) as store:  # type: ignore[attr-defined]
        store.write(units)


def _day(unit: RunWrite) -> str:
    assert unit.run.started_at is not None
    return unit.run.started_at.date().isoformat()


def test_export_writes_one_hive_folder_per_day_that_duckdb_reads(location: str, tmp_path: Path) -> None:
    """Every run, event and span lands in its run's start day, equal to what the store holds."""
    units = _units()
    _write(location, units)
    out = tmp_path / "lake"
    result = _cli("export", str(out), "--store", location, "--json")
    assert result.exit_code == 0, result.output
    days = sorted({_day(u) for u in units})
    assert [d["day"] for d in json.loads(result.output)] == days
    assert sorted(os.listdir(out)) == [f"day={d}" for d in days]
    glob = str(out / "*" / "{}.parquet")
    con = duckdb.connect()
    runs = con.execute(
        "SELECT day::VARCHAR, run_id, status, input_tokens, started_at "
        f"FROM read_parquet('{glob.format('runs')}', hive_partitioning=1) ORDER BY run_id"
    ).fetchall()
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in runs] == [
        (_day(u), u.run.run_id, u.run.status, u.run.input_tokens, u.run.started_at) for u in units
    ]
    events = con.execute(
        f"SELECT run_id, seq, event_type, category, content, metadata, created_at "
        f"FROM read_parquet('{glob.format('run_events')}') ORDER BY run_id, seq"
    ).fetchall()
    with open_store(location, read_only=True) as store:  # type: ignore[attr-defined]
        stored = [
            (e.run_id, e.seq, e.event_type, e.category, e.content, e.metadata, e.created_at)
            for u in units
            for e in store.list_events(u.run.run_id, limit=1000)
        ]
        spans = sorted(
            (s.run_id, s.span_id, s.name, s.attributes, s.start_time)
            for u in units
            for s in store.list_spans(u.run.run_id)
        )
    assert len(stored) == sum(len(u.events) for u in units)
    assert [(*e[:5], json.loads(e[5]), e[6]) for e in events] == stored
    exported = con.execute(
        f"SELECT run_id, span_id, name, attributes, start_time, day::VARCHAR "
        f"FROM read_parquet('{glob.format('spans')}', hive_partitioning=1) ORDER BY ALL"
    ).fetchall()
    assert [(*s[:3], json.loads(s[3]), s[4]) for s in exported] == spans
    by_run = {u.run.run_id: _day(u) for u in units}
    assert all(s[5] == by_run[s[0]] for s in exported)
    for table, columns in EXPECTED_SCHEMA.items():
        described = con.execute(
            f"DESCRIBE FROM read_parquet('{glob.format(table)}', hive_partitioning=0)"
        ).fetchall()
        assert [(d[0], d[1]) for d in described] == columns


def test_pandas_reads_the_export(location: str, tmp_path: Path) -> None:
    """pandas reads each day's files with UTC timestamps and integer token counts."""
    import pandas as pd

    units = _units()
    _write(location, units)
    out = tmp_path / "lake"
    assert _cli("export", str(out), "--store", location).exit_code == 0
    frames = [pd.read_parquet(out / f"day={d}" / "runs.parquet") for d in sorted({_day(u) for u in units})]
    runs = pd.concat(frames).sort_values("run_id")
    assert list(runs["run_id"]) == [u.run.run_id for u in units]
    assert str(runs["started_at"].dt.tz) == "UTC" and runs["input_tokens"].dtype == "int64"
    assert list(runs["total_tokens"]) == [u.run.total_tokens for u in units]
    events = pd.read_parquet(out / f"day={_day(units[2])}" / "run_events.parquet")
    assert list(events["event_type"]) == [e.event_type for e in units[2].events]


def test_reexporting_a_day_replaces_it_and_since_until_select_days(location: str, tmp_path: Path) -> None:
    """A day exported again holds the journal's current rows once; --since/--until leave other days alone."""
    units = _units()
    _write(location, units)
    out = tmp_path / "lake"
    assert _cli("export", str(out), "--store", location).exit_code == 0
    first_day = out / f"day={_day(units[0])}" / "runs.parquet"
    before = first_day.read_bytes()
    late = make_run("e", "t1", start=DAY + 60)
    _write(location, [late])
    result = _cli("export", str(out), "--store", location, "--since", "2025-03-02", "--until", "2025-03-02")
    assert result.exit_code == 0, result.output
    assert first_day.read_bytes() == before
    con = duckdb.connect()
    second = str(out / "day=2025-03-02" / "{}.parquet")
    assert con.execute(f"SELECT run_id FROM '{second.format('runs')}' ORDER BY 1").fetchall() == [
        ("c",),
        ("e",),
    ]
    assert con.execute(f"SELECT count(*) FROM '{second.format('run_events')}'").fetchone() == (
        len(units[2].events) + len(late.events),
    )
    assert sorted(os.listdir(out)) == ["day=2025-03-01", "day=2025-03-02", "day=2025-03-03"]
    result = _cli("export", str(tmp_path / "none"), "--store", location, "--since", "2030-01-01")
    assert result.exit_code == 0 and "nothing exported" in result.output
    result = _cli("export", str(out), "--store", location, "--since", "2025-03-03", "--until", "2025-03-01")
    assert result.exit_code == 1 and "after" in result.output


def test_export_refuses_a_missing_journal(tmp_path: Path) -> None:
    """No journal at the location: one error line, no journal and no export directory created."""
    missing = tmp_path / "none.duckdb"
    result = _cli("export", str(tmp_path / "lake"), "--store", str(missing))
    assert result.exit_code == 1 and "no run journal at" in result.output
    assert not missing.exists() and not (tmp_path / "lake").exists()
    result = _cli("export", str(tmp_path / "lake"), "--store", str(missing), "--since", "yesterday")
    assert result.exit_code == 2
