"""CLI start-up benchmark: `otel-runjournal runs` on a small journal against `import duckdb, click, rich`.

    python bench/bench_cli.py              # 15 alternating rounds (~10 s)
    python bench/bench_cli.py --rounds 5   # quicker, noisier

A reading command has to import duckdb, click and rich, so the baseline is a fresh interpreter that
imports exactly those (``python -c "import duckdb, click, rich"``). Both are timed as wall time of a
fresh process, alternating in the same run (the machine's load swings from minute to minute, so only
a ratio measured side by side means anything), and the ratio of medians is reported with the
spread of per-round ratios. Target (issue 11): ``runs`` within 1.5x of the baseline. ``--help`` and
the other reading commands are shown for reference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

TARGET = 1.5


def _cli() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m otel_runjournal``."""
    script = os.path.join(os.path.dirname(sys.executable), "otel-runjournal")
    if os.path.exists(script):
        return [script]
    found = shutil.which("otel-runjournal")
    return [found] if found else [sys.executable, "-m", "otel_runjournal"]


def _wall(argv: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env, timeout=120)
    return time.perf_counter() - start


def make_journal(directory: str) -> str:
    """A small DuckDB journal: the demo's 6 runs plus a failing one."""
    from otel_runjournal.cli.demo_run import run_demo

    location = os.path.join(directory, "small.duckdb")
    run_demo(location, runs=6)
    return location


def main(argv: Sequence[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("OTEL_RUNJOURNAL_STORE", None)
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        store = make_journal(tmp)
        cli = _cli()
        cases = {
            "baseline: import duckdb, click, rich": [sys.executable, "-c", "import duckdb, click, rich"],
            "otel-runjournal runs": [*cli, "runs", "--store", store],
            "otel-runjournal --help": [*cli, "--help"],
            "otel-runjournal tokens --by model": [*cli, "tokens", "--by", "model", "--store", store],
            "otel-runjournal sql (one query)": [*cli, "sql", "select count(*) from runs", "--store", store],
        }
        for case in cases.values():  # warm the page cache (first runs read .pyc files from disk)
            _wall(case, env)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, case in cases.items():
                times[name].append(_wall(case, env))
    base_name = next(iter(cases))
    base = statistics.median(times[base_name])
    print(f"CLI start-up, {args.rounds} alternating rounds, wall time of a fresh process ({' '.join(cli)})")
    print(f"{'command':38} {'median ms':>10} {'ratio':>7} {'per-round ratio min-max':>24}")
    for name, values in times.items():
        ratios = [v / b for v, b in zip(values, times[base_name], strict=True)]
        median = statistics.median(values)
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(f"{name:38} {median * 1000:10.0f} {median / base:6.2f}x {spread:>24}")
    ratio = statistics.median(times["otel-runjournal runs"]) / base
    print(f"runs / baseline = {ratio:.2f}x (target <= {TARGET}x): {'met' if ratio <= TARGET else 'NOT met'}")
    return times


if __name__ == "__main__":
    main()
