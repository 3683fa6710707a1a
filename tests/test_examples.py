"""Every example in examples/ runs offline as its own process and leaves what it promises in the journal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(name: str, tmp_path: Path, **extra_env: str) -> tuple[str, Path]:
    store = tmp_path / "journal.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_RUNJOURNAL_STORE=str(store), **extra_env)
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout, store


def test_quickstart(tmp_path: Path) -> None:
    """quickstart.py answers, then prints its run (success, 3 model calls) and its events in seq order."""
    stdout, store = _run("quickstart.py", tmp_path)
    assert "answer:" in stdout
    assert re.search(r"run \S+: success, 3 model calls, \d+ tokens", stdout)
    assert "run_start" in stdout and "run_end" in stdout
    assert store.exists()


def test_existing_provider_exports_without_content(tmp_path: Path) -> None:
    """existing_provider.py keeps the app's OTLP export (no content on the wire) and journals messages."""
    from otlp_receiver import OtlpReceiver

    from otel_runjournal import semconv as sc

    with OtlpReceiver() as rx:
        stdout, _ = _run("existing_provider.py", tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=rx.http_endpoint)
        spans = rx.wait_for_spans(6)
    assert {s.resource["service.name"] for s in spans} == {"existing-app"}
    assert "invoke_agent research_assistant" in [s.name for s in spans]
    assert not {k for s in spans for k in s.attributes} & set(sc.CONTENT_ATTRIBUTES)
    assert "human_message: Is it sunny in Paris?" in stdout
    assert "ai_message:" in stdout


def test_existing_provider_console_fallback(tmp_path: Path) -> None:
    """Without an OTLP endpoint the example's app exports to the console, still without content."""
    stdout, _ = _run("existing_provider.py", tmp_path)
    assert '"name": "invoke_agent research_assistant"' in stdout
    assert "gen_ai.input.messages" not in stdout


def test_langgraph_subagents(tmp_path: Path) -> None:
    """langgraph_subagents.py traces two concurrent threads via instrument() and splits tokens by caller."""
    stdout, _ = _run("langgraph_subagents.py", tmp_path)
    for thread in ("trip-lisbon", "trip-paris"):
        line = next(
            line for line in stdout.splitlines() if line.startswith(f"[{thread}]") and "tokens" in line
        )
        assert (
            "lead_agent=" in line and "subagent:researcher=" in line and "middleware:summarization=" in line
        )
        assert "8 model calls" in line
    assert stdout.count("human_message") == 2 and stdout.count("summary") >= 2


def test_queries_sql_runs_on_a_journal(tmp_path: Path) -> None:
    """Every statement in queries.sql runs on a journal the examples wrote; the key ones return rows."""
    _, store = _run("langgraph_subagents.py", tmp_path)
    _run("quickstart.py", tmp_path)
    text = (EXAMPLES / "queries.sql").read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    statements = [s.strip() for s in body.split(";") if s.strip()]
    assert len(statements) >= 10
    con = duckdb.connect(str(store), read_only=True)
    try:
        results = [con.execute(sql).fetchall() for sql in statements]
    finally:
        con.close()
    assert len(results[0]) == 3  # latest runs: two subagent threads + the quickstart run
    assert {row[0] for row in results[2]} >= {"lead_agent", "subagent:researcher", "middleware:summarization"}
    tree = next(r for r, s in zip(results, statements, strict=True) if s.startswith("WITH RECURSIVE"))
    assert tree[0][0] == "invoke_agent research_assistant" and tree[1][0].startswith("  ")
    messages = next(r for r, s in zip(results, statements, strict=True) if "FROM messages" in s)
    assert [row[2] for row in messages][:1] == ["human_message"]
