"""Pruning a PostgreSQL journal (rules: ``stores/retention.py``), and what gives the space back.

Each chunk of runs is one transaction that locks its ``runs`` rows first (``FOR UPDATE SKIP
LOCKED``): a run a writer is upserting right now is skipped (the next prune takes it), and a writer
that wants a run the prune has locked waits for the prune's commit, then inserts it anew — nothing
written concurrently is lost, and nobody waits on anybody in a cycle. ``thread_seq`` is not touched.

Space: a ``DELETE`` leaves dead tuples; ``VACUUM`` (autovacuum, or the plain ``VACUUM (ANALYZE)``
:func:`vacuum` runs after a prune, which takes no lock that blocks writers) makes their space
reusable by later writes, so the tables stop growing, but the files do not shrink. Only ``VACUUM
FULL`` (or ``pg_repack``) returns it to the operating system, and ``VACUUM FULL`` locks the table
exclusively while it rewrites it: run it in a quiet hour, if ever. For autovacuum to keep up with a
daily prune nothing special is needed (its default 20 % scale factor triggers after a prune of a
fifth of a table); a very large journal may want ``ALTER TABLE run_events SET
(autovacuum_vacuum_scale_factor = 0.05)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import psycopg

from ..base import StoreError
from ..retention import PRUNE_CHUNK, PruneResult

_logger = logging.getLogger(__name__)

TABLES = ("run_events", "spans", "runs")


def prune_filter(older_than: datetime, keep_errors: bool, thread_id: str | None) -> tuple[str, list[Any]]:
    """The ``WHERE`` of the runs a prune selects (see ``stores.retention.selected``)."""
    where = "status <> 'running' AND started_at IS NOT NULL AND started_at < %s"
    params: list[Any] = [older_than]
    if keep_errors:
        where += " AND status <> 'error'"
    if thread_id is not None:
        where += " AND thread_id = %s"
        params.append(thread_id)
    return where, params


def count(conn: psycopg.Connection[Any], where: str, params: list[Any]) -> tuple[int, int, int, int]:
    """(runs, events, spans, bytes of their rows) a prune would delete."""
    victims = f"(SELECT run_id FROM runs WHERE {where})"
    totals = []
    for table in TABLES:
        row = conn.execute(
            f"SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM {table} t "
            f"WHERE run_id IN {victims}",
            params,
        ).fetchone()
        assert row is not None
        totals.append((int(row[0]), int(row[1])))
    (events, eb), (spans, sb), (runs, rb) = totals
    return runs, events, spans, eb + sb + rb


def delete_chunk(conn: psycopg.Connection[Any], where: str, params: list[Any]) -> tuple[int, int, int, int]:
    """Delete up to :data:`PRUNE_CHUNK` selected runs whole, in the connection's open transaction."""
    ids = [
        r
        for (r,) in conn.execute(
            f"SELECT run_id FROM runs WHERE {where} ORDER BY started_at, run_id LIMIT {PRUNE_CHUNK:d} "
            "FOR UPDATE SKIP LOCKED",
            params,
        ).fetchall()
    ]
    if not ids:
        return 0, 0, 0, 0
    counts = []
    for table in TABLES:
        row = conn.execute(
            f"WITH d AS (DELETE FROM {table} t WHERE run_id = ANY(%s) RETURNING pg_column_size(t.*) AS b) "
            "SELECT count(*), coalesce(sum(b), 0) FROM d",
            [ids],
        ).fetchone()
        assert row is not None
        counts.append((int(row[0]), int(row[1])))
    return len(ids), counts[0][0], counts[1][0], sum(b for _, b in counts)


def tables_size(conn: psycopg.Connection[Any]) -> int:
    """Bytes of the three tables with their indexes and TOAST."""
    row = conn.execute("SELECT " + " + ".join(f"pg_total_relation_size('{t}')" for t in TABLES)).fetchone()
    assert row is not None
    return int(row[0])


def vacuum_or_log(
    direct: Callable[[], AbstractContextManager[psycopg.Connection[Any]]], scrub: Callable[[Any], str]
) -> None:
    """``VACUUM (ANALYZE)`` the three tables on a connection of its own (outside a transaction, no
    statement timeout); a failure (e.g. not the tables' owner) is logged: autovacuum will do it."""
    try:
        with direct() as conn:
            conn.autocommit = True
            conn.execute("SET statement_timeout = 0")
            conn.execute(f"VACUUM (ANALYZE) {', '.join(TABLES)}")
    except (psycopg.Error, StoreError) as exc:
        _logger.warning("prune: VACUUM failed (%s); autovacuum will reclaim the space", scrub(exc))


def run(conn: psycopg.Connection[Any], where: str, params: list[Any], *, dry_run: bool) -> PruneResult:
    """Count (``dry_run``) or delete the selected runs, chunk by chunk, one transaction each."""
    result = PruneResult(dry_run=dry_run)
    if dry_run:
        with conn.transaction():
            runs, events, spans, size = count(conn, where, params)
        result.add(runs, events, spans, size)
        return result
    with conn.transaction():
        result.size_before = tables_size(conn)
    while True:
        with conn.transaction():
            runs, events, spans, size = delete_chunk(conn, where, params)
        if not runs:
            return result
        result.add(runs, events, spans, size)
