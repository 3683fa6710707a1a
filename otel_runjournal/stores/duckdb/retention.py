"""Pruning a DuckDB journal, and giving the space back (rules: ``stores/retention.py``).

What gives space back, measured on DuckDB 1.x/2.0 (a 1M-row table, half of it deleted): neither
``CHECKPOINT`` nor ``VACUUM`` shrinks the file. The row groups of deleted rows become free blocks
(``pragma_database_size``: 84 of 178 blocks free) that later writes reuse, so a journal pruned on a
schedule stops growing, but stays at its high-water size. Only a rewrite shrinks it: ``COPY FROM
DATABASE`` into a new file (tables, views, indexes, types) and a rename over the old one — see
:func:`compact`, ``otel-runjournal prune --compact``.
"""

from __future__ import annotations

import os
from contextlib import suppress
from datetime import datetime
from typing import Any

import duckdb

from ..retention import PRUNE_CHUNK

_IDS = "(SELECT unnest($1::VARCHAR[]))"


def prune_filter(older_than: datetime, keep_errors: bool, thread_id: str | None) -> tuple[str, list[Any]]:
    """The ``WHERE`` of the runs a prune selects (see ``stores.retention.selected``)."""
    where = "status <> 'running' AND started_at IS NOT NULL AND started_at < $1"
    params: list[Any] = [older_than]
    if keep_errors:
        where += " AND status <> 'error'"
    if thread_id is not None:
        params.append(thread_id)
        where += f" AND thread_id = ${len(params)}"
    return where, params


def count(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> tuple[int, int, int]:
    """(runs, events, spans) a prune would delete."""
    victims = f"(SELECT run_id FROM runs WHERE {where})"
    row = con.execute(
        f"SELECT (SELECT count(*) FROM runs WHERE {where}), "
        f"(SELECT count(*) FROM run_events WHERE run_id IN {victims}), "
        f"(SELECT count(*) FROM spans WHERE run_id IN {victims})",
        params,
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def delete_chunk(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> tuple[int, int, int]:
    """Delete up to :data:`PRUNE_CHUNK` selected runs whole, in the caller's open transaction."""
    ids = [
        r
        for (r,) in con.execute(
            f"SELECT run_id FROM runs WHERE {where} ORDER BY started_at, run_id LIMIT {PRUNE_CHUNK:d}", params
        ).fetchall()
    ]
    if not ids:
        return 0, 0, 0
    deleted = []
    for table in ("run_events", "spans", "runs"):
        row = con.execute(f"DELETE FROM {table} WHERE run_id IN {_IDS}", [ids]).fetchone()
        deleted.append(int(row[0]) if row else 0)
    return len(ids), deleted[0], deleted[1]


def file_size(path: str) -> int:
    """The journal's bytes on disk: the file and its write-ahead log."""
    total = 0
    for name in (path, f"{path}.wal"):
        with suppress(FileNotFoundError):
            total += os.path.getsize(name)
    return total


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def compact(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """Rewrite the journal at ``path`` into a new file and rename it over the old one.

    Call with the file held (this process's only connection, ``con``): the rename happens while it is
    still held, so a writer of another process that waits for the file opens the new one when it gets
    its turn. The caller closes ``con`` right after.
    """
    con.execute("CHECKPOINT")
    row = con.execute("SELECT current_database()").fetchone()
    assert row is not None
    source = '"' + str(row[0]).replace('"', '""') + '"'
    temp = f"{path}.compact-{os.getpid()}"
    for name in (temp, f"{temp}.wal"):
        if os.path.exists(name):
            os.remove(name)
    try:
        con.execute(f"ATTACH {_quote(temp)} AS rj_compact")
        try:
            con.execute(f"COPY FROM DATABASE {source} TO rj_compact")
        finally:
            con.execute("DETACH rj_compact")
        os.replace(temp, path)
    finally:
        for name in (temp, f"{temp}.wal"):
            if os.path.exists(name):
                os.remove(name)
