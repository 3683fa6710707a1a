"""The journal's mapping (span → rows, held per run, one ``RunWrite`` per run) in instructions per span.

    python bench/mapping_instructions.py                        # ~15 min of CPU
    python bench/mapping_instructions.py --tree /tmp/old        # another tree's package (its own run)
    python bench/mapping_instructions.py --check /tmp/old       # same rows as that tree? (~1 min)
    python bench/mapping_instructions.py --floor                # what making the rows alone costs

The spans of ``--invokes`` runs of the bench agent (``bench/bench_exporter.py``'s ``agent`` workload:
the real handler, content in the side channel as the journal takes it) are made once; then the
``Assembler`` (what ``RunJournalExporter.export`` does before ``store.write``, pricing on) maps them
``--lo`` and ``--hi`` times (1 and 11), each in its own process under ``valgrind --tool=callgrind``.
Per pass = (I_hi - I_lo) / (hi - lo): start-up, imports and the spans' making cancel; the garbage
collector's work during the passes is counted (the spans and their content stay alive, as they do in
an application). ``--tree`` puts another copy of ``otel_runjournal`` first on ``sys.path`` (e.g. a
``git archive`` of an older revision) so that before and after are counted the same way.

``--floor`` counts a pass of no mapping at all, only what any mapping must make: every record of the
pass's ``RunWrite``s built again through its constructor from plain values known in advance (times as
nanosecond integers, converted by ``records.utc``; each event's metadata dict copied) — the cost of
the records ``DESIGN.md`` and ``records.py`` define, the lower bound of any mapping that outputs them.

``--check TREE`` is what makes a count worth comparing: the same spans (the bench agent's, the demo
agent's with a subagent, a failing tool and middleware; content in the side channel, on attributes,
truncated and redacted) mapped by this tree and by ``TREE``'s package (imported as a renamed copy, its
own renderers rendering the content) under several assembler settings, every field of every
``RunWrite`` compared (types, dict order and timezones included).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_TOTALS = re.compile(rb"^(?:totals|summary):\s*(\d+)", re.MULTILINE)


def child(invokes: int, passes: int, floor: bool = False) -> None:
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

    if floor:
        be._hand_over("otel_runjournal", contents)
        run = _rebuild(Assembler(max_pending_spans=100_000, pricer=pricer).add(spans))
    else:
        run = once
    expected = run()
    for _ in range(passes):
        if run() != expected:
            raise RuntimeError("a pass mapped a different number of events")


def _rebuild(writes: list[Any]) -> Callable[[], int]:
    """A pass of ``--floor``: the records of ``writes`` made again from plain values."""
    plain = _plain(writes)
    return lambda: sum(len(write.events) for write in _records(plain))


def _plain(writes: list[Any]) -> list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], tuple[Any, ...]]]:
    """Each write's field values, times as nanoseconds since the epoch."""

    def ns(at: Any) -> int:
        return int(at.timestamp()) * 10**9 + at.microsecond * 1000

    return [
        (
            [(e.thread_id, e.run_id, e.event_type, e.category, ns(e.created_at), e.content, e.metadata,
              e.trace_id, e.span_id) for e in w.events],
            [(s.trace_id, s.span_id, s.parent_span_id, s.run_id, s.name, s.kind, ns(s.start_time),
              ns(s.end_time), s.duration_ms, s.status_code, s.status_message, s.attributes, s.events,
              s.resource) for s in w.spans],
            dataclasses.astuple(w.run),
        )
        for w in writes
    ]  # fmt: skip


def _records(plain: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], tuple[Any, ...]]]) -> list[Any]:
    """The ``RunWrite``s of :func:`_plain`'s values, every record through its constructor."""
    from otel_runjournal.records import RunEvent, RunRecord, RunWrite, SpanRecord, utc

    return [
        RunWrite(
            RunRecord(*run),
            [RunEvent(t, r, et, c, utc(at), co, dict(m), tr, si)
             for t, r, et, c, at, co, m, tr, si in events],
            [SpanRecord(a, b, p, r, n, k, utc(s), utc(e), d, c, m, at, ev, res)
             for a, b, p, r, n, k, s, e, d, c, m, at, ev, res in spans],
        )
        for events, spans, run in plain
    ]  # fmt: skip


def count(passes: int, invokes: int, tree: Path | None, floor: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="mapping-cg-") as tmp:
        out = Path(tmp) / "callgrind.out"
        env = dict(os.environ, PYTHONHASHSEED="0")
        if tree is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-line=no",
               "--dump-instr=no", sys.executable, __file__, "--child", str(invokes), str(passes),
               *(["--floor"] if floor else [])]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"x{passes} failed:\n{proc.stderr.decode(errors='replace')[-3000:]}")
        found = _TOTALS.search(out.read_bytes())
        if found is None:
            raise RuntimeError(f"no totals in {out}")
        return int(found.group(1))


def _canonical(value: Any) -> Any:
    """A value with its type, order and (for datetimes) timezone spelled out, for exact comparison."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [(f.name, _canonical(getattr(value, f.name))) for f in dataclasses.fields(value)]
        return (type(value).__name__, fields)
    if isinstance(value, dict):
        return ("dict", [(_canonical(k), _canonical(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_canonical(v) for v in value])
    return (type(value).__name__, repr(value), repr(getattr(value, "tzinfo", None)))


def _difference(a: Any, b: Any, path: str) -> str:
    """Where two canonical values first differ, and how."""
    if type(a) is tuple and type(b) is tuple and len(a) == len(b) and a[0] == b[0]:
        for i, (x, y) in enumerate(zip(a[1:], b[1:], strict=True)):
            if x != y:
                return _difference(x, y, path if i == 0 else f"{path}~")
    if type(a) is list and type(b) is list and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                label = x[0] if type(x) is tuple and len(x) == 2 and type(x[0]) is str else i
                return _difference(x, y, f"{path}.{label}")
    return f"{path}: this tree {a!r}, the other {b!r}"


def _rebound(content: dict[str, Any], package: str) -> dict[str, Any]:
    """A span's side-channel content with every renderer replaced by ``package``'s own (same limit and
    redaction), so that each tree renders the content itself."""
    mod = importlib.import_module(f"{package}.content")
    renderer_cls = importlib.import_module(f"{package}.tracing.serialize").Renderer

    def bound(method: Any) -> Any:
        owner = method.__self__
        return getattr(renderer_cls(owner.limit, owner.redact), method.__name__)

    out: dict[str, Any] = {}
    for key, value in content.items():
        if isinstance(value, functools.partial):
            out[key] = functools.partial(bound(value.func), *value.args)
        elif type(value).__name__ == "Parsed":
            out[key] = mod.Parsed(bound(value._render), value._value)
        elif isinstance(value, list):  # custom events: (name, time, rendering)
            out[key] = [
                (n, t, functools.partial(bound(r.func), *r.args) if isinstance(r, functools.partial) else r)
                for n, t, r in value
            ]
        else:
            out[key] = value
    return out


def _workloads() -> list[tuple[str, list[Any], list[tuple[tuple[int, int], dict[str, Any]]]]]:
    """(name, spans, side-channel content) of agents traced by the real handler, in several settings."""
    from langchain_core.messages import HumanMessage
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_runjournal import content
    from otel_runjournal.demo.agent import build_agent
    from otel_runjournal.tracing.handler import RunJournalCallbackHandler

    settings: list[tuple[str, dict[str, Any], dict[str, bool]]] = [
        ("bench agent", {}, {"subagent": False, "failing_tool": False, "middleware": False}),
        ("demo agent", {}, {}),
        ("demo agent, content cut to 40, redacted", {"content_max_length": 40, "redact": str.upper}, {}),
        ("demo agent, content on attributes", {"capture_content": True}, {}),
        ("demo agent, verbosity all", {"verbosity": "all"}, {}),
    ]
    out = []
    for name, handler_args, agent_args in settings:
        memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        handler = RunJournalCallbackHandler(tracer_provider=provider, journal_content=True, **handler_args)
        agent = build_agent(**agent_args)
        for i in range(12):
            config = {"callbacks": [handler], "configurable": {"thread_id": f"t{i % 5}"}}
            question = f"What is the weather in Paris, and what is 6*7+{i}?"
            # a failing tool may end the run: its spans are what is compared
            with contextlib.suppress(Exception):
                agent.invoke({"messages": [HumanMessage(question)]}, config)
        spans = list(memory.get_finished_spans())
        pairs = [(content.key_of(s), content.take(s)) for s in spans]
        out.append((name, spans, [(k, c) for k, c in pairs if k is not None and c is not None]))
    return out


def check(tree: Path) -> None:
    """Map the same spans with this tree and ``tree``; exit 1 on the first ``RunWrite`` that differs."""
    sys.path.insert(0, str(HERE))
    import bench_exporter as be

    with tempfile.TemporaryDirectory(prefix="mapping-check-") as tmp:
        shutil.copytree(tree / "otel_runjournal", Path(tmp) / "otel_runjournal_baseline",
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        sys.path.insert(0, tmp)
        importlib.invalidate_caches()
        packages = ("otel_runjournal", "otel_runjournal_baseline")
        variants: list[tuple[str, dict[str, Any], bool]] = [
            ("default", {}, True),
            ("no content", {"with_content": False}, True),
            ("unpriced", {}, False),
            ("bound of 7 spans", {"max_pending_spans": 7}, True),
        ]
        compared = 0
        for name, spans, contents in _workloads():
            for variant, args, priced in variants:
                results = []
                for package in packages:
                    registry = importlib.import_module(f"{package}.content").REGISTRY
                    for key, found in contents:
                        registry.put(key, _rebound(found, package))
                    pricer = (
                        importlib.import_module(f"{package}.pricing").resolve_pricer(None) if priced else None
                    )
                    assembler_cls = importlib.import_module(f"{package}.journal.assembler").Assembler
                    assembler = assembler_cls(**{"max_pending_spans": 100_000, **args}, pricer=pricer)
                    writes = [w for batch in be._batches(spans) for w in assembler.add(batch)]
                    writes += assembler.drain(final=True)
                    results.append(_canonical(writes))
                if results[0] != results[1]:
                    where = _difference(results[0], results[1], "writes")
                    print(f"DIFFERENT: {name}, {variant}: {where}")
                    raise SystemExit(1)
                compared += len(results[0][1])
            print(f"same: {name}: {len(spans)} spans, {len(variants)} settings")
        print(f"identical: {compared} RunWrites, every field")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invokes", type=int, default=100)
    parser.add_argument("--lo", type=int, default=1)
    # 10 passes apart: the full garbage collections the held rows trigger are whole events (about one
    # per 5 passes here, ~10% of a pass each), so 2 passes apart can see one more or one fewer
    parser.add_argument("--hi", type=int, default=11)
    parser.add_argument("--tree", type=Path, help="a directory holding another otel_runjournal package")
    parser.add_argument("--check", type=Path, help="compare this tree's rows with another tree's")
    parser.add_argument("--floor", action="store_true", help="count only making the records (see above)")
    parser.add_argument("--child", nargs=2, type=int, metavar=("INVOKES", "PASSES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, floor=args.floor)
        return
    if args.check:
        check(args.check)
        return
    with ThreadPoolExecutor(2) as pool:
        lo, hi = pool.map(lambda p: count(p, args.invokes, args.tree, args.floor), (args.lo, args.hi))
    per_pass = (hi - lo) / (args.hi - args.lo)
    spans = args.invokes * 11  # the bench agent's spans per invoke
    what = "records only (--floor)" if args.floor else "map+assemble"
    print(f"{what}: {per_pass / 1e6:.2f} M instructions per pass of {args.invokes} invokes; "
          f"{per_pass / spans / 1e3:.1f} k per span, "
          f"{per_pass / args.invokes / 1e6:.3f} M per invoke")  # fmt: skip


if __name__ == "__main__":
    main()
