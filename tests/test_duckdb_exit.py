"""A process that exits while its DuckDB store lingers open exits cleanly (no abort at shutdown)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from otel_runjournal.stores import DuckDBStore
    from otel_runjournal.records import RunRecord, RunWrite
    store = DuckDBStore(sys.argv[1])
    store.write([RunWrite(RunRecord("r", "t"))])
    time.sleep(float(sys.argv[2]))  # exit around the moment the linger timer releases the file
    """
)


def test_exit_during_linger_never_aborts(tmp_path: Path) -> None:
    """Exiting without close() near the 0.2 s linger release neither aborts nor loses the write."""
    codes = []
    for i in range(12):
        db = tmp_path / f"j{i}.duckdb"
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(db), f"{0.17 + 0.005 * i:.3f}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        codes.append((proc.returncode, proc.stderr[-300:]))
    assert all(code == 0 for code, _ in codes), codes
    from otel_runjournal.stores import DuckDBStore

    with DuckDBStore(tmp_path / "j0.duckdb", read_only=True) as store:
        assert store.get_run("r") is not None
