"""Smoke run of bench/bench_serve.py: tiny counts, no timing asserts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_serve_smoke_prints_every_number() -> None:
    """A tiny run journals every span through serve and prints throughput, baselines and RSS."""
    out = subprocess.run(
        [sys.executable, "bench/bench_serve.py", "--senders", "2", "--spans", "220", "--batch", "50"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = {line.split("  ")[0].strip(): line for line in out.stdout.splitlines()}
    assert int(lines["spans journaled"].split()[-1].replace(",", "")) >= 220
    for name in (
        "serve spans/s",
        "in-process exporter spans/s",
        "serve / in-process",
        "serve RSS MB idle/peak/after",
        "serve senders CPU µs/span",
    ):
        assert name in lines, out.stdout
