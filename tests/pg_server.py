"""The PostgreSQL server of the tests: its URL from OTEL_RUNJOURNAL_TEST_POSTGRES, one schema per test."""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest

TEST_POSTGRES = "OTEL_RUNJOURNAL_TEST_POSTGRES"
HOW_TO_RUN = (
    f"PostgreSQL tests need a server: apt-get install -y postgresql, then "
    f"export {TEST_POSTGRES}=$(scripts/postgres_server.sh start /tmp/rj-pg)"
)


def server_url() -> str:
    """The test server's URL, or skip the test saying how to start one."""
    url = os.environ.get(TEST_POSTGRES, "").strip()
    if not url:
        pytest.skip(HOW_TO_RUN)
    return url


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
