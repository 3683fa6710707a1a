"""The PostgreSQL server of the tests, one schema per test.

Its URL comes from OTEL_RUNJOURNAL_TEST_POSTGRES (CI's service script exports it); where that is unset
and the server binaries are installed (``/usr/lib/postgresql/*/bin``), the first test that needs a
server starts a throw-away one with ``scripts/postgres_server.sh`` (as root it runs as ``postgres``),
and the session stops and deletes it at the end (``conftest.pytest_sessionfinish``).
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

TEST_POSTGRES = "OTEL_RUNJOURNAL_TEST_POSTGRES"
HOW_TO_RUN = (
    f"PostgreSQL tests need a server: apt-get install -y postgresql (the tests then start one), or "
    f"export {TEST_POSTGRES}=postgresql://... of a server to use"
)
SERVER_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "postgres_server.sh"

_throwaway: dict[str, str] = {}
"""The server this session started: ``dir`` and ``url``, or ``error`` (why it could not start)."""


def server_url() -> str:
    """The test server's URL (started for this session if need be), or skip the test saying why."""
    url = os.environ.get(TEST_POSTGRES, "").strip()
    if url:
        return url
    url = _start_throwaway()
    if not url:
        pytest.skip(_throwaway.get("error") or HOW_TO_RUN)
    return url


def _start_throwaway() -> str:
    if "url" in _throwaway or "error" in _throwaway:
        return _throwaway.get("url", "")
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl") or not SERVER_SCRIPT.exists():
        _throwaway["error"] = HOW_TO_RUN
        return ""
    directory = tempfile.mkdtemp(prefix="rj-test-pg-")
    os.chmod(directory, 0o755)  # as root the server runs as `postgres`, which must reach it
    out = subprocess.run(
        ["bash", str(SERVER_SCRIPT), "start", directory], capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0 or not out.stdout.strip():
        shutil.rmtree(directory, ignore_errors=True)
        _throwaway["error"] = f"cannot start a throw-away PostgreSQL server: {out.stderr.strip()[-300:]}"
        return ""
    _throwaway.update(dir=directory, url=out.stdout.strip())
    os.environ[TEST_POSTGRES] = _throwaway["url"]  # the tests' child processes use it too
    atexit.register(stop_throwaway)  # in case the session does not end normally
    return _throwaway["url"]


def stop_throwaway() -> None:
    """Stop and delete the server this session started (nothing when it started none)."""
    directory = _throwaway.pop("dir", None)
    if directory is None:
        return
    subprocess.run(["bash", str(SERVER_SCRIPT), "stop", directory], capture_output=True, timeout=120)
    shutil.rmtree(directory, ignore_errors=True)
    if os.environ.get(TEST_POSTGRES) == _throwaway.pop("url", None):
        os.environ.pop(TEST_POSTGRES, None)


def with_schema(url: str, schema: str) -> str:
    """``url`` whose sessions use ``schema`` (libpq ``options=-csearch_path=...``)."""
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"


class Schema:
    """A fresh, empty schema on the test server (a journal of its own), dropped by :meth:`drop`."""

    def __init__(self) -> None:
        import psycopg

        self.server = server_url()
        self.name = f"rj_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.server, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {self.name}")
        self.url = with_schema(self.server, self.name)

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.server, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")
