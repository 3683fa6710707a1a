"""The otel-runjournal CLI: tables and --json over a real journal, clear errors, demo, concurrent reads."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from otel_runjournal.cli.demo_run import run_demo
from otel_runjournal.cli.main import cli
from otel_runjournal.cli.reading import MIN_ID

_ENV = ("OTEL_RUNJOURNAL_STORE", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    """A DuckDB journal holding one demo: 3 successful runs over 2 threads and 1 failed run."""
    location = str(tmp_path_factory.mktemp("cli") / "journal.duckdb")
    return location, run_demo(location, runs=3)


def _cli(*args: str, columns: int = 200) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env={"COLUMNS": str(columns)})


def _json(*args: str) -> Any:
    result = _cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_runs_lists_every_run(journal: tuple[str, Any]) -> None:
    """`runs --json` returns the demo's runs, newest first, one of them failed."""
    location, demo = journal
    rows = _json("runs", "--store", location)
    assert {r["run_id"] for r in rows} == set(demo.run_ids)
    assert sorted(r["status"] for r in rows) == ["error", "success", "success", "success"]
    starts = [r["started_at"] for r in rows]
    assert starts == sorted(starts, reverse=True)
    errors = _json("runs", "--store", location, "--status", "error")
    assert [r["run_id"] for r in errors] == [demo.error_run_id]


def test_runs_table(journal: tuple[str, Any]) -> None:
    """The default output is a table naming each run and its status."""
    location, demo = journal
    result = _cli("runs", "--store", location, "--limit", "10")
    assert result.exit_code == 0
    shown = [line.split()[0] for line in result.output.splitlines()[3:]]
    assert len(shown) == len(demo.run_ids) and len(set(shown)) == len(shown)
    for run_id in demo.run_ids:
        assert any(run_id.startswith(s) or run_id.endswith(s) for s in shown)
    narrow = _cli("runs", "--store", location, columns=60).output
    assert max(len(line) for line in narrow.splitlines()) <= 60
    assert sorted(line.split()[0] for line in narrow.splitlines()[3:]) == sorted(shown)
    assert "error" in result.output and "success" in result.output


def test_show_timeline(journal: tuple[str, Any]) -> None:
    """`show` gives a run's events in seq order, lifecycle first/last, with durations and token usage."""
    location, demo = journal
    data = _json("show", demo.run_ids[0], "--store", location, "--events")
    events = data["events"]
    types = [e["event_type"] for e in events]
    assert types[0] == "run_start" and types[-1] == "run_end"
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert "tool_error" in types
    llm_ends = [e for e in events if e["event_type"] == "llm_end"]
    assert sum(e["metadata"]["usage"]["total_tokens"] for e in llm_ends) == data["run"]["total_tokens"]
    table = _cli("show", demo.run_ids[0], "--store", location, "--events").output
    assert "llm_end" in table and "tool_error" in table and "ms" in table
    assert "subagent:researcher" in table


def test_messages_in_order(journal: tuple[str, Any]) -> None:
    """`messages THREAD` returns the thread's human/AI/summary rows in ascending seq across runs."""
    location, demo = journal
    rows = _json("messages", demo.thread_ids[0], "--store", location, "--limit", "100")
    assert rows[0]["event_type"] == "human_message"
    assert {"human_message", "ai_message", "summary"} <= {r["event_type"] for r in rows}
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    assert len({r["run_id"] for r in rows}) >= 2
    first_two = _json("messages", demo.thread_ids[0], "--store", location, "--limit", "2", "--after", "0")
    assert [r["seq"] for r in first_two] == [r["seq"] for r in rows[:2]]
    before = _json(
        "messages", demo.thread_ids[0], "--store", location, "--limit", "2", "--before", str(rows[-1]["seq"])
    )
    assert [r["seq"] for r in before] == [r["seq"] for r in rows[-3:-1]]


def test_tokens_groupings_agree(journal: tuple[str, Any]) -> None:
    """`tokens --by caller|run|thread|model` split the same total, and by caller shows who spent it."""
    location, _ = journal
    totals = {}
    for group in ("caller", "run", "thread", "model"):
        rows = _json("tokens", "--store", location, "--by", group)
        assert rows, group
        totals[group] = sum(r["total_tokens"] for r in rows)
    assert len(set(totals.values())) == 1, totals
    callers = {r["caller"] for r in _json("tokens", "--store", location)}
    assert {"lead_agent", "subagent:researcher", "middleware:summarization"} <= callers
    table = _cli("tokens", "--store", location, "--by", "model").output
    assert "scripted-1" in table and "total" in table


def test_tokens_for_one_run(journal: tuple[str, Any]) -> None:
    """`tokens --run ID` matches the run's own total."""
    location, demo = journal
    run = _json("show", demo.run_ids[1], "--store", location)["run"]
    assert len(demo.run_ids[1]) > MIN_ID
    rows = _json("tokens", "--store", location, "--run", demo.run_ids[1])
    assert sum(r["total_tokens"] for r in rows) == run["total_tokens"] > 0


def test_store_from_environment(journal: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --store the CLI reads OTEL_RUNJOURNAL_STORE."""
    location, demo = journal
    monkeypatch.setenv("OTEL_RUNJOURNAL_STORE", location)
    assert len(_json("runs")) == len(demo.run_ids)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runs", "--store", "{tmp}/nope.duckdb"], "no run journal at"),
        (["runs", "--store", "mysql://db/x"], "malformed store location"),
        (["runs", "--store", "duckdb://"], "malformed store location"),
        (["show", "no-such-run", "--store", "{journal}"], "unknown run id 'no-such-run'"),
        (["tokens", "--run", "no-such-run", "--store", "{journal}"], "unknown run id"),
        (["runs", "--store", "{tmp}"], "is not a run journal (expected a directory written by"),
        (["show", "x" * 5000, "--store", "{journal}"], "unknown run id 'xxxxxxxx"),
    ],
)
def test_clear_one_line_errors(
    journal: tuple[str, Any], tmp_path: Path, args: list[str], message: str
) -> None:
    """Problems print one 'Error: ...' line (no traceback) and exit with status 1."""
    argv = [a.format(tmp=tmp_path, journal=journal[0]) for a in args]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert len(result.output) < 300  # long ids are cut
    assert list(tmp_path.iterdir()) == []  # reading never creates anything


def test_jsonl_store(tmp_path: Path) -> None:
    """The CLI reads a JSONL journal (jsonl:///dir) the same way."""
    location = f"jsonl://{tmp_path / 'journal'}"
    demo = run_demo(location, runs=1)
    rows = _json("runs", "--store", location)
    assert {r["run_id"] for r in rows} == set(demo.run_ids)


def test_demo_command(tmp_path: Path) -> None:
    """`demo` journals runs (with an error run) and prints the runs, a timeline and tokens by caller."""
    location = str(tmp_path / "demo.duckdb")
    result = _cli("demo", "--store", location, "--runs", "2")
    assert result.exit_code == 0, result.output
    out = result.output
    for expected in (
        "Runs recorded",
        "Tokens by caller",
        "as a timeline of its spans",
        "execute_tool lookup_order",
        "✗ LookupError",
        "subagent:researcher",
        "middleware:summarization",
        "error",
        "otel-runjournal show",
        "cost",  # the tokens-by-caller table prices the scripted models as the models they imitate
    ):
        assert expected in out, expected
    rows = _json("runs", "--store", location)
    assert sorted(r["status"] for r in rows) == ["error", "success", "success"]


def test_demo_exports_over_otlp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, the demo's traces also reach the OTLP endpoint."""
    from otlp_receiver import OtlpReceiver

    with OtlpReceiver() as rx:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rx.http_endpoint)
        result = _cli("demo", "--store", str(tmp_path / "d.duckdb"), "--runs", "1")
        assert result.exit_code == 0, result.output
        assert rx.http_endpoint in result.output
        spans = rx.wait_for_spans(10)
    roots = [s.name for s in spans if s.parent_span_id is None]
    assert roots.count("invoke_agent research_assistant") == 2
    assert {s.resource["service.name"] for s in spans} == {"otel-runjournal-demo"}


def test_python_dash_m(journal: tuple[str, Any]) -> None:
    """`python -m otel_runjournal` is the same CLI."""
    location, demo = journal
    out = subprocess.run(
        [sys.executable, "-m", "otel_runjournal", "runs", "--json", "--store", location],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert {r["run_id"] for r in json.loads(out.stdout)} == set(demo.run_ids)


_WRITER = textwrap.dedent(
    """
    import sys, pathlib
    from otel_runjournal.wiring import configure
    from otel_runjournal.demo.agent import build_agent

    location, runs, ready = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
    wired = configure(location, set_global=False)
    agent = build_agent()
    for i in range(runs):
        agent.invoke({"messages": [("user", f"question {i}")]},
                     {"callbacks": [wired.handler], "configurable": {"thread_id": "busy"}})
        wired.force_flush()
        ready.touch()
    wired.shutdown()
    """
)


def test_reads_while_another_process_writes(tmp_path: Path) -> None:
    """CLI processes read the journal while another process keeps writing; no read fails and the writer
    loses nothing."""
    location = str(tmp_path / "busy.duckdb")
    ready = tmp_path / "ready"
    runs = 12
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, location, str(runs), str(ready)], stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and time.monotonic() < deadline:
            assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""
            time.sleep(0.05)
        reads = 0
        seen: list[int] = []
        while writer.poll() is None or reads < 3:
            for args in (["runs", "--json", "--limit", "100"], ["tokens", "--json", "--by", "run"]):
                out = subprocess.run(
                    [sys.executable, "-m", "otel_runjournal", *args, "--store", location],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert out.returncode == 0, out.stderr
                data = json.loads(out.stdout)
                if args[0] == "runs":
                    seen.append(len(data))
            reads += 1
        assert writer.wait(timeout=120) == 0, writer.stderr.read() if writer.stderr else ""
    finally:
        if writer.poll() is None:
            writer.kill()
    assert seen == sorted(seen) and seen[0] >= 1
    final = _json("runs", "--store", location, "--limit", "100")
    assert len(final) == runs and {r["status"] for r in final} == {"success"}
