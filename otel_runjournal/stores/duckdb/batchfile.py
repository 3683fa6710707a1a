"""The json path's batch files: one private directory per writer connection, one fixed file per table,
and the inserts over them prepared once per connection (see :mod:`.insert`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

FILE = "__runjournal_batch_file__"
"""Stands for the batch file's quoted path in the json path's SQL (replaced when it is prepared)."""

MIN_LIMIT = 2**24
"""``read_json``'s default ``maximum_object_size`` (one document: here the whole batch). DuckDB
allocates a buffer of that size, so larger batches get the next power of two, not a huge constant."""


def limit(data: bytes) -> int:
    """``read_json``'s ``maximum_object_size`` for a document of ``data``'s size."""
    return max(MIN_LIMIT, 1 << len(data).bit_length())


class Batches:
    """One writer connection's batch files and the inserts prepared over them (json path).

    Each table's batch goes to a fixed file in a private directory, so its ``INSERT ... FROM
    read_json('<file>')`` is parsed once per connection (``PREPARE``) and each write only runs
    ``EXECUTE``. DuckDB still binds ``read_json`` again on every ``EXECUTE``, so this saves the
    parsing only: ~2.5% of an exporter batch's instructions (``bench/README.md``, "Third round").
    The file exists only while its statement runs, as a ``mkstemp`` file did before.
    """

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="runjournal-")
        self._prepared: dict[str, str] = {}

    def close(self) -> None:
        """Remove the directory (the connection's prepared statements go with the connection)."""
        shutil.rmtree(self.dir, ignore_errors=True)

    @contextmanager
    def file(self, name: str, data: bytes) -> Iterator[str]:
        """``data`` in the file ``name`` of this connection's directory, removed afterwards."""
        path = os.path.join(self.dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            yield path
        finally:
            os.unlink(path)

    def run(self, con: duckdb.DuckDBPyConnection, path: str, sql: str) -> None:
        """Run ``sql`` over the batch file ``path`` (``FILE`` in ``sql``), prepared on first use."""
        name = self._prepared.get(sql)
        if name is None:
            name = f"runjournal_{len(self._prepared)}"
            con.execute(f"PREPARE {name} AS {sql.replace(FILE, _quoted(path))}")
            self._prepared[sql] = name
        con.execute(f"EXECUTE {name}")


def _quoted(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"
