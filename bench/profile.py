"""Profile one tracer variant on the benchmark workload (to find hot spots when a target is missed).

    python bench/profile.py ours_duckdb [--async] [--invokes 200]          # pyinstrument, main thread
    py-spy record -r 500 -f raw -o /tmp/ours.txt -- python bench/profile.py ours_duckdb --no-profiler
                                                                          # every thread, incl. export

``pip install pyinstrument py-spy`` (bench venv). Global patchers (the peers) are instrumented for the
whole run, which is fine here: this process runs that one variant only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tracers
import workload


def main() -> None:
    """Run the variant's workload, under pyinstrument unless ``--no-profiler``; print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variant", choices=tracers.VARIANTS)
    parser.add_argument("--async", dest="use_async", action="store_true", help="50 concurrent ainvokes")
    parser.add_argument("--invokes", type=int, default=200)
    parser.add_argument("--no-profiler", action="store_true", help="just run (e.g. under py-spy)")
    args = parser.parse_args()

    agent = workload.build()
    with tracers.open_session(args.variant) as session:
        session.activate()
        workload.run_sync(agent, 5, session.callbacks)  # warm up
        session.flush()
        profiler = None
        if not args.no_profiler:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="enabled" if args.use_async else "disabled")
            profiler.start()
        start = time.perf_counter()
        if args.use_async:
            batches = max(1, args.invokes // workload.CONCURRENCY)
            workload.run_async(agent, batches, session.callbacks)
            invokes = batches * workload.CONCURRENCY
        else:
            workload.run_sync(agent, args.invokes, session.callbacks)
            invokes = args.invokes
        session.flush()
        elapsed = time.perf_counter() - start
        if profiler is not None:
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=False))
        session.deactivate()
    print(f"{args.variant}: {elapsed / invokes * 1e3:.2f} ms per invoke over {invokes} invokes")


if __name__ == "__main__":
    main()
