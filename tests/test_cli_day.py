"""The CLI on a day's data at 80 columns: long thread ids, paging that says so, filters, whole content."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner, Result
from pg_server import Schema
from store_batches import T0, make_run

from otel_runjournal.cli.demo_run import DEMO_SERVICE_NAME, run_demo
from otel_runjournal.cli.main import cli
from otel_runjournal.cli.values import moment, number
from otel_runjournal.records import RunWrite
from otel_runjournal.stores.location import open_store

pytestmark = pytest.mark.usefixtures("clean_otel_env")

RUNS = 101
SERVICES = ("billing-api", "support-bot")
AGENTS = ("triage", "writer")


def _day() -> list[RunWrite]:
    """101 runs of a served journal: 32-hex trace ids as thread ids, two services, two agents, every
    seventh run failed (with its first human message recorded), one run a minute."""
    out = []
    for i in range(RUNS):
        thread = f"{i % 7:02x}{'ab' * 15}"  # 32 hex: 7 threads sharing a 30-character tail
        unit = make_run(
            f"run-{i:03d}-{'x' * 20}", thread, start=i, status="error" if i % 7 == 3 else "success"
        )
        unit.run = dataclasses.replace(
            unit.run,
            name=AGENTS[i % 2],
            service_name=SERVICES[i % 3 == 0],
            first_human_message=f"question {i}",
        )
        out.append(unit)
    return out


@pytest.fixture(scope="module", params=["duckdb", "jsonl", "postgres"])
def day(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, list[RunWrite]]]:
    """The day's runs written to a real store of each kind."""
    base = tmp_path_factory.mktemp("day")
    schema = None
    if request.param == "duckdb":
        location = str(base / "day.duckdb")
    elif request.param == "jsonl":
        location = f"jsonl:{base / 'day'}"
    else:
        schema = Schema()
        location = schema.url
    units = _day()
    store = open_store(location)
    try:
        store.write(units)
    finally:
        store.close()
    yield location, units
    if schema is not None:
        schema.drop()


def _cli(*args: str, columns: int = 80, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": str(columns), **(env or {})})


def _ids(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [r["run_id"] for r in json.loads(result.output)]


def _newest_first(units: list[RunWrite]) -> list[str]:
    runs = sorted((u.run for u in units), key=lambda r: r.run_id)
    return [r.run_id for r in sorted(runs, key=lambda r: r.started_at or T0, reverse=True)]


def test_runs_at_80_columns_keeps_started_shortens_threads_and_shows_first_messages(
    day: tuple[str, list[RunWrite]],
) -> None:
    """With 32-hex thread ids every row keeps its start time and a shortened thread id; a failed run
    shows its first human message, marked failed in the status column."""
    location, units = day
    result = _cli("runs", "--store", location)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if line.startswith("run "))
    assert "started" in header and "thread" in header and "status" in header
    expected = _newest_first(units)[:20]
    by_id = {u.run.run_id: u.run for u in units}
    for run_id in expected:
        run = by_id[run_id]
        row = next(line for line in lines if line.startswith(run_id[:8]))
        local = (run.started_at or T0).astimezone().strftime("%Y-%m-%d %H:%M")
        assert local in row, row
        threads = [w for w in row.split() if len(w) >= 8 and w != run.thread_id and w in run.thread_id]
        assert len(threads) == 1 and (
            run.thread_id.startswith(threads[0]) or run.thread_id.endswith(threads[0])
        )
        assert run.status in row
        assert str(run.first_human_message) in row  # also for failed runs (not the error text)
    assert "boom" not in result.output


def test_runs_paging_says_how_many_and_before_gives_the_next_page(day: tuple[str, list[RunWrite]]) -> None:
    """20 of 101 is said under the table with the --before value that gives the next 20."""
    location, units = day
    out = _cli("runs", "--store", location, columns=200).output
    hint = out.strip().splitlines()[-1]
    assert hint.startswith(f"20 of {RUNS} runs") and "--limit 40" in hint, hint
    before = hint.split("--before ")[1].split()[0]
    newest = _newest_first(units)
    assert _ids(_cli("runs", "--store", location, "--json", "--before", before)) == newest[20:40]
    assert _ids(_cli("runs", "--store", location, "--json", "--limit", "40")) == newest[:40]
    last_page = _cli("runs", "--store", location, "--limit", "1000", columns=200).output
    assert " of " not in last_page.strip().splitlines()[-1]  # everything shown: no hint


def test_runs_filters(day: tuple[str, list[RunWrite]]) -> None:
    """--status, --agent, --service and --since select what the runs' fields say (computed here)."""
    location, units = day
    newest = _newest_first(units)
    runs = {u.run.run_id: u.run for u in units}

    def expect(keep: Any) -> list[str]:
        return [r for r in newest if keep(runs[r])][:1000]

    base = ["runs", "--store", location, "--json", "--limit", "1000"]
    assert _ids(_cli(*base, "--status", "error")) == expect(lambda r: r.status == "error")
    assert _ids(_cli(*base, "--agent", "writer")) == expect(lambda r: r.name == "writer")
    assert _ids(_cli(*base, "--service", "support-bot")) == expect(lambda r: r.service_name == "support-bot")
    since = T0 + timedelta(minutes=90)
    assert _ids(_cli(*base, "--since", since.isoformat())) == expect(lambda r: r.started_at >= since)
    both = _ids(_cli(*base, "--since", since.isoformat(), "--status", "error", "--agent", "triage"))
    assert both == expect(lambda r: r.started_at >= since and r.status == "error" and r.name == "triage")
    assert both  # the data has such runs: the filter is not vacuous
    store = open_store(location, read_only=True)
    try:
        assert store.count_runs(service_name="billing-api") == len(
            expect(lambda r: r.service_name == "billing-api")
        )
    finally:
        store.close()
    bad = _cli("runs", "--store", location, "--since", "yesterday")
    assert bad.exit_code == 2 and "neither a duration" in bad.output


def test_moment_reads_durations_and_iso_times() -> None:
    """30m / 2h / 1d / 1w are that long before now; an ISO time without a zone is local time."""
    now = datetime(2026, 1, 2, 12, 0, tzinfo=timezone.utc)
    assert moment("30m", now) == now - timedelta(minutes=30)
    assert moment("2h", now) == now - timedelta(hours=2)
    assert moment("1d", now) == now - timedelta(days=1)
    assert moment("1w", now) == now - timedelta(days=7)
    assert moment("2026-01-02T10:00:00+00:00") == datetime(2026, 1, 2, 10, tzinfo=timezone.utc)
    assert moment("2026-01-02T10:00") == datetime(2026, 1, 2, 10).astimezone()
    with pytest.raises(ValueError, match="neither a duration"):
        moment("2 hours")


def test_sql_floats_are_rounded() -> None:
    """Floats print with at most 4 decimals (trailing zeros dropped); huge / tiny ones in exponent form."""
    assert number(34.95888716666667) == "34.9589"
    assert number(0.5) == "0.5" and number(12.0) == "12" and number(-0.00001) == "-1e-05"
    assert number(2.5e20) == "2.5e+20"


@pytest.fixture(scope="module")
def demo_journal(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    """The bundled demo (2 runs and a failing one) in a DuckDB file."""
    location = str(tmp_path_factory.mktemp("demo") / "demo.duckdb")
    return location, run_demo(location, runs=2)


def test_messages_shows_the_latest_and_says_how_to_page_back(tmp_path: Path) -> None:
    """A long conversation shows its last --limit messages; the hint's --before gives the ones before."""
    location = str(tmp_path / "chat.duckdb")
    units = [make_run(f"r{i:02d}", "long-thread", start=i, messages=3) for i in range(10)]
    store = open_store(location)
    try:
        store.write(units)
        seqs = [e.seq for e in store.list_messages("long-thread", limit=1000)]
    finally:
        store.close()
    assert len(seqs) == 30

    def shown(result: Result) -> list[int]:
        assert result.exit_code == 0, result.output
        return [e["seq"] for e in json.loads(result.output)]

    assert shown(_cli("messages", "long-thread", "--store", location, "--json", "--limit", "5")) == seqs[-5:]
    table = _cli("messages", "long-thread", "--store", location, "--limit", "5").output
    hint = table.strip().splitlines()[-1]
    assert f"--before {seqs[-5]}" in hint, hint
    back = _cli(
        "messages", "long-thread", "--store", location, "--json", "--limit", "5", "--before", str(seqs[-5])
    )
    assert shown(back) == seqs[-10:-5]
    forward = _cli("messages", "long-thread", "--store", location, "--json", "--limit", "5", "--after", "0")
    assert shown(forward) == seqs[:5]
    everything = _cli("messages", "long-thread", "--store", location, "--limit", "100").output
    assert "--before" not in everything and "--after" not in everything


def test_show_events_keeps_callers_and_reads_whole_content(demo_journal: tuple[str, Any]) -> None:
    """At 80 columns subagent rows say their caller; tool arguments are shown; --wide and --event SEQ
    give the whole content; --category implies --events."""
    location, demo = demo_journal
    run_id = demo.run_ids[0]
    table = _cli("show", run_id, "--store", location, "--events").output
    assert max(len(line) for line in table.splitlines()) <= 80
    assert "sub:researcher" in table
    events = json.loads(_cli("show", run_id, "--store", location, "--events", "--json").output)["events"]
    tool_start = next(e for e in events if e["event_type"] == "tool_start")
    args_text = json.dumps(tool_start["metadata"]["args"], ensure_ascii=False)
    row = next(line for line in table.splitlines() if line.lstrip().startswith(f"{tool_start['seq']} "))
    assert args_text[:10] in row
    longest = max((e for e in events if e["content"]), key=lambda e: len(e["content"]))
    assert longest["content"] not in " ".join(table.split())  # cut at 80 columns ...
    wide = _cli("show", run_id, "--store", location, "--events", "--wide").output
    assert " ".join(longest["content"].split()) in " ".join(wide.split())  # ... whole with --wide
    one = _cli("show", run_id, "--store", location, "--event", str(tool_start["seq"]))
    assert one.exit_code == 0 and f'"{tool_start["metadata"]["tool_name"]}"' in one.output
    assert args_text.strip("{}").split(",")[0] in one.output.replace("\n", " ")
    missing = _cli("show", run_id, "--store", location, "--event", "99999")
    assert missing.exit_code == 1 and "has no event 99999" in missing.output
    messages = json.loads(_cli("show", run_id, "--store", location, "--category", "message", "--json").output)
    assert messages["events"] and {e["category"] for e in messages["events"]} == {"message"}


def test_show_prints_the_trace_link_and_service(demo_journal: tuple[str, Any]) -> None:
    """With OTEL_RUNJOURNAL_TRACE_URL set, show prints the trace's link; the run's service.name is
    recorded from the root span's resource and shown."""
    location, demo = demo_journal
    store = open_store(location, read_only=True)
    try:
        run = store.get_run(demo.run_ids[0])
    finally:
        store.close()
    assert run is not None and run.trace_id and run.service_name == DEMO_SERVICE_NAME
    template = "http://localhost:16686/trace/{trace_id}"
    out = _cli("show", run.run_id, "--store", location, env={"OTEL_RUNJOURNAL_TRACE_URL": template}).output
    assert f"http://localhost:16686/trace/{run.trace_id}" in out and DEMO_SERVICE_NAME in out
    plain = _cli("show", run.run_id, "--store", location).output
    assert "http://" not in plain and run.trace_id in plain


@pytest.mark.parametrize("json_flag", ["", "--json"])
def test_sql_into_a_closed_pipe_exits_quietly(demo_journal: tuple[str, Any], json_flag: str) -> None:
    """`sql ... | head -1` ends with status 0 and nothing on stderr when head stops reading (wide
    results print record after record: the later ones meet the closed pipe)."""
    location, _ = demo_journal
    script = (
        f"set -o pipefail; {sys.executable} -m otel_runjournal sql {json_flag} "
        f"\"select range, repeat('x', 200) as pad from range(2000)\" --store {location} | head -1"
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300, env=os.environ)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("install httpfs", "INSTALL"),
        ("checkpoint", "CHECKPOINT"),
        ("force checkpoint", "CHECKPOINT"),
        ("load httpfs", "LOAD"),
    ],
)
def test_sql_names_refused_statements_as_written(
    demo_journal: tuple[str, Any], query: str, kind: str
) -> None:
    """A refused statement is named as the user wrote it (INSTALL, CHECKPOINT), not DuckDB's type."""
    location, _ = demo_journal
    result = _cli("sql", query, "--store", location)
    assert result.exit_code == 1 and f"{kind} statements are refused" in result.output


def test_a_journal_from_before_migration_5_is_read(tmp_path: Path) -> None:
    """A journal written before runs.service_name existed is read (no service) and filtered (nothing)."""
    location = str(tmp_path / "old.duckdb")
    store = open_store(location)
    try:
        store.write([make_run("old-run", "t")])
    finally:
        store.close()
    con = duckdb.connect(location)
    con.execute("ALTER TABLE runs DROP COLUMN service_name")
    con.execute("DELETE FROM schema_migrations WHERE version = 5")
    con.close()
    assert _ids(_cli("runs", "--store", location, "--json")) == ["old-run"]
    assert _ids(_cli("runs", "--store", location, "--json", "--service", "x")) == []


def test_demo_prints_commands_that_work_as_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo names itself as the user can type it: the name when PATH finds this very command, else
    the path it was started by (`.venv/bin/otel-runjournal`), or `<python> -m otel_runjournal`."""
    from otel_runjournal.cli.demo import program

    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "otel-runjournal"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert program(str(script)) == ".venv/bin/otel-runjournal"
    assert program(".venv/bin/otel-runjournal") == ".venv/bin/otel-runjournal"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert program(str(script)) == "otel-runjournal"
    python = str(bin_dir / "python")
    assert program("/x/otel_runjournal/__main__.py", python) == ".venv/bin/python -m otel_runjournal"


def test_demo_shows_progress_on_long_work(tmp_path: Path) -> None:
    """`demo --runs 20` says on stderr how far it is (not a terminal: a line per quarter)."""
    result = CliRunner().invoke(cli, ["demo", "--runs", "20", "--store", str(tmp_path / "d.duckdb")])
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.stderr.splitlines()]
    assert lines[0] == "running the demo agent 21 times…"
    assert lines[1:] == ["5/21 runs", "10/21 runs", "15/21 runs", "20/21 runs"]
    quiet = CliRunner().invoke(cli, ["demo", "--runs", "2", "--store", str(tmp_path / "q.duckdb")])
    assert quiet.exit_code == 0 and quiet.stderr == ""
