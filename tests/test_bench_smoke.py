"""Smoke runs of the benchmark harness (bench/): tiny iteration counts, no timing asserts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import memory  # noqa: E402
import run  # noqa: E402
import tracers  # noqa: E402
import workload  # noqa: E402

TINY = ["--rounds", "1", "--sync-invokes", "1", "--async-batches", "1", "--no-memory", "--no-stores"]


def test_workload_has_the_documented_shape() -> None:
    """The timed workload is the demo agent with 3 model calls and 2 tool calls per invoke."""
    workload.check(workload.build())


def test_smoke_run_prints_a_row_for_every_installed_variant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One tiny round produces a table with a row, span count and ratios for every installed variant."""
    raw_path = tmp_path / "raw.json"
    run.main([*TINY, "--json", str(raw_path)])
    table = capsys.readouterr().out
    installed = [n for n in tracers.VARIANTS if tracers.missing(n) is None]
    assert {"untraced", "noop_handler", "ours_duckdb", "ours_jsonl", "ours_otlp", "ours_memory"} <= set(
        installed
    )
    raw = json.loads(raw_path.read_text())["overhead"]
    assert set(raw) == set(installed)
    rows = {line.split(" | ")[0].strip("| †") for line in table.splitlines() if line.startswith("| ")}
    for name in installed:
        assert tracers.LABELS[name] in rows, name
        result = raw[name]
        assert len(result["sync"]) == len(result["async"]) == 1
        assert all(r > 0 for r in run.ratios(result, "sync") + run.ratios(result, "async"))
        spans = result["spans_per_invoke"]["sync"]
        assert spans == 0 if name in ("untraced", "noop_handler") else spans >= 5, (name, spans)
        assert result["spans_per_invoke"]["async"] == spans, name
    for name in set(tracers.VARIANTS) - set(installed):
        assert name in table  # listed as skipped, with the reason
    # every span our handler made in the OTLP variant reached the loopback sink: warm-up (3 sync invokes,
    # one async batch) plus the timed round (1 sync invoke, one async batch), at the spans per invoke seen
    otlp = raw["ours_otlp"]
    invokes = 3 + workload.CONCURRENCY + 1 + workload.CONCURRENCY
    assert otlp["info"]["sink_spans"] == otlp["spans_per_invoke"]["sync"] * invokes


def test_unknown_variant_is_refused() -> None:
    """Asking for a variant the harness does not know is an error, not a silent skip."""
    with pytest.raises(ValueError, match="unknown variant"), tracers.open_session("nope"):
        pass


def test_memory_callbacks_are_recorded_from_a_real_run() -> None:
    """The memory bench replays the exact callback sequence of a real root-chain → chat-model run."""
    calls = memory.record_run()
    assert [c[0] for c in calls] == ["on_chain_start", "on_chat_model_start", "on_llm_end", "on_chain_end"]
    assert calls[1][2]["parent_run_id"] == calls[0][2]["run_id"]


def test_memory_smoke_reports_rss_and_bounded_open_runs() -> None:
    """A tiny memory run reports RSS samples, ends every complete run and sweeps abandoned ones."""
    report = memory.run(200, 50, log=lambda _: None, ttl=0.05)
    raw = report.raw
    assert raw["samples"][-1]["runs"] == 200
    assert raw["samples"][-1]["open_runs"] == 0
    assert raw["abandoned_open_after"] == 0
    assert raw["stored_runs"].get("abandoned") == 50
    assert raw["stored_runs"].get("success", 0) >= 200  # no span was dropped on the way
    assert raw["jsonl"]["samples"][-1]["open_runs"] == 0
    assert "RSS growth" in report.table and "JSONL store" in report.table


@pytest.mark.parametrize(
    "config", ["bare_spans", "ours_duckdb_json", "ours_jsonl", "ours_otlp", "ours_otlp_plain"]
)
def test_every_instruction_count_configuration_runs(config: str, tmp_path: Path) -> None:
    """Each process `bench/instructions.py` counts under callgrind runs natively to the end (ours_otlp:
    its sink received every span the application ended, or the run fails)."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, str(BENCH / "instructions.py"), "--child", config, "2", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_bare_duckdb_insert_writes_the_stores_rows(tmp_path: Path) -> None:
    """``duckdb_floor.py``'s bare insert puts exactly the rows the store writes into the same tables (so
    its count is the floor of the same work), on every insert path installed."""
    import duckdb_floor

    batches = duckdb_floor._batches(40)
    assert len(batches) == 1 and sum(len(w.events) for w in batches[0]) > 100
    paths = ["json"]
    if duckdb_floor._has_arrow():
        paths.append("arrow")
    for path in paths:
        duckdb_floor.verify(path, batches)  # raises when a single value differs


def test_the_mapping_floor_makes_the_same_records() -> None:
    """``mapping_instructions.py --floor`` counts making records equal to the mapping's own (every
    field, timezones included), from plain values."""
    import bench_exporter
    import mapping_instructions as mi

    from otel_runjournal.journal.assembler import Assembler

    spans = bench_exporter.agent_spans(3)
    bench_exporter._hand_over("otel_runjournal", bench_exporter._contents(spans))
    writes = Assembler(max_pending_spans=1000).add(spans)
    assert len(writes) == 3
    again = mi._records(mi._plain(writes))
    assert again == writes
    assert [e.created_at.tzinfo for w in again for e in w.events] == [
        e.created_at.tzinfo for w in writes for e in w.events
    ]
