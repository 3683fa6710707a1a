"""Application replicas start together: many processes calling ``configure(url)`` at the same moment on a
new PostgreSQL database all succeed, and the schema is migrated exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from pg_server import server_url

pytest.importorskip("psycopg", reason="the PostgreSQL store needs the postgres extra")

import psycopg

from otel_runjournal.stores.postgres.schema import MIGRATIONS

TESTS_DIR = str(Path(__file__).parent)
PROCESSES = 4
ROUNDS = 3

CHILD = """
    import sys
    from otel_runjournal import configure
    print("ready", flush=True)
    sys.stdin.read()  # the barrier: every process waits here until the test closes the pipe
    wired = configure(sys.argv[1], set_global=False)
    wired.shutdown()
    print("configured")
"""


def _database_url(server: str, name: str) -> str:
    parts = urlsplit(server)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_processes_released_at_once_on_a_new_database_all_configure(round_: int) -> None:
    """4 processes released together on a fresh database: each configure() returns, no error is printed,
    and every migration is recorded once."""
    server = server_url()
    name = f"rj_race_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = _database_url(server, name)
    env = {**os.environ, "PYTHONPATH": TESTS_DIR + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        children = [
            subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(CHILD), url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(PROCESSES)
        ]
        # every child has imported everything and waits on the barrier; then all are released at once
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.close()
        results = [_finish(child) for child in children]
        for child, (out, err) in zip(children, results, strict=True):
            assert child.returncode == 0, err
            assert out.strip() == "configured", err
            assert "already exists" not in err and "Error" not in err, err
        with psycopg.connect(url) as conn:
            versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        assert versions == [m[0] for m in MIGRATIONS]
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _finish(child: subprocess.Popen[str]) -> tuple[str, str]:
    """The child's rest of stdout and its stderr, once it exits."""
    assert child.stdout is not None and child.stderr is not None
    out, err = child.stdout.read(), child.stderr.read()
    child.wait(timeout=120)
    return out, err
