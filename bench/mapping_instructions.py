"""The journal's mapping (span → rows, held per run, one ``RunWrite`` per run) in instructions per span.

    python bench/mapping_instructions.py                        # ~15 min of CPU
    python bench/mapping_instructions.py --tree /tmp/old        # another tree's package (its own run)

The spans of ``--invokes`` runs of the bench agent (``bench/bench_exporter.py``'s ``agent`` workload:
the real handler, content in the side channel as the journal takes it) are made once; then the
``Assembler`` (what ``RunJournalExporter.export`` does before ``store.write``, pricing on) maps them
``--lo`` and ``--hi`` times (1 and 11), each in its own process under ``valgrind --tool=callgrind``.
Per pass = (I_hi - I_lo) / (hi - lo): start-up, imports and the spans' making cancel; the garbage
collector's work during the passes is counted (the spans and their content stay alive, as they do in
an application). ``--tree`` puts another copy of ``otel_runjournal`` first on ``sys.path`` (e.g. a
``git archive`` of an older revision) so that before and after are counted the same way.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
_TOTALS = re.compile(rb"^(?:totals|summary):\s*(\d+)", re.MULTILINE)


def child(invokes: int, passes: int) -> None:
    """Make the spans, map them once (warm-up), then ``passes`` more times."""
    sys.path.insert(0, str(HERE))
    import bench_exporter as be

    from otel_runjournal.journal.assembler import Assembler
    from otel_runjournal.pricing import resolve_pricer

    spans = be.agent_spans(invokes)
    contents = be._contents(spans)
    pricer = resolve_pricer(None)
    pricer.warm()

    def once() -> int:
        be._hand_over("otel_runjournal", contents)  # the handler's content, as the journal takes it
        assembler = Assembler(max_pending_spans=100_000, pricer=pricer)
        events = 0
        for batch in be._batches(spans):
            events += sum(len(write.events) for write in assembler.add(batch))
        return events

    expected = once()
    for _ in range(passes):
        if once() != expected:
            raise RuntimeError("a pass mapped a different number of events")


def count(passes: int, invokes: int, tree: Path | None) -> int:
    with tempfile.TemporaryDirectory(prefix="mapping-cg-") as tmp:
        out = Path(tmp) / "callgrind.out"
        env = dict(os.environ, PYTHONHASHSEED="0")
        if tree is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-line=no",
               "--dump-instr=no", sys.executable, __file__, "--child", str(invokes), str(passes)]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"x{passes} failed:\n{proc.stderr.decode(errors='replace')[-3000:]}")
        found = _TOTALS.search(out.read_bytes())
        if found is None:
            raise RuntimeError(f"no totals in {out}")
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invokes", type=int, default=100)
    parser.add_argument("--lo", type=int, default=1)
    # 10 passes apart: the full garbage collections the held rows trigger are whole events (about one
    # per 5 passes here, ~10% of a pass each), so 2 passes apart can see one more or one fewer
    parser.add_argument("--hi", type=int, default=11)
    parser.add_argument("--tree", type=Path, help="a directory holding another otel_runjournal package")
    parser.add_argument("--child", nargs=2, type=int, metavar=("INVOKES", "PASSES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with ThreadPoolExecutor(2) as pool:
        lo, hi = pool.map(lambda p: count(p, args.invokes, args.tree), (args.lo, args.hi))
    per_pass = (hi - lo) / (args.hi - args.lo)
    spans = args.invokes * 11  # the bench agent's spans per invoke
    print(f"map+assemble: {per_pass / 1e6:.2f} M instructions per pass of {args.invokes} invokes; "
          f"{per_pass / spans / 1e3:.1f} k per span, "
          f"{per_pass / args.invokes / 1e6:.3f} M per invoke")  # fmt: skip


if __name__ == "__main__":
    main()
