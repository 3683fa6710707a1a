"""Reading a DuckDB journal without changing anything: the locked-down connection and the query gate.

A reader opens the file with DuckDB's ``read_only=True`` (no lock taken for writing, no WAL written,
works on a read-only mount) and with everything outside the journal switched off: no file access
(``COPY ... TO``, ``EXPORT DATABASE``, ``read_csv('/etc/passwd')``, ``ATTACH`` of another file), no
extension install or load, and settings locked after the time zone is set. On top of that, the query
gate lets through one statement of a reading kind only, so ``CHECKPOINT``, ``SET``, ``BEGIN`` ... get
one clear line instead of DuckDB's varied messages.
"""

from __future__ import annotations

import re

import duckdb

from ..base import StoreError

READ_ONLY_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "threads": 1,
}
"""``duckdb.connect`` options for readers (the time zone is set, then the configuration locked)."""

JOURNAL_TABLES = ("runs", "run_events", "spans")
READING_STATEMENTS = ("SELECT", "EXPLAIN")
"""Statement kinds a query may be: ``SELECT`` covers ``WITH``, ``FROM x``, ``DESCRIBE``, ``SHOW``,
``SUMMARIZE`` and table functions; everything else (``COPY``, ``SET``, ``CALL``, ``PRAGMA``,
``ATTACH``, ``INSTALL``/``LOAD``, ``CHECKPOINT``, transactions, DDL, DML) is refused."""


def lock_down(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Set UTC, then lock the configuration (``SET``/``RESET`` fail from here on)."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET lock_configuration = true")
    return con


def check_journal(con: duckdb.DuckDBPyConnection, path: str, latest_version: int) -> None:
    """Raise :class:`StoreError` unless the file holds a run journal this version can read."""
    try:
        found = {
            name
            for (name,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
        missing = [t for t in (*JOURNAL_TABLES, "schema_migrations") if t not in found]
        if missing:
            raise StoreError(
                f"{path} is not a run journal (expected a DuckDB file written by otel-runjournal, "
                f"with tables {', '.join(JOURNAL_TABLES)})"
            )
        row = con.execute("SELECT max(version) FROM schema_migrations").fetchone()
    except duckdb.Error as exc:
        raise StoreError(f"cannot read run journal {path}: {first_line(exc)}") from exc
    version = int(row[0] or 0) if row else 0
    if version > latest_version:
        raise StoreError(
            f"run journal {path} has schema version {version}, newer than this otel-runjournal "
            f"({latest_version}); upgrade otel-runjournal"
        )
    # an older journal is read as it is: its tables are the same, only newer views may be missing


def check_read_query(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Raise :class:`StoreError` (one line) unless ``query`` is exactly one reading statement."""
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise StoreError(first_line(exc)) from exc
    if not statements:
        raise StoreError("no SQL statement given (example: select * from runs limit 5)")
    if len(statements) > 1:
        raise StoreError(f"one statement at a time, got {len(statements)}")
    kind = str(statements[0].type).rsplit(".", 1)[-1]
    if kind not in READING_STATEMENTS:
        raise StoreError(
            f"the run journal is read-only here: {_named(statements[0].query, kind)} statements are refused "
            "(use SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN)"
        )


def _named(text: str, kind: str) -> str:
    """What the user wrote (``INSTALL``, ``CHECKPOINT``, ``USE``), not DuckDB's statement type for it
    (``LOAD``, ``CALL``, ``SET``)."""
    words = re.findall(r"[A-Za-z_]+", re.sub(r"--[^\n]*|/\*.*?\*/", " ", text, flags=re.S))[:2]
    if words and words[0].upper() == "FORCE" and len(words) > 1:
        words = words[1:]
    return words[0].upper() if words else kind


def first_line(exc: BaseException) -> str:
    """The first line of an error message (DuckDB's carry context lines after it)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
