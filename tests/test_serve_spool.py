"""The serve spool alone: a torn tail is skipped, one serve per spool, compaction keeps what is held."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_runjournal.serve.spool import COMMIT, DATA, Spool, SpoolError, pack_ids


def _request(*span_ids: int) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for span_id in span_ids:
        span = scope.spans.add()
        span.name = f"s{span_id}"
        span.trace_id = b"\x01" * 16
        span.span_id = span_id.to_bytes(8, "big")
    return request


def test_a_torn_tail_is_skipped_and_the_rest_recovered(tmp_path: Path) -> None:
    """A record cut short by a crash ends the replay of its segment; complete records before it survive."""
    spool = Spool(tmp_path)
    spool.start_segment()
    spool.append(DATA, [_request(1, 2).SerializeToString(), _request(3).SerializeToString()])
    spool.append(COMMIT, [pack_ids([1, 2])])
    spool.append(DATA, [_request(4).SerializeToString()])
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    segment.write_bytes(segment.read_bytes()[:-3])  # the crash: the last record half written
    data, committed = Spool(tmp_path).recover()
    assert [
        [s.name for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans] for _, r in data
    ] == [
        ["s1", "s2"],
        ["s3"],
    ]
    assert committed == {1, 2}


def test_one_serve_per_spool(tmp_path: Path) -> None:
    """A second serve on the same spool directory is refused with a reason (the lock is held)."""
    first = Spool(tmp_path)
    with pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path)
    first.close()
    Spool(tmp_path).close()


def test_a_restart_waits_for_the_spool_of_a_serve_still_finishing(tmp_path: Path) -> None:
    """With ``lock_wait``, opening waits while the previous owner finishes, and fails if it never does."""
    first = Spool(tmp_path)
    with pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path, lock_wait=0.3)
    timer = threading.Timer(0.3, first.close)
    timer.start()
    Spool(tmp_path, lock_wait=30).close()
    timer.join()


def test_compaction_keeps_held_uncommitted_spans_only(tmp_path: Path) -> None:
    """Compaction copies forward exactly the spans selected and not committed, with the commit window."""
    spool = Spool(tmp_path)
    spool.start_segment()
    spool.append(DATA, [_request(1, 2, 3).SerializeToString()])
    spool.start_segment()
    spool.append(DATA, [_request(4, 5).SerializeToString()])
    spool.append(COMMIT, [pack_ids([2])])
    copied = spool.compact(lambda s: s.name in ("s2", "s3", "s5"), [7, 8])
    assert copied == 2  # s3 and s5; s2 is committed
    assert len(spool.segments) == 1
    spool.close()
    data, committed = Spool(tmp_path).recover()
    assert [
        s.name for _, r in data for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans
    ] == [
        "s3",
        "s5",
    ]
    assert committed == {7, 8}
