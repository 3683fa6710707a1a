"""Smoke runs of the exporter micro-benchmark (bench/bench_exporter.py): tiny sizes, no timing asserts."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_exporter.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The benchmark script as a module (loaded by path: bench/ is not put on sys.path)."""
    spec = importlib.util.spec_from_file_location("bench_exporter", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = argparse.Namespace(invokes=2, runs=3, repeat=1)


def test_every_workload_and_stage_is_measured(bench: ModuleType) -> None:
    """Both workloads go through mapping only and each real store, every span written, events counted."""
    rows = bench.measure(TINY)
    assert [(r["workload"], r["stage"]) for r in rows] == [
        (w, s) for w in ("agent", "synthetic") for s in ("map+assemble", "duckdb", "jsonl")
    ]
    by_workload = {r["workload"]: r for r in rows}
    assert by_workload["synthetic"]["spans"] == 3 * 4
    assert by_workload["synthetic"]["events"] == 3 * 10  # HANDLER_RUN_EVENTS per run
    assert by_workload["agent"]["spans"] > 0
    for row in rows:
        assert row["events"] == by_workload[row["workload"]]["events"]  # every stage writes the same
        assert row["spans_per_s_best"] > 0
    table = bench._table(rows, rows)
    assert table.count("1.00x") == len(rows)


def test_baseline_runs_the_exporter_at_a_git_revision(bench: ModuleType) -> None:
    """--baseline measures the exporter's modules from git (here HEAD) in a subprocess: its rows."""
    rows = bench.baseline_rows("HEAD", TINY)
    assert {r["stage"] for r in rows} == {"map+assemble", "duckdb", "jsonl"}
