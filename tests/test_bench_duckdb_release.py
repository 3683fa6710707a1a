"""Smoke run of bench/duckdb_release.py: tiny counts, no timing asserts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_duckdb_release_bench_prints_every_mode() -> None:
    """Two batches each way (hold, release, no checkpoint) are written and reported with their file size."""
    out = subprocess.run(
        [sys.executable, "bench/duckdb_release.py", "--batches", "2", "--rounds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    for mode in ("hold", "release", "no-checkpoint"):
        row = next(line for line in lines if line.startswith(mode + " "))
        assert "x hold" in row and float(row.split("file")[1].split()[0]) > 0
