r"""serve's journal stage against the in-process exporter on the same spans, in one process, counted.

    python bench/serve_stage.py SPANS journal|exporter [--callgrind]

``journal``: what serve's journal process does per request — read the decoded request as the
receiving process sends it, build the spans (SDK spans before the seventh round, the journal's own
since), and hand them to a :class:`JournalWriter` (spool, dedupe, assembly, gathered store writes),
8 requests in flight. What the receiving process makes (the decoded request; since the seventh round
also the spool record with its CRC) is made before the count, as that process makes it.
``exporter``: ``RunJournalExporter.export`` of the same spans in batches of 2,048 (the SDK spans
are built first, outside the count). Both write to a DuckDB file held for the whole run
(``MAX_HOLD`` off: its releases depend on wall time, which valgrind stretches ~50x), after warming
the price table and DuckDB's Arrow scan (serve does that at start), so only the work per span is
counted. Requests are the bench agent's runs with content, 512 spans each (built once and cached in
the temp directory).

With ``--callgrind`` the process toggles valgrind's collection on around the work only; run it as

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=OUT \
        python bench/serve_stage.py N MODE --callgrind

for two sizes (e.g. 2048 and 10240) and take (Ir_hi - Ir_lo) / (spans_hi - spans_lo): start-up and
the first write's one-off costs cancel. ``PYTHONPATH=TREE`` measures another source tree.
"""

from __future__ import annotations

import marshal
import math
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _toggle(on: bool, enabled: bool) -> None:
    if enabled:
        subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())], check=True)


def _requests(count: int) -> list[bytes]:
    cache = Path(tempfile.gettempdir()) / f"serve-stage-{count}.pkl"
    if cache.exists():
        return list(pickle.loads(cache.read_bytes()))
    import bench_serve

    bodies = bench_serve.build_requests(count, 512, True, seed=7)
    cache.write_bytes(pickle.dumps(bodies))
    return bodies


def main() -> None:
    count, mode = int(sys.argv[1]), sys.argv[2]
    counted = "--callgrind" in sys.argv
    bodies = _requests(count)
    import duckdb
    import pyarrow

    import otel_runjournal.stores.duckdb.store as duckdb_store
    from otel_runjournal.pricing import resolve_pricer
    from otel_runjournal.serve.otlp_spans import Decoded, convert, parse_protobuf

    duckdb_store.MAX_HOLD = math.inf  # type: ignore[misc]
    warm = duckdb.connect(":memory:")
    warm.register("warm", pyarrow.table({"x": [1]}))
    warm.execute("SELECT count(*) FROM warm").fetchall()
    warm.close()
    resolve_pricer().warm()
    directory = tempfile.mkdtemp(prefix="serve-stage-")
    store = duckdb_store.DuckDBStore(os.path.join(directory, "journal.duckdb"), linger=math.inf)
    if mode == "exporter":
        from otel_runjournal import RunJournalExporter

        spans = [s for body in bodies for s in convert(parse_protobuf(body)).spans]
        exporter = RunJournalExporter(store=store)
        cpu = time.process_time()
        _toggle(True, counted)
        for i in range(0, len(spans), 2048):
            exporter.export(spans[i : i + 2048])
        exporter.force_flush()
        _toggle(False, counted)
        cpu = time.process_time() - cpu
        total = len(spans)
    else:
        from otel_runjournal.serve import journal_process
        from otel_runjournal.serve.spool import Spool
        from otel_runjournal.serve.writer import JournalWriter, build_spans, read_body

        # the hand-over as the tree's receiving process makes it (marshal since 339d31a, pickle before)
        marshalled = hasattr(journal_process, "marshal")
        dump: Any = (lambda d: marshal.dumps(tuple(d))) if marshalled else pickle.dumps
        load: Any = (lambda b: Decoded(*marshal.loads(b))) if marshalled else pickle.loads
        # since the seventh round the receiving process also makes the spool record (its CRC)
        from otel_runjournal.serve import spool as spool_module

        record = getattr(spool_module, "record", None)
        payloads = [
            (body if record is None else record(spool_module.DATA, body), dump(read_body(body)))
            for body in bodies
        ]
        spool = Spool(os.path.join(directory, "spool"))
        options: dict[str, Any] = dict(max_pending_spans=100_000, settle=0.0, close_store=False)
        try:  # gathered writes by size only: valgrind stretches the wall-clock delay
            writer = JournalWriter(store, spool, min_write_spans=8192, max_write_delay=math.inf, **options)
        except TypeError:  # a tree from before gathered writes
            writer = JournalWriter(store, spool, **options)
        writer.start()
        journal_process._tune_gc()
        in_flight = threading.Semaphore(8)

        def done(_: Any) -> None:
            in_flight.release()

        cpu = time.process_time()
        _toggle(True, counted)
        for body, payload in payloads:
            in_flight.acquire()
            converted = build_spans(load(payload))
            writer.submit_async(converted.spans, body, converted.rejected, converted.reason, done)
        writer.stop(timeout=3600)
        _toggle(False, counted)
        cpu = time.process_time() - cpu
        total = writer.counters["written_spans"]
    print(f"{mode}: {total} spans, CPU {cpu / total * 1e6:.1f} µs/span")


if __name__ == "__main__":
    main()
