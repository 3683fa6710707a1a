"""Export a journal to Parquet, one Hive-style folder per UTC day.

Layout: ``DIR/day=YYYY-MM-DD/runs.parquet``, ``run_events.parquet``, ``spans.parquet``.

**Partitioning.** A run goes to the day it *started* (UTC), with all its events and spans, so a run
is whole in one folder, and a re-export of that day replaces all of it. Runs with no start time,
and spans that belong to no run, are not exported.

**Schema** (explicit types; stable — a column is only ever added):

- ``runs``: the ``runs`` table's columns (DESIGN.md "Store") in its order; ids and text ``VARCHAR``;
  ``started_at``, ``ended_at`` ``TIMESTAMP WITH TIME ZONE`` (Parquet: INT64 microseconds, adjusted
  to UTC); ``duration_ms`` ``DOUBLE``; token counters and ``message_count`` ``BIGINT``;
  ``usage_by_caller`` JSON text (``VARCHAR``).
- ``run_events``: ``thread_id, run_id VARCHAR, seq BIGINT, event_type, category VARCHAR, content
  VARCHAR, metadata VARCHAR (JSON text), created_at TIMESTAMPTZ, trace_id, span_id VARCHAR``,
  ordered by ``run_id, seq``.
- ``spans``: ``trace_id, span_id, parent_span_id, run_id, name, kind VARCHAR, start_time, end_time
  TIMESTAMPTZ, duration_ms DOUBLE, status_code, status_message VARCHAR, attributes, events, resource
  VARCHAR (JSON text)``, ordered by ``run_id, start_time``.

JSON columns are plain strings so every reader takes them (DuckDB: ``metadata::JSON``, ClickHouse:
``JSONExtract``); the ``day`` column comes from the folder name (``hive_partitioning=1``).

**Writing.** DuckDB's own Parquet writer (zstd) does it: a DuckDB journal copies straight out of
its file (one turn on the file per table and day, like a write); a JSONL journal is read by an
in-memory DuckDB under the journal's shared lock; a PostgreSQL journal is streamed out with
``COPY ... TO STDOUT`` (CSV) and loaded into an in-memory DuckDB. A day's three files are written
to a staging folder ``DIR/.staging-<pid>/`` first, then each is renamed into ``day=.../``: a reader
sees the old file or the new one, never half of one, never both.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import duckdb

from . import codec as _codec
from .base import RunStore, StoreError

TABLES = ("runs", "run_events", "spans")

_TS = "TIMESTAMPTZ"


def _run_type(name: str) -> str:
    if name in ("started_at", "ended_at"):
        return _TS
    if name in ("duration_ms", "cost_usd"):
        return "DOUBLE"
    if name in (*_codec.RUN_TOKEN_FIELDS, "message_count", "unpriced_call_count"):
        return "BIGINT"
    if name == "complete":
        return "BOOLEAN"
    return "VARCHAR"


COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "runs": tuple((name, _run_type(name)) for name in _codec.RUN_FIELDS),
    "run_events": (
        ("thread_id", "VARCHAR"), ("run_id", "VARCHAR"), ("seq", "BIGINT"), ("event_type", "VARCHAR"),
        ("category", "VARCHAR"), ("content", "VARCHAR"), ("metadata", "VARCHAR"), ("created_at", _TS),
        ("trace_id", "VARCHAR"), ("span_id", "VARCHAR"),
    ),
    "spans": (
        ("trace_id", "VARCHAR"), ("span_id", "VARCHAR"), ("parent_span_id", "VARCHAR"),
        ("run_id", "VARCHAR"), ("name", "VARCHAR"), ("kind", "VARCHAR"), ("start_time", _TS),
        ("end_time", _TS), ("duration_ms", "DOUBLE"), ("status_code", "VARCHAR"),
        ("status_message", "VARCHAR"), ("attributes", "VARCHAR"), ("events", "VARCHAR"),
        ("resource", "VARCHAR"),
    ),
}  # fmt: skip
"""Each exported table's columns and their DuckDB types, in file order."""

ORDER = {"runs": "started_at, run_id", "run_events": "run_id, seq", "spans": "run_id, start_time, span_id"}


def typed_select(table: str) -> str:
    """``CAST(col AS type) AS col, ...`` for ``table``: the exported schema, whatever the source."""
    return ", ".join(f"CAST({name} AS {kind}) AS {name}" for name, kind in COLUMNS[table])


def copy_sql(table: str, source: str, target: str) -> str:
    """``COPY`` of ``source`` (a relation) as ``table``'s schema to the Parquet file ``target``."""
    quoted = target.replace("'", "''")
    return (
        f"COPY (SELECT {typed_select(table)} FROM {source} ORDER BY {ORDER[table]}) "
        f"TO '{quoted}' (FORMAT parquet, COMPRESSION zstd)"
    )


@dataclass(slots=True)
class DayExport:
    """One exported day: its folder and the rows written per table."""

    day: date
    folder: str
    rows: dict[str, int] = field(default_factory=dict)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC day as [start, end)."""
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


Writer = Callable[[date, str], None]
"""Writes one day's three Parquet files into a folder."""


def export(
    store: RunStore, directory: str, *, since: date | None = None, until: date | None = None
) -> list[DayExport]:
    """Export each day with runs from ``since`` to ``until`` (inclusive, UTC; ``None``: open-ended)."""
    if since is not None and until is not None and since > until:
        raise ValueError(f"--since {since} is after --until {until}")
    directory = os.path.abspath(directory)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create export directory {directory}: {exc}") from exc
    days, write_day = _source(store, since, until)
    done = []
    with _staging(directory) as staging:
        for day in days:
            folder = os.path.join(directory, f"day={day.isoformat()}")
            part = os.path.join(staging, folder.rsplit(os.sep, 1)[1])
            os.makedirs(part)
            write_day(day, part)
            rows = {t: _parquet_rows(os.path.join(part, f"{t}.parquet")) for t in TABLES}
            os.makedirs(folder, exist_ok=True)
            for table in TABLES:
                os.replace(os.path.join(part, f"{table}.parquet"), os.path.join(folder, f"{table}.parquet"))
            os.rmdir(part)
            done.append(DayExport(day, folder, rows))
    return done


@contextmanager
def _staging(directory: str) -> Iterator[str]:
    staging = tempfile.mkdtemp(prefix=".staging-", dir=directory)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _parquet_rows(path: str) -> int:
    con = duckdb.connect(":memory:")
    try:
        row = con.execute("SELECT count(*) FROM read_parquet($1)", [path]).fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def _in_range(days: list[date], since: date | None, until: date | None) -> list[date]:
    return sorted(d for d in days if (since is None or d >= since) and (until is None or d <= until))


def _source(store: RunStore, since: date | None, until: date | None) -> tuple[list[date], Writer]:
    """The days to export and the function that writes one, for this kind of store."""
    from .duckdb.store import DuckDBStore
    from .jsonl.store import JsonlStore

    if isinstance(store, DuckDBStore):
        return _duckdb_source(store, since, until)
    if isinstance(store, JsonlStore):
        return _jsonl_source(store, since, until)
    if type(store).__name__ == "PostgresStore":
        return _postgres_source(store, since, until)
    raise StoreError(f"cannot export {store!r}: not a DuckDB, JSONL or PostgreSQL journal")


# -- DuckDB: straight out of the journal file ----------------------------------------------------


def _duckdb_source(store: Any, since: date | None, until: date | None) -> tuple[list[date], Writer]:
    rows = store._rows("SELECT DISTINCT CAST(started_at AS DATE) FROM runs WHERE started_at IS NOT NULL")
    days = _in_range([r[0] for r in rows], since, until)
    day_runs = "(SELECT run_id FROM runs WHERE started_at >= $1 AND started_at < $2)"
    sources = {
        "runs": "(SELECT * FROM runs WHERE started_at >= $1 AND started_at < $2)",
        "run_events": f"(SELECT * FROM run_events WHERE run_id IN {day_runs})",
        "spans": f"(SELECT * FROM spans WHERE run_id IN {day_runs})",
    }

    def write(day: date, folder: str) -> None:
        start, end = day_bounds(day)
        for table in TABLES:
            target = os.path.join(folder, f"{table}.parquet")
            with store._session() as con:
                try:
                    con.execute(copy_sql(table, sources[table], target), [start, end])
                except duckdb.Error as exc:
                    raise StoreError(f"cannot export {table} of {day}: {exc}") from exc

    return days, write


# -- JSONL: its files read by an in-memory DuckDB, under the journal's shared lock ------------------


def _memory() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET threads = 2")
    return con


def _json_columns(table: str) -> str:
    kinds = {"VARCHAR": "VARCHAR", "BIGINT": "BIGINT", "DOUBLE": "DOUBLE", "BOOLEAN": "BOOLEAN", _TS: _TS}
    json_text = {"metadata", "attributes", "events", "resource", "usage_by_caller"}
    return ", ".join(
        f"{name}: '{'JSON' if name in json_text else kinds[kind]}'" for name, kind in COLUMNS[table]
    )


def _jsonl_source(store: Any, since: date | None, until: date | None) -> tuple[list[date], Writer]:
    from .jsonl.names import safe_file_name
    from .jsonl.snapshot import read_from

    with store._reading():
        runs = [r for r in store._runs.values() if r.started_at is not None]
    days = _in_range(sorted({r.started_at.astimezone(timezone.utc).date() for r in runs}), since, until)

    def write(day: date, folder: str) -> None:
        start, end = day_bounds(day)
        con = _memory()
        with store._reading(), tempfile.TemporaryDirectory(prefix="runjournal-export-") as tmp:
            chosen = [r for r in store._runs.values() if r.started_at and start <= r.started_at < end]
            runs_file = os.path.join(tmp, "runs.jsonl")
            with open(runs_file, "wb") as handle:
                for line in _codec.jsonl_groups([[_codec.run_to_dict(r) for r in chosen]]):
                    handle.write(line)
            ids = [r.run_id for r in chosen]
            # one file per run: DuckDB opening thousands of small files costs more than copying
            # their complete lines into one file and reading that (163 s → see bench_retention.py)
            events_file = os.path.join(tmp, "events.jsonl")
            with open(events_file, "wb") as handle:
                for run_id in ids:
                    data = read_from(os.path.join(store.directory, "events", safe_file_name(run_id)), 0)
                    if data:
                        handle.write(data[: data.rfind(b"\n") + 1])
            event_files = [events_file]
            spans_file = os.path.join(store.directory, "spans.jsonl")
            con.execute("CREATE TEMP TABLE day_runs AS SELECT unnest($1::VARCHAR[]) AS run_id", [ids])
            reads = {
                "runs": _read_json([runs_file], "runs"),
                "run_events": _read_json(event_files, "run_events")
                + " WHERE run_id IN (SELECT run_id FROM day_runs)",
                "spans": _read_json([spans_file] if os.path.exists(spans_file) else [], "spans")
                + " WHERE run_id IN (SELECT run_id FROM day_runs)",
            }
            for table in TABLES:
                con.execute(copy_sql(table, f"({reads[table]})", os.path.join(folder, f"{table}.parquet")))
        con.close()

    return days, write


def _read_json(files: list[str], table: str) -> str:
    """SELECT * over JSON Lines files with ``table``'s columns (an empty relation when no file)."""
    if not files:
        nulls = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in COLUMNS[table])
        return f"SELECT {nulls} WHERE false"
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return (
        f"SELECT * FROM read_json([{listed}], format='newline_delimited', "
        f"columns={{{_json_columns(table)}}}, ignore_errors=true)"
    )


# -- PostgreSQL: COPY TO STDOUT (CSV) into an in-memory DuckDB -------------------------------------


def _postgres_source(store: Any, since: date | None, until: date | None) -> tuple[list[date], Writer]:
    rows = store.sql(
        "SELECT DISTINCT (started_at AT TIME ZONE 'UTC')::date FROM runs WHERE started_at IS NOT NULL"
    )
    days = _in_range([r[0] for r in rows], since, until)
    day_runs = "(SELECT run_id FROM runs WHERE started_at >= %s AND started_at < %s)"
    wheres = {
        "runs": "started_at >= %s AND started_at < %s",
        "run_events": f"run_id IN {day_runs}",
        "spans": f"run_id IN {day_runs}",
    }

    def write(day: date, folder: str) -> None:
        start, end = day_bounds(day)
        con = _memory()
        with tempfile.TemporaryDirectory(prefix="runjournal-export-") as tmp:
            for table in TABLES:
                csv = os.path.join(tmp, f"{table}.csv")
                names = ", ".join(name for name, _ in COLUMNS[table])
                query = f"COPY (SELECT {names} FROM {table} WHERE {wheres[table]}) TO STDOUT (FORMAT csv)"
                with store._connection("export") as conn, open(csv, "wb") as handle:
                    with conn.cursor() as cur, cur.copy(query, (start, end)) as copy:
                        for chunk in copy:
                            handle.write(chunk)
                    conn.rollback()
                columns = ", ".join(f"'{name}': '{kind}'" for name, kind in COLUMNS[table])
                source = (
                    f"(SELECT * FROM read_csv('{csv}', header=false, columns={{{columns}}}, quote='\"', "
                    "escape='\"', allow_quoted_nulls=false, max_line_size=1000000000))"
                )
                con.execute(copy_sql(table, source, os.path.join(folder, f"{table}.parquet")))
        con.close()

    return days, write
