"""Smoke runs of the exporter micro-benchmark (bench/bench_exporter.py): tiny sizes, no timing asserts."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from bench_scripts import load_bench

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_exporter.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The benchmark script as a module."""
    return load_bench("bench_exporter")


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
    assert "speed-up" not in bench._table(rows)


def test_baseline_is_measured_in_turns_with_the_current_code(bench: ModuleType, tmp_path: Path) -> None:
    """--baseline installs the exporter at a git revision as a second package; both get every row."""
    package = bench.install_baseline("HEAD", tmp_path)
    try:
        rows = bench.measure(TINY, [bench.CURRENT, package])
    finally:
        sys.path.remove(str(tmp_path))
    assert {(r["package"], r["stage"]) for r in rows} == {
        (p, s) for p in (bench.CURRENT, package) for s in ("map+assemble", "duckdb", "jsonl")
    }
    assert (tmp_path / package / "journal" / "mapping.py").read_bytes() == subprocess.run(
        ["git", "-C", str(SCRIPT.parents[1]), "show", "HEAD:otel_runjournal/journal/mapping.py"],
        check=True,
        capture_output=True,
    ).stdout
    lines = bench._table(rows).splitlines()[2:]  # under the header: one line per current row
    assert len(lines) == len(rows) // 2
    assert all(line.endswith("x") for line in lines)  # each with its speed-up over the baseline


def test_pipeline_reports_a_ratio_per_variant(bench: ModuleType) -> None:
    """--pipeline times the traced agent against the untraced one for every exporter variant."""
    results = bench.pipeline(invokes=2, rounds=1)
    assert [r["variant"] for r in results] == list(bench.PIPELINE_VARIANTS)
    assert all(r["wall_ratio"] > 0 and r["cpu_ratio"] > 0 for r in results)
