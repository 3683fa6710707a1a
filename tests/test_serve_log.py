"""serve's log says what happened: start-up at INFO, summaries per interval, malformed requests counted."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from serve_helpers import agent_spans, post, request_of, serving

from otel_runjournal.serve.spool import Spool
from otel_runjournal.serve.writer import JournalWriter
from otel_runjournal.stores.location import open_store

SUMMARY = re.compile(
    r"serve: (last \d+ s|since start): received (\d+) spans in (\d+) requests \((\d+) malformed"
)


@pytest.fixture(scope="module")
def spans() -> list[Any]:
    return agent_spans(3)


def test_start_and_stop_lines_are_info(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The normal start-up and stop lines are INFO records (a WARNING means something is wrong)."""
    with (
        caplog.at_level(logging.INFO, logger="otel_runjournal"),
        serving(str(tmp_path / "served.duckdb"), tmp_path / "spool"),
    ):
        pass
    lines = [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.getMessage().startswith("otel-runjournal serve")
    ]
    assert [level for level, _ in lines] == [logging.INFO, logging.INFO], lines
    assert "OTLP/HTTP on http://127.0.0.1:" in lines[0][1] and lines[1][1].endswith("stopped")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("journal_process", [True, False], ids=["child", "thread"])
def test_malformed_requests_are_counted(tmp_path: Path, journal_process: bool) -> None:
    """Every request answered 400 / INVALID_ARGUMENT for a corrupt body counts as malformed."""
    with serving(
        str(tmp_path / "served.duckdb"), tmp_path / "spool", journal_process=journal_process
    ) as server:
        port = server.http_port
        assert port is not None and server.writer is not None
        bad = [
            post(port, b"\xff\xff\xff garbage"),
            post(port, b"{not json", content_type="application/json"),
            post(port, b"not gzip", headers={"Content-Encoding": "gzip"}),
        ]
        assert [r.status for r in bad] == [400, 400, 400]
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            call = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            with pytest.raises(grpc.RpcError) as info:
                call(b"\xff\xff\xff garbage", timeout=30)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert post(port, b"").status == 200  # an empty export is valid, not malformed
        deadline = time.monotonic() + 10  # the child counts what the parent tells it, asynchronously
        while server.writer.health()["malformed_requests"] < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.writer.health()["malformed_requests"] == 4


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _summaries(caplog: pytest.LogCaptureFixture, count: int) -> list[tuple[str, int, int, int]]:
    deadline = time.monotonic() + 10  # the writer thread logs after answering
    while True:
        found = [SUMMARY.search(r.getMessage()) for r in caplog.records]
        matches = [(m[1], int(m[2]), int(m[3]), int(m[4])) for m in found if m]
        if len(matches) >= count or time.monotonic() > deadline:
            return matches
        time.sleep(0.02)


def test_summary_lines_report_the_interval(
    spans: list[Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each periodic line counts what arrived since the previous line, and says over how long; the last
    line, at stop, gives the totals since start."""
    clock = _Clock()
    store = open_store(str(tmp_path / "served.duckdb"))
    writer = JournalWriter(store, Spool(str(tmp_path / "spool")), max_pending_spans=10_000, clock=clock)
    writer.start()
    bodies = [request_of(spans[i : i + 2]).SerializeToString() for i in range(0, 10, 2)]
    with caplog.at_level(logging.INFO, logger="otel_runjournal"):
        assert writer.submit_body(bodies[0]).ok  # t = 0: too early for a line
        clock.now += 15
        assert writer.submit_body(bodies[1]).ok  # t = 15: a line for the two requests so far
        assert _summaries(caplog, 1) == [("last 15 s", 4, 2, 0)]
        writer.note_malformed()
        clock.now += 12
        assert writer.submit_body(bodies[2]).ok  # t = 27: only what came after the first line
        assert _summaries(caplog, 2)[1] == ("last 12 s", 2, 1, 1)
        writer.stop()
    assert _summaries(caplog, 3)[2] == ("since start", 6, 3, 1)
