"""CLI start-up benchmark: `otel-runjournal runs` on a small journal against `import duckdb, click, rich`.

    python bench/bench_cli.py              # 15 alternating rounds (~10 s)
    python bench/bench_cli.py --rounds 5   # quicker, noisier

A reading command has to import duckdb, click and rich, so the baseline is a fresh interpreter that
imports exactly those (``python -c "import duckdb, click, rich"``). Both are timed as wall time of a
fresh process, alternating in the same run (the machine's load swings from minute to minute, so only
a ratio measured side by side means anything), and the ratio of medians is reported with the
spread of per-round ratios; the ratio of CPU time (user + system) is shown too, as it
swings less with the machine's load. Target (issue 11): ``runs`` within 1.5x of the baseline. ``--help`` and
the other reading commands are shown for reference.
"""

from __future__ import annotations

import argparse
import os
import resource
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


def _wall(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env, timeout=120)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


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
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        # bytecode cached as after `pip install` (an editable install under PYTHONDONTWRITEBYTECODE
        # would compile this package's sources on every start); same cache for every case
        env = {**os.environ, "COLUMNS": "80", "PYTHONPYCACHEPREFIX": os.path.join(tmp, "pycache")}
        env.pop("OTEL_RUNJOURNAL_STORE", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        store = make_journal(tmp)
        cli = _cli()
        cases = {
            "baseline: import duckdb, click, rich": [sys.executable, "-c", "import duckdb, click, rich"],
            "otel-runjournal runs": [*cli, "runs", "--store", store],
            "otel-runjournal --help": [*cli, "--help"],
            "otel-runjournal tokens --by model": [*cli, "tokens", "--by", "model", "--store", store],
            "otel-runjournal sql (one query)": [*cli, "sql", "select count(*) from runs", "--store", store],
        }
        for case in cases.values():  # write the bytecode cache, warm the page cache
            _wall(case, env)
            _wall(case, env)
        times: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, case in cases.items():
                wall, used = _wall(case, env)
                times[name].append(wall)
                cpu[name].append(used)
    base_name = next(iter(cases))
    base = statistics.median(times[base_name])
    print(f"CLI start-up, {args.rounds} alternating rounds, wall time of a fresh process ({' '.join(cli)})")
    print(f"{'command':38} {'median ms':>10} {'ratio':>7} {'per-round ratio min-max':>24} {'CPU ratio':>10}")
    for name, values in times.items():
        ratios = [v / b for v, b in zip(values, times[base_name], strict=True)]
        median = statistics.median(values)
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        cpu_ratio = statistics.median(cpu[name]) / statistics.median(cpu[base_name])
        print(f"{name:38} {median * 1000:10.0f} {median / base:6.2f}x {spread:>24} {cpu_ratio:9.2f}x")
    ratio = statistics.median(times["otel-runjournal runs"]) / base
    print(f"runs / baseline = {ratio:.2f}x (target <= {TARGET}x): {'met' if ratio <= TARGET else 'NOT met'}")
    return times


if __name__ == "__main__":
    main()
