"""The README works as printed: its Python snippets run, the demo's next commands run, every example
is mentioned, and the benchmark tables live in bench/README.md."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

pytestmark = pytest.mark.usefixtures("clean_otel_env")


def _section(title: str) -> str:
    start = README.index(title)
    following = README.find("\n## ", start + len(title))
    return README[start : following if following > 0 else len(README)]


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


@pytest.mark.parametrize(
    ("section", "expected"), [("## Quick start", "lead_agent"), ("### DuckDB (default)", "lead_agent")]
)
def test_python_snippets_run_as_printed(tmp_path: Path, section: str, expected: str) -> None:
    """The Quick start and the in-process SQL snippet are whole programs: they run in an empty directory."""
    (code,) = _python_blocks(_section(section))[:1]
    done = _run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
    assert (tmp_path / "runjournal.duckdb").exists()


def test_the_demos_next_commands_work_as_printed(tmp_path: Path) -> None:
    """Every command the demo suggests runs as printed from where the demo ran (exit status 0)."""
    cli = Path(sys.executable).parent / "otel-runjournal"
    if not cli.exists():
        pytest.skip("the otel-runjournal script is not installed next to this interpreter")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PATH"] = "/usr/bin:/bin"  # the README's set-up does not activate the virtualenv
    demo = subprocess.run(
        [str(cli), "demo", "--runs", "2"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert demo.returncode == 0, demo.stderr
    hints = demo.stdout.split("Next:")[1].strip().splitlines()
    assert len(hints) >= 5
    for hint in hints:
        args = shlex.split(hint.strip())
        assert "/" in args[0]  # not on PATH here: printed as a path
        done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (hint, done.stderr)


def test_every_example_is_mentioned_and_quickstart_first() -> None:
    """examples/*.py are all named in the README, quickstart.py before the others."""
    names = sorted(p.name for p in (ROOT / "examples").glob("*.py"))
    assert names and all(f"examples/{n}" in README for n in names)
    first = min(README.index(f"examples/{n}") for n in names)
    assert README.index("examples/quickstart.py") == first


def test_readme_speaks_to_users_and_links_the_benchmarks() -> None:
    """The README keeps a short performance summary linking bench/README.md, which holds the tables."""
    performance = _section("## Performance")
    assert "bench/README.md" in performance and "|---" not in performance
    assert "issue" not in README.lower()
    bench = (ROOT / "bench" / "README.md").read_text()
    assert "| tracer | spans/invoke |" in bench and "## write throughput" in bench
    assert len(README.splitlines()) < 900  # what a user needs, the benchmark tables in bench/README.md
