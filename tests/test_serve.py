"""``serve`` over real OTLP/HTTP and OTLP/gRPC: encodings, errors, auth, limits, a failing store, re-sends."""

from __future__ import annotations

import fcntl
import gzip
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from serve_helpers import (
    agent_spans,
    exported_events,
    health,
    journal_events,
    post,
    request_of,
    serving,
    to_json,
    wait_for,
)

from otel_runjournal import open_store
from otel_runjournal.serve.server import Serve, ServeConfig

PROTOBUF, JSON = "application/x-protobuf", "application/json"


@pytest.fixture(scope="module")
def spans() -> list[Any]:
    """Spans of three runs of the offline agent, content on the spans."""
    return agent_spans(3)


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("content_type", [PROTOBUF, JSON], ids=["protobuf", "json"])
def test_http_export_journals_like_the_exporter(
    spans: list[Any], tmp_path: Path, content_type: str, gzipped: bool
) -> None:
    """An OTLP/HTTP export (protobuf or JSON, gzip or not) journals the same events as RunJournalExporter."""
    request = request_of(spans)
    body = to_json(request) if content_type == JSON else request.SerializeToString()
    with serving(str(tmp_path / "served.duckdb"), tmp_path / "spool") as server:
        assert server.http_port is not None
        reply = post(server.http_port, body, content_type=content_type, gzipped=gzipped)
        assert reply.status == 200, reply.body
        assert reply.headers["content-type"] == content_type
        assert not reply.response().HasField("partial_success")
    expected = exported_events([spans], str(tmp_path / "local.duckdb"))
    assert len({run for run, _, _ in expected}) == 3
    assert journal_events(str(tmp_path / "served.duckdb")) == expected


@pytest.mark.parametrize("journal_process", [True, False], ids=["journal-process", "journal-thread"])
@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip])
def test_grpc_export_journals_like_the_exporter(
    spans: list[Any], tmp_path: Path, compression: Any, journal_process: bool
) -> None:
    """An OTLP/gRPC export (gzip or not; journal in a child process or in a thread) journals the same
    events as RunJournalExporter."""
    location = str(tmp_path / "served.duckdb")
    with serving(location, tmp_path / "spool", journal_process=journal_process) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            response = stub.Export(request_of(spans), timeout=30, compression=compression)
        assert not response.HasField("partial_success")
    served = journal_events(str(tmp_path / "served.duckdb"))
    assert served == exported_events([spans], str(tmp_path / "local.duckdb"))


def test_resent_request_duplicates_nothing(spans: list[Any], tmp_path: Path) -> None:
    """The same request sent three times (HTTP, gRPC, HTTP/JSON) is journaled once."""
    request = request_of(spans)
    location = str(tmp_path / "served.duckdb")
    with serving(location, tmp_path / "spool") as server:
        assert server.http_port is not None
        assert post(server.http_port, request.SerializeToString()).status == 200
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=30)
        assert post(server.http_port, to_json(request), content_type=JSON).status == 200
        assert server.writer is not None and server.writer.health()["duplicate_spans"] == 2 * len(spans)
    events = journal_events(location)
    assert events == exported_events([spans], str(tmp_path / "local.duckdb"))
    assert set(events.values()) == {1}


def test_malformed_spans_are_a_partial_success(spans: list[Any], tmp_path: Path) -> None:
    """Spans with malformed ids are rejected and counted (partial success); the valid ones are journaled."""
    request = request_of(spans)
    bad = request.resource_spans[0].scope_spans[0].spans.add()
    bad.name = "broken"
    bad.trace_id = b"\x01" * 3
    bad.span_id = b"\x02" * 8
    with serving(str(tmp_path / "served.duckdb"), tmp_path / "spool") as server:
        assert server.http_port is not None
        reply = post(server.http_port, request.SerializeToString())
        assert reply.status == 200
        partial = reply.response().partial_success
        assert partial.rejected_spans == 1 and "trace_id" in partial.error_message
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            response = trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=30)
        assert response.partial_success.rejected_spans == 1
    served = journal_events(str(tmp_path / "served.duckdb"))
    assert served == exported_events([spans], str(tmp_path / "local.duckdb"))


def _raw_grpc(port: int, body: bytes, metadata: tuple[tuple[str, str], ...] = ()) -> Any:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=None,
        )
        return call(body, timeout=30, metadata=metadata)


def test_malformed_requests_get_the_protocols_error(tmp_path: Path) -> None:
    """Garbage bodies get 400 / INVALID_ARGUMENT, wrong types 415, wrong paths 404; serve keeps serving."""
    with serving(str(tmp_path / "served.duckdb"), tmp_path / "spool") as server:
        port = server.http_port
        assert port is not None
        assert post(port, b"\xff\xff\xff garbage").status == 400
        assert post(port, b"{not json", content_type=JSON).status == 400
        assert post(port, b"[1, 2]", content_type=JSON).status == 400
        bad_id = b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"00"}]}]}]}'
        assert post(port, bad_id, content_type=JSON).status == 400
        assert post(port, b"not gzip", headers={"Content-Encoding": "gzip"}).status == 400
        assert post(port, b"x", content_type="text/plain").status == 415
        assert post(port, b"x", headers={"Content-Encoding": "br"}).status == 415
        assert post(port, b"", path="/v1/logs").status == 404
        error = status_pb2.Status()
        error.ParseFromString(post(port, b"\xff\xff\xff").body)
        assert error.code == 3 and error.message  # INVALID_ARGUMENT, with the reason
        with pytest.raises(grpc.RpcError) as info:
            _raw_grpc(server.grpc_port or 0, b"\xff\xff\xff garbage")
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert post(port, b"").status == 200  # an empty request is a valid, empty export
        assert health(port) == (200, health(port)[1]) and health(port)[1]["status"] == "ok"


def test_oversized_requests_are_refused(spans: list[Any], tmp_path: Path) -> None:
    """Bodies past the size limit (also a small gzip inflating past it) get 413 / RESOURCE_EXHAUSTED."""
    limit = 64 * 1024
    with serving(str(tmp_path / "served.duckdb"), tmp_path / "spool", max_request_bytes=limit) as server:
        port = server.http_port
        assert port is not None
        assert post(port, b"\x00" * (limit + 1)).status == 413
        bomb = b"\x0a" * (50 * limit)
        assert len(gzip.compress(bomb)) < limit
        assert post(port, bomb, gzipped=True).status == 413
        with pytest.raises(grpc.RpcError) as info:
            _raw_grpc(server.grpc_port or 0, b"\x00" * (limit + 1))
        assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert post(port, request_of(spans[:3]).SerializeToString()).status == 200  # still serving


def test_token_is_required_on_both_protocols(spans: list[Any], tmp_path: Path) -> None:
    """With a token, a missing or wrong one gets 401 / UNAUTHENTICATED and nothing is journaled."""
    body = request_of(spans).SerializeToString()
    location = str(tmp_path / "served.duckdb")
    with serving(location, tmp_path / "spool", token="s3cret") as server:
        port, gport = server.http_port or 0, server.grpc_port or 0
        assert post(port, body).status == 401
        assert post(port, body, token="wrong").status == 401
        for metadata in ((), (("authorization", "Bearer wrong"),)):
            with pytest.raises(grpc.RpcError) as info:
                _raw_grpc(gport, body, metadata)
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert server.writer is not None and server.writer.health()["received_spans"] == 0
        assert post(port, body, token="s3cret").status == 200
        _raw_grpc(gport, body, (("authorization", "Bearer s3cret"),))
    assert len(journal_events(location)) > 0


def test_non_loopback_needs_a_token_or_insecure(tmp_path: Path) -> None:
    """Binding beyond loopback without --token or --insecure is refused with a one-line reason."""
    config = ServeConfig(store=str(tmp_path / "x.duckdb"), grpc=("0.0.0.0", 0), http=None)
    with pytest.raises(ValueError, match="--token"):
        Serve(config)
    Serve(ServeConfig(store=str(tmp_path / "x.duckdb"), grpc=("0.0.0.0", 0), http=None, token="t"))
    Serve(ServeConfig(store=str(tmp_path / "x.duckdb"), grpc=("0.0.0.0", 0), http=None, insecure=True))


def _break(directory: Path) -> Path:
    """Make a JSONL store's writes fail for real: its events/ directory replaced by a file."""
    events = directory / "events"
    aside = directory / "events-aside"
    events.rename(aside)
    events.write_text("not a directory")
    return aside


def _mend(directory: Path, aside: Path) -> None:
    (directory / "events").unlink()
    aside.rename(directory / "events")


def test_failing_store_gets_retryable_answers_and_loses_nothing(spans: list[Any], tmp_path: Path) -> None:
    """While the store fails: 503 + Retry-After / UNAVAILABLE + RetryInfo; after it recovers, re-sends
    are acknowledged and every run is journaled exactly once."""
    journal = tmp_path / "journal"
    journal.mkdir()
    location = f"jsonl://{journal}"
    first, second = request_of(spans[: len(spans) // 2]), request_of(spans[len(spans) // 2 :])
    with serving(location, tmp_path / "spool", settle=0) as server:  # runs written as their roots arrive
        port = server.http_port or 0
        assert post(port, request_of(agent_spans(1)).SerializeToString()).status == 200  # creates events/
        wait_for(lambda: health(port)[1]["written_runs"] >= 1, "the first run written")  # acknowledged
        aside = _break(journal)
        # acknowledged: in the spool, and the store was healthy as far as serve knew; its write fails
        assert post(port, first.SerializeToString()).status == 200
        wait_for(lambda: health(port)[1]["status"] == "store_failing", "the failed write")
        assert health(port)[0] == 503 and health(port)[1]["status"] == "store_failing"
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:  # gRPC health: NOT_SERVING
            check = channel.unary_unary("/grpc.health.v1.Health/Check")
            assert check(b"", timeout=10) == b"\x08\x02"
        reply = post(port, second.SerializeToString())  # refused while failing
        assert reply.status == 503 and int(reply.headers["retry-after"]) >= 1
        with pytest.raises(grpc.RpcError) as info:
            _raw_grpc(server.grpc_port or 0, second.SerializeToString())
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        status = status_pb2.Status()
        status.ParseFromString(dict(info.value.trailing_metadata())["grpc-status-details-bin"])
        retry = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(retry) and retry.retry_delay.seconds >= 1
        _mend(journal, aside)
        wait_for(lambda: health(port)[1]["status"] == "ok", "the retried write to succeed")
        assert post(port, second.SerializeToString()).status == 200  # the sender's retry
        assert post(port, first.SerializeToString()).status == 200  # a needless re-send: a duplicate
    local = tmp_path / "local"
    local.mkdir()
    expected = exported_events([spans], f"jsonl://{local}")
    served = journal_events(location)
    assert {k: v for k, v in served.items() if k[0] in {r for r, _, _ in expected}} == expected


def test_over_the_memory_bound_requests_get_429(spans: list[Any], tmp_path: Path) -> None:
    """With the writer stuck on a locked store and the queue full, a request gets 429 + Retry-After."""
    journal = tmp_path / "journal"
    location = f"jsonl://{journal}"
    body = request_of(spans).SerializeToString()
    with serving(location, tmp_path / "spool", max_queued_spans=len(spans), settle=0) as server:
        port = server.http_port or 0
        lock = os.open(journal / ".lock", os.O_RDWR)
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process's write in progress, as far as the store knows
        try:
            replies: list[int] = []
            first = threading.Thread(target=lambda: replies.append(post(port, body).status))
            first.start()  # the writer takes it, gathers its runs for a write, and waits for the lock
            # the writer has taken the first request off the queue and is in the store write, on the lock
            wait_for(
                lambda: (
                    (h := health(port)[1])["requests"] == 1
                    and h["queued_spans"] == 0
                    and h["store_writes"] == 1
                ),
                "the writer to start the first request's store write",
            )
            queued = threading.Thread(target=lambda: replies.append(post(port, body).status))
            queued.start()
            wait_for(lambda: health(port)[1]["queued_spans"] == len(spans), "the second request queued")
            reply = post(port, body)
            assert reply.status == 429 and reply.headers["retry-after"] == "1"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            os.close(lock)
        first.join(30)
        queued.join(30)
        assert sorted(replies) == [200, 200]


def test_spool_replays_held_runs_after_a_restart(spans: list[Any], tmp_path: Path) -> None:
    """A run whose root had not arrived when serve stopped is journaled whole after a restart."""
    location = str(tmp_path / "served.duckdb")
    roots = [s for s in spans if s.parent is None]
    children = [s for s in spans if s.parent is not None]
    with serving(location, tmp_path / "spool") as server:
        assert post(server.http_port or 0, request_of(children).SerializeToString()).status == 200
    assert journal_events(location) == Counter()  # nothing written yet: the runs are held in the spool
    with serving(location, tmp_path / "spool") as server:
        assert server.writer is not None and server.writer.health()["replayed_spans"] == len(children)
        assert post(server.http_port or 0, request_of(roots).SerializeToString()).status == 200
    assert journal_events(location) == exported_events([spans], str(tmp_path / "local.duckdb"))


@pytest.mark.parametrize("settle", [0.0, 60.0], ids=["released", "compacted"])
def test_spool_stays_bounded(tmp_path: Path, settle: float) -> None:
    """The spool does not grow with the traffic: segments of written runs are deleted (settle=0), and
    runs held for a long time (settle=60) are copied forward into one segment; nothing is lost."""
    many = agent_spans(20)
    location = str(tmp_path / "served.duckdb")
    spool_dir = tmp_path / "spool"
    with serving(location, spool_dir, spool_segment_bytes=4096, settle=settle) as server:  # rotate often
        for i in range(0, len(many), 10):
            assert post(server.http_port or 0, request_of(many[i : i + 10]).SerializeToString()).status == 200
            assert len(list(spool_dir.glob("*.seg"))) <= (2 if settle == 0 else 6)
    if settle == 0:
        assert sum(f.stat().st_size for f in spool_dir.glob("*.seg")) < 16_384
    assert journal_events(location) == exported_events([many], str(tmp_path / "local.duckdb"))


def test_late_span_and_dead_sender_runs_are_written_after_the_idle_timeout(
    spans: list[Any], tmp_path: Path
) -> None:
    """A span arriving after its run was written, and a run whose root never comes, are journaled once
    no span of theirs arrived for --run-idle-timeout (the late one appended to its run)."""
    location = str(tmp_path / "served.duckdb")
    runs = sorted({s.attributes["runjournal.run_id"] for s in spans})
    first = [s for s in spans if s.attributes["runjournal.run_id"] == runs[0]]
    late = next(s for s in first if s.name.startswith("chat "))
    orphan = [s for s in spans if s.attributes["runjournal.run_id"] == runs[1] and s.parent is not None]
    with serving(location, tmp_path / "spool", settle=0, run_idle_timeout=1) as server:
        port = server.http_port or 0
        assert (
            post(port, request_of([s for s in first if s is not late] + orphan).SerializeToString()).status
            == 200
        )
        assert post(port, request_of([late]).SerializeToString()).status == 200
        wait_for(
            lambda: server.writer is not None and server.writer.health()["held_runs"] == 0,
            "the held runs written after the idle timeout",
        )
    expected = exported_events([first], str(tmp_path / "local.duckdb"))
    served = journal_events(location)
    assert {k: v for k, v in served.items() if k[0] == runs[0]} == expected
    store = open_store(location)
    try:
        assert store.get_run(runs[0]).llm_call_count == 3  # type: ignore[union-attr]
        orphan_run = store.get_run(runs[1])
        assert orphan_run is not None and orphan_run.status == "running"
    finally:
        store.close()


def test_cli_imports_the_server_only_when_serve_runs() -> None:
    """Loading the CLI (every reading command) imports neither grpc nor the serve package."""
    code = (
        "import sys; from otel_runjournal.cli.main import cli; "
        "assert 'serve' in cli.list_commands(None); "
        "bad = [n for n in ('grpc', 'otel_runjournal.serve.server') if n in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_cli_refuses_an_exposed_address_without_a_token(tmp_path: Path) -> None:
    """`serve --http 0.0.0.0:0` without --token / --insecure exits 1 with a one-line reason."""
    from click.testing import CliRunner

    from otel_runjournal.cli.main import cli

    result = CliRunner().invoke(
        cli, ["serve", "--store", str(tmp_path / "x.duckdb"), "--grpc", "off", "--http", "0.0.0.0:0"]
    )
    assert result.exit_code == 1
    assert "--token" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.duckdb").exists()


def test_resend_after_a_restart_duplicates_nothing(spans: list[Any], tmp_path: Path) -> None:
    """A request journaled before serve restarted and re-sent after (its answer was lost) is recognised
    from the spool's commit records, even though the store itself would write it twice."""
    location = str(tmp_path / "served.duckdb")
    body = request_of(spans).SerializeToString()
    with serving(location, tmp_path / "spool", settle=0) as server:
        assert post(server.http_port or 0, body).status == 200
    with serving(location, tmp_path / "spool", settle=0) as server:
        assert post(server.http_port or 0, body).status == 200
        assert server.writer is not None and server.writer.health()["duplicate_spans"] == len(spans)
    events = journal_events(location)
    assert events == exported_events([spans], str(tmp_path / "local.duckdb"))
    assert set(events.values()) == {1}
