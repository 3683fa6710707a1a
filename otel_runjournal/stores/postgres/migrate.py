"""Bringing a PostgreSQL journal's schema up to date, safely when many processes open a new database at once.

Each process reads the applied versions; when some are missing it takes a session advisory lock, then
reads them again in a *new* transaction (whose snapshot and catalog caches see what the process that
held the lock before committed: a re-read in the same transaction, after ``pg_advisory_xact_lock``,
missed it and re-ran ``CREATE TYPE``), applies what is still missing in one transaction, grants the
``sql()`` sandbox role (:mod:`.sandbox`) the journal's tables and views, and unlocks.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ..base import StoreError
from . import sandbox as _sandbox
from .schema import LATEST_VERSION, MIGRATION_LOCK, MIGRATIONS, SCHEMA_TABLE


def applied_versions(conn: psycopg.Connection[Any]) -> set[int]:
    """The recorded migrations (none when ``schema_migrations`` does not exist yet)."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SCHEMA_TABLE,)).fetchone()
    if not row or not row[0]:
        return set()
    return {int(v) for (v,) in conn.execute(f"SELECT version FROM {SCHEMA_TABLE}").fetchall()}


def _checked(conn: psycopg.Connection[Any], location: str) -> set[int]:
    applied = applied_versions(conn)
    if applied and max(applied) > LATEST_VERSION:
        raise StoreError(
            f"run journal {location} has schema version {max(applied)}, newer than this "
            f"otel-runjournal ({LATEST_VERSION}); upgrade otel-runjournal"
        )
    return applied


def migrate(conn: psycopg.Connection[Any], location: str, *, read_only: bool) -> None:
    """Apply the missing migrations (``location``: for messages, password masked). Raises
    :class:`StoreError` (newer schema; a read-only open of an unmigrated journal) or ``psycopg.Error``."""
    with conn.transaction():
        applied = _checked(conn, location)
    if all(m[0] in applied for m in MIGRATIONS):
        return
    if read_only:
        raise StoreError(f"run journal {location} needs migrating; open it once for writing")
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    conn.commit()
    try:
        with conn.transaction():  # a new transaction: it sees the migrations of whoever held the lock
            applied = _checked(conn, location)
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
            )
            pending = [m for m in MIGRATIONS if m[0] not in applied]
            for version, name, statements in pending:
                for statement in statements:
                    conn.execute(statement)
                conn.execute(f"INSERT INTO {SCHEMA_TABLE} VALUES (%s, %s, now())", (version, name))
            if pending:  # the sql() sandbox may read every journal table and view
                conn.execute(_sandbox.grant(_sandbox.journal_relations(MIGRATIONS)))
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        conn.commit()
