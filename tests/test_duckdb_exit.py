"""A process that exits while its DuckDB store lingers open exits cleanly (no abort at shutdown)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from otel_runjournal.stores import DuckDBStore
from otel_runjournal.stores.duckdb.store import DEFAULT_LINGER

EXITS = 12
SPREAD = 0.06  # exits spread over DEFAULT_LINGER ± 0.03 s: before, at and after the timer's release

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from otel_runjournal.stores import DuckDBStore
    from otel_runjournal.records import RunRecord, RunWrite
    store = DuckDBStore(sys.argv[1])  # the default linger, the one the test reads
    store.write([RunWrite(RunRecord(sys.argv[3], "t"))])
    time.sleep(float(sys.argv[2]))  # exit around the moment the linger timer releases the file
    """
)


def test_exit_during_linger_never_aborts(tmp_path: Path) -> None:
    """Exiting without close() around the store's current linger release neither aborts nor loses a write."""
    assert DEFAULT_LINGER > SPREAD  # a linger of 0 would leave no race to exercise
    delays = [DEFAULT_LINGER - SPREAD / 2 + SPREAD * i / (EXITS - 1) for i in range(EXITS)]
    codes = []
    for i, delay in enumerate(delays):
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tmp_path / f"j{i}.duckdb"), f"{delay:.4f}", f"r{i}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        codes.append((delay, proc.returncode, proc.stderr[-300:]))
    assert all(code == 0 for _, code, _ in codes), codes
    for i in range(EXITS):
        with DuckDBStore(tmp_path / f"j{i}.duckdb", read_only=True) as store:
            assert [r.run_id for r in store.list_runs(limit=10)] == [f"r{i}"], i
