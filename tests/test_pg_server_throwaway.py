"""With PostgreSQL installed, the plain test command runs the PostgreSQL tests: the session starts a
throw-away server itself and stops it at the end; OTEL_RUNJOURNAL_TEST_POSTGRES still wins when set."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import TEST_POSTGRES

ROOT = Path(__file__).resolve().parent.parent
A_POSTGRES_TEST = "tests/test_postgres_store.py::test_read_only_opens_no_migrations_and_refuses_writes"


@pytest.fixture
def tmpdir_for_servers() -> Iterator[Path]:
    """A TMPDIR the `postgres` user can reach (pytest's tmp_path is private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="rj-throwaway-test-"))
    os.chmod(directory, 0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _pytest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _postgres_processes_under(directory: Path) -> list[str]:
    found = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            text = Path(cmdline).read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(directory) in text and "postgres" in text:
            found.append(text)
    return found


def test_the_session_starts_and_stops_its_own_server(tmpdir_for_servers: Path) -> None:
    """No variable set: a PostgreSQL test runs (not skipped) on a server the session started, which is
    stopped and deleted when the session ends."""
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        pytest.skip("PostgreSQL server binaries are not installed (apt-get install -y postgresql)")
    env = {k: v for k, v in os.environ.items() if k != TEST_POSTGRES}
    env["TMPDIR"] = str(tmpdir_for_servers)
    env.pop("CI", None)  # a skip must show as a skip here, not as CI's failure
    out = _pytest(env, A_POSTGRES_TEST)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout and "skipped" not in out.stdout, out.stdout
    assert list(tmpdir_for_servers.glob("rj-test-pg-*")) == []  # its data directory is gone
    assert _postgres_processes_under(tmpdir_for_servers) == []  # and its server stopped


def test_the_variable_wins(tmpdir_for_servers: Path) -> None:
    """OTEL_RUNJOURNAL_TEST_POSTGRES set: the tests use that server and start none (here: a server that
    does not answer, so the test fails instead of quietly using another)."""
    env = {**os.environ, TEST_POSTGRES: "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"}
    env["TMPDIR"] = str(tmpdir_for_servers)
    out = _pytest(env, A_POSTGRES_TEST)
    assert out.returncode != 0 and '127.0.0.1", port 9 failed' in out.stdout, out.stdout + out.stderr
    assert list(tmpdir_for_servers.glob("rj-test-pg-*")) == []
