"""The process's writer instance: one in-memory DuckDB that writer stores attach their files to.

Letting go of the file (``DuckDBStore``'s ``linger`` / ``MAX_HOLD``) used to close a DuckDB instance
and the next operation opened a new one. Starting an instance registers every built-in function
(~20 ms of CPU, measured) and closing one tears them down again, so an exporter that lets go after
every batch (batches less often than ``linger``) paid that twice per batch. Here the instance lives
as long as the process: a turn on the file is ``ATTACH`` … ``DETACH`` (~3 ms), and DETACH takes and
checkpoints exactly what closing did (the file lock is released, the WAL checkpointed), so other
processes get the file as before. Measured in ``bench/README.md`` ("Sixth round").

Stores of this process share an attachment per file (counted), as they shared DuckDB's cached instance
before. One difference: while the file is attached, a plain ``duckdb.connect(path)`` elsewhere in this
process is refused ("Unique file handle conflict") instead of sharing the instance; when such a
connection already holds the file, :func:`attach` reports it and the store connects the old way.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading

import duckdb

SETTINGS = (
    "SET GLOBAL TimeZone = 'UTC'",
    # a writer lives inside the user's process, beside their agent: one DuckDB thread and a bounded
    # buffer pool (DuckDB's defaults: every core, 80% of RAM)
    "SET GLOBAL threads = 1",
    "SET GLOBAL memory_limit = '512MB'",
    # WAL size that triggers a checkpoint inside a commit (default 16 MB, every ~30 exporter batches).
    # A writer lets go of the file within MAX_HOLD seconds, and letting go checkpoints, so the WAL
    # stays bounded; committed data is in the fsynced WAL either way. Fewer checkpoints: +10% writes
    # with pyarrow (measured).
    "SET GLOBAL checkpoint_threshold = '256MB'",
    "SET GLOBAL python_enable_replacements = true",  # pyarrow batches by name
)
"""The writer's settings, for every connection of the instance (``GLOBAL``: cursors inherit them)."""

HELD_IN_PROCESS = "unique file handle conflict"
"""DuckDB's refusal to attach a file another instance of this process has open (lower case)."""

_guard = threading.RLock()
_base: duckdb.DuckDBPyConnection | None = None
_attached: dict[str, int] = {}


def alias(path: str) -> str:
    """The catalog name a file is attached as (from its real path: one per file, a valid identifier)."""
    return "rj_" + hashlib.sha1(os.path.realpath(path).encode()).hexdigest()[:16]


def _instance() -> duckdb.DuckDBPyConnection:
    """The instance's own connection, made on first use (and again in a forked child)."""
    global _base
    if _base is None:
        base = duckdb.connect(":memory:")
        for statement in SETTINGS:
            base.execute(statement)
        _base = base
    return _base


def _forget_after_fork() -> None:
    """In a forked child: the parent's instance is not the child's to use, nor to close (closing it
    waits for DuckDB threads the child does not have, and aborts at exit), so it is kept alive for
    good and the child makes its own on first use."""
    global _base, _guard
    if _base is not None:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(_base))  # never destroyed, not even at exit
        _base = None
    _attached.clear()
    _guard = threading.RLock()  # another thread of the parent may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def attach(path: str) -> duckdb.DuckDBPyConnection | None:
    """A new connection whose default catalog is the file at ``path``, attached if it was not.

    ``None`` when a plain ``duckdb.connect(path)`` of this process holds the file (the caller then
    shares that instance the old way); DuckDB's error when another process holds it.
    """
    name = alias(path)
    with _guard:
        base = _instance()
        if not _attached.get(name):
            try:
                base.execute(f"ATTACH {_quote(path)} AS {name} (TYPE DUCKDB)")
            except duckdb.Error as exc:
                if HELD_IN_PROCESS in str(exc).lower():
                    return None
                raise
            _attached[name] = 0
        _attached[name] += 1
        try:
            con = base.cursor()
            con.execute(f"USE {name}")
        except BaseException:
            detach(path)
            raise
        return con


def detach(path: str) -> None:
    """One connection of :func:`attach` is done (closed by the caller); the last one detaches the
    file, which checkpoints it and releases its lock."""
    name = alias(path)
    with _guard:
        if _base is None or not _attached.get(name):
            return
        _attached[name] -= 1
        if _attached[name] == 0:
            del _attached[name]
            _base.execute(f"DETACH {name}")


def close() -> None:
    """Close the instance (at exit, after every store let go); a later :func:`attach` makes another."""
    global _base
    with _guard:
        if _base is not None:
            base, _base = _base, None
            _attached.clear()
            base.close()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
