"""Columnar batch insertion into DuckDB: a write's rows go in as whole columns, a few statements per write.

Two ways to hand a batch's columns to DuckDB:

- ``arrow`` (when pyarrow is installed, the ``fast`` extra): the columns become a pyarrow table that
  DuckDB scans in place. JSON columns are encoded per value (a value shared by many rows once),
  datetimes converted by pyarrow (in C; naive ones taken as UTC, as ``codec.to_us`` does).
- ``json`` (no extra dependency): the whole batch is encoded by one ``orjson`` call as
  ``{"column": [values...]}``, written to a private temp file with one ``os.write`` and read back
  by ``read_json`` (typed columns) and ``unnest``. JSON columns travel as nested JSON, timestamps
  as ISO-8601 text. Reading the file parses faster than ``json_transform`` over the same text passed
  as a parameter (events of one exporter batch: 4.3 ms against 6.5 ms, measured; in instructions
  2.6x). The document is read as ``newline_delimited`` (compact JSON is one line): DuckDB then
  hands the line to the parser as is, where ``unstructured`` first walks every byte to find where
  the document ends (a quarter of the events' insert, counted with callgrind).

The ``runs`` rows (a few hundred, 30 columns) go the other way round on the json path: one JSON
object per line, read without ``unnest`` (binding 30 unnests was most of that statement).

List parameters (``unnest($1::VARCHAR[])``) are avoided for these tables: DuckDB converts them value
by value in Python, which costs more than the insert itself. ``thread_seq``'s two short columns are
the exception: there the conversion is cheaper than setting up a batch file. Measured costs per
write and the ideas that did not pay are in ``bench/README.md`` ("DuckDB store write").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from operator import attrgetter
from typing import Any

import duckdb

from ...records import RunEvent, RunRecord, SpanRecord
from .. import codec as _codec
from .batchfile import FILE as _FILE
from .batchfile import MIN_LIMIT as _JSON_FILE_MIN_LIMIT
from .batchfile import Batches
from .batchfile import limit as _limit

try:  # a declared dependency; codec falls back to the stdlib without it
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

try:  # optional fast path (the ``fast`` extra)
    import pyarrow as pa
except ImportError:  # pragma: no cover - exercised where pyarrow is absent
    pa = None

_ARROW_NAME = "_runjournal_batch_rows"
"""The local variable :func:`execute` holds the batch's pyarrow table in, named in its SQL."""

# column kinds: how a value is passed and converted back in SQL
_STR, _INT, _FLOAT, _JSON, _TS, _CATEGORY = "str", "int", "float", "json", "ts", "category"
_BOOL = "bool"

_JSON_TYPES = {_STR: "VARCHAR", _INT: "BIGINT", _FLOAT: "DOUBLE", _JSON: "JSON", _TS: "TIMESTAMPTZ",
               _CATEGORY: "VARCHAR", _BOOL: "BOOLEAN"}  # fmt: skip


_VALUES = "__values"
"""Suffix of a shared column's distinct values in the json path's batch document."""


@dataclass(frozen=True)
class Table:
    """A table's inserted columns: (name, kind, value getter) in the table's column order.

    ``shared``: JSON columns whose rows usually hold one object between them (every span row's
    resource dict, see ``journal.spanread.resource_of``); the json path sends each distinct object
    once and a 1-based index per row (see :func:`_shared_column`).
    """

    name: str
    columns: tuple[tuple[str, str, Callable[[Any], Any]], ...]
    shared: tuple[str, ...] = ()

    @cache  # noqa: B019 - a handful of module-level tables, each with two modes (and a few sizes)
    def source(
        self,
        mode: str,
        limit: int = _JSON_FILE_MIN_LIMIT,
        indexed: tuple[str, ...] = (),
    ) -> str:
        """The batch as a relation: a pyarrow table (arrow) or read from the JSON file ``_FILE``
        stands for (json, see :meth:`Batches.run`), a document of at most ``limit`` bytes, where
        the ``indexed`` columns travel as distinct values and an index per row."""
        if mode == "arrow":
            return _ARROW_NAME
        columns = ", ".join(
            f"{name}: 'BIGINT[]', {name}{_VALUES}: '{_JSON_TYPES[kind]}[]'"
            if name in indexed
            else f"{name}: '{_JSON_TYPES[kind]}[]'"
            for name, kind, _ in self.columns
        )
        unnested = ", ".join(
            f"j.{name}{_VALUES}[unnest(j.{name})] AS {name}"
            if name in indexed
            else f"unnest(j.{name}) AS {name}"
            for name, _, _ in self.columns
        )
        return (
            f"(SELECT {unnested} FROM read_json({_FILE}, columns={{{columns}}}, "
            f"format='newline_delimited', records=true, maximum_object_size={limit:d}) AS j)"
        )

    @cache  # noqa: B019
    def insert_sql(self, mode: str) -> str:
        """``INSERT`` of the batch (``{source}``, see :func:`execute`), converting each column back
        to the table's type."""
        names = ", ".join(name for name, _, _ in self.columns)
        exprs = ", ".join(
            _arrow_expr(name, kind) if mode == "arrow" or kind == _CATEGORY else name
            for name, kind, _ in self.columns
        )
        return f"INSERT INTO {self.name} ({names}) SELECT {exprs} FROM {{source}}"


def _arrow_expr(name: str, kind: str) -> str:
    if kind == _JSON:
        return f"CAST({name} AS JSON)"
    if kind == _TS:
        return f"CAST({name} AS TIMESTAMPTZ)"
    if kind == _CATEGORY:
        return f"CAST({name} AS event_category)"
    return name


def _attr(name: str) -> Callable[[Any], Any]:
    return attrgetter(name)


EVENTS = Table(
    "run_events",
    tuple(
        (name, kind, _attr(name))
        for name, kind in (
            ("thread_id", _STR), ("run_id", _STR), ("seq", _INT), ("event_type", _STR),
            ("category", _CATEGORY), ("content", _STR), ("metadata", _JSON), ("created_at", _TS),
            ("trace_id", _STR), ("span_id", _STR),
        )
    ),
)  # fmt: skip
SPANS = Table(
    "spans",
    tuple(
        (name, kind, _attr(name))
        for name, kind in (
            ("trace_id", _STR), ("span_id", _STR), ("parent_span_id", _STR), ("run_id", _STR),
            ("name", _STR), ("kind", _STR), ("start_time", _TS), ("end_time", _TS),
            ("duration_ms", _FLOAT), ("status_code", _STR), ("status_message", _STR),
            ("attributes", _JSON), ("events", _JSON), ("resource", _JSON),
        )
    ),
    shared=("resource",),
)  # fmt: skip
RUNS = Table(
    "runs",
    tuple(
        (
            name,
            _TS if name in ("started_at", "ended_at")
            else _JSON if name == "usage_by_caller"
            else _FLOAT if name in ("duration_ms", "cost_usd")
            else _BOOL if name == "complete"
            else _INT if name in (*_codec.RUN_TOKEN_FIELDS, "message_count", "unpriced_call_count")
            else _STR,
            _attr(name),
        )
        for name in _codec.RUN_FIELDS
    ),
)  # fmt: skip
_RUN_NAMES = ", ".join(name for name, _, _ in RUNS.columns)
_RUNS_ROWS_SQL = (
    f"INSERT INTO runs ({_RUN_NAMES}) SELECT {_RUN_NAMES} FROM read_json({_FILE}, columns={{{{"
    + ", ".join(f"{name}: '{_JSON_TYPES[kind]}'" for name, kind, _ in RUNS.columns)
    + "}}, format='newline_delimited', records=true, maximum_object_size={limit:d})"
)

_ARROW_TYPES: dict[str, Any] = {}
if pa is not None:
    _ARROW_TYPES = {_STR: pa.string(), _INT: pa.int64(), _FLOAT: pa.float64(), _JSON: pa.string(),
                    _TS: pa.timestamp("us", tz="UTC"), _CATEGORY: pa.string(), _BOOL: pa.bool_()}  # fmt: skip


def _json_column(values: list[Any]) -> list[bytes]:
    """Each value as JSON (bytes: pyarrow takes UTF-8 as is), a value shared by many rows encoded once.

    Rows share objects: every span row of a process holds the same resource dict (see
    ``journal.spanread.resource_of``), so that column is one encoding repeated, not 2,048.
    """
    split = _shared_column(values)
    if split is None:
        return _codec.dumpb_all(values)
    index, unique = split
    encoded = _codec.dumpb_all(unique)
    return [encoded[n - 1] for n in index]


def _shared_column(values: list[Any]) -> tuple[list[int], list[Any]] | None:
    """``values`` as (1-based index per row, distinct objects), or ``None`` if most are distinct.

    By identity, not equality: rows that share one object (a process's resource dict) are found
    without hashing or encoding each row's copy. The stored text is the same either way.
    """
    ids = list(map(id, values))  # every value is alive (in ``values``): ids are not reused
    unique = dict(zip(ids, values, strict=True))
    if len(unique) * 2 > len(values):
        return None
    position = {key: n for n, key in enumerate(unique, 1)}
    return list(map(position.__getitem__, ids)), list(unique.values())


def _dumpb(value: Any) -> bytes:
    """:func:`codec.dumpb`, trying orjson without ``OPT_NON_STR_KEYS`` first (its dict path is slower;
    the text is the same when every key is a string, as in nearly every batch)."""
    if _orjson is not None:
        try:
            return _orjson.dumps(value, default=str, option=_orjson.OPT_NAIVE_UTC)
        except (TypeError, ValueError):  # a non-str key, an int beyond 64 bits, a lone surrogate
            pass
    return _codec.dumpb(value)


def _run_line(run: RunRecord) -> bytes:
    """One ``runs`` row as a JSON object (orjson encodes the dataclass by field name)."""
    if _orjson is not None:
        try:
            return _orjson.dumps(run, default=str, option=_orjson.OPT_NAIVE_UTC)
        except (TypeError, ValueError):  # a non-str key, an int beyond 64 bits, a lone surrogate
            pass
    return _codec.dumpb({name: getattr(run, name) for name in _codec.RUN_FIELDS})


@cache
def _formatted(statement: str, source: str) -> str:
    """``statement`` over ``source`` (cached: the same few strings every write, no path in them)."""
    return statement.format(source=source)


@cache
def _runs_rows_sql(limit: int) -> str:
    return _RUNS_ROWS_SQL.format(limit=limit)


def arrow_table(table: Table, rows: Sequence[Any], overrides: dict[str, list[Any]]) -> Any:
    """The arrow path's batch: ``rows`` as a pyarrow table of ``table``'s columns (``overrides``:
    whole columns by name)."""
    assert pa is not None
    arrays = {}
    for name, kind, get in table.columns:
        values = overrides.get(name)
        if values is None:
            values = list(map(get, rows))
            if kind == _JSON:
                values = _json_column(values)
        arrays[name] = pa.array(values, _ARROW_TYPES[kind])
    return pa.table(arrays)


def json_payload(
    table: Table, rows: Sequence[Any], overrides: dict[str, list[Any]]
) -> tuple[dict[str, list[Any]], list[str]]:
    """The json path's batch document before encoding, and the columns that travel as distinct
    values plus an index per row (see :func:`_shared_column`)."""
    payload: dict[str, list[Any]] = {}
    indexed: list[str] = []
    for name, _, get in table.columns:
        values = overrides[name] if name in overrides else list(map(get, rows))
        split = _shared_column(values) if name in table.shared else None
        if split is None:
            payload[name] = values
        else:
            payload[name], payload[name + _VALUES] = split
            indexed.append(name)
    return payload, indexed


def execute(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    rows: Sequence[Any],
    mode: str,
    statements: Sequence[str],
    batches: Batches | None,
    *,
    overrides: dict[str, list[Any]] | None = None,
) -> None:
    """Run ``statements`` (``{source}`` = the batch as a relation, see :meth:`Table.source`) over
    ``rows``, objects with the table's attributes; ``overrides`` supplies whole columns by name.
    The json path needs the connection's ``batches``."""
    if not rows:
        return
    overrides = overrides or {}
    if mode == "arrow":
        # DuckDB finds the table by this local variable's name (a "replacement scan"): half the
        # cost of register()/unregister() per statement. It must be called from this frame.
        _runjournal_batch_rows = arrow_table(table, rows, overrides)
        for statement in statements:
            con.execute(statement.format(source=_ARROW_NAME))
    else:
        payload, indexed = json_payload(table, rows, overrides)
        assert batches is not None
        data = _dumpb(payload)
        limit = _limit(data)
        source = table.source(mode, limit, tuple(indexed))
        with batches.file(table.name, data) as path:
            for statement in statements:
                batches.run(con, path, _formatted(statement, source))


def events(
    con: duckdb.DuckDBPyConnection, rows: list[RunEvent], seqs: list[int], mode: str, batches: Batches | None
) -> None:
    """Append the batch's events with their assigned ``seqs``."""
    execute(con, EVENTS, rows, mode, [EVENTS.insert_sql(mode)], batches, overrides={"seq": seqs})


def spans(con: duckdb.DuckDBPyConnection, rows: list[SpanRecord], mode: str, batches: Batches | None) -> None:
    """Append the batch's spans."""
    execute(con, SPANS, rows, mode, [SPANS.insert_sql(mode)], batches)


def runs(
    con: duckdb.DuckDBPyConnection,
    rows: list[RunRecord],
    known: Sequence[str],
    mode: str,
    batches: Batches | None,
) -> None:
    """Upsert run summaries by ``run_id``: delete those ``known`` (already stored), insert all.

    Delete + insert is cheaper than ``INSERT OR REPLACE``; a batch of new runs (the common case,
    ``known`` empty) is a plain insert.
    """
    replaced = {r.run_id for r in rows}.intersection(known) if known else None
    if replaced:
        con.execute("DELETE FROM runs WHERE run_id IN (SELECT unnest($1::VARCHAR[]))", [list(replaced)])
    if mode == "arrow" or not rows:
        execute(con, RUNS, rows, mode, [RUNS.insert_sql(mode)], batches)
        return
    # a few hundred rows of 30 columns: one JSON object per line, read without unnest (about a
    # fifth cheaper than the column document, whose cost here is binding 30 unnests)
    assert batches is not None
    data = b"\n".join(map(_run_line, rows))
    limit = _limit(data)
    with batches.file("runs", data) as path:
        batches.run(con, path, _runs_rows_sql(limit))


def thread_seqs(con: duckdb.DuckDBPyConnection, last: dict[str, int], existing: set[str]) -> None:
    """Write each thread's new last seq: ``UPDATE`` the ``existing`` threads' rows, insert the rest.

    As list parameters: a few hundred values convert faster than a batch file or table is set up.
    """
    for rows, sql in (
        (
            [(t, seq) for t, seq in last.items() if t in existing],
            "UPDATE thread_seq SET last_seq = s.last_seq FROM (SELECT unnest($1::VARCHAR[]) AS thread_id, "
            "unnest($2::BIGINT[]) AS last_seq) AS s WHERE thread_seq.thread_id = s.thread_id",
        ),
        (
            [(t, seq) for t, seq in last.items() if t not in existing],
            "INSERT INTO thread_seq SELECT unnest($1::VARCHAR[]), unnest($2::BIGINT[])",
        ),
    ):
        if rows:
            threads, seqs = zip(*rows, strict=True)
            con.execute(sql, [list(threads), list(seqs)])
