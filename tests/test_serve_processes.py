"""``serve`` as its own process fed by app processes (the SDK's OTLP exporters): fan-in, SIGTERM, SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from serve_helpers import (
    ServeProcess,
    agent_spans,
    free_port,
    health,
    post,
    request_of,
    sender_run_ids,
    spawn_sender,
)

from otel_runjournal import RunJournalExporter, open_store


def _shape(location: str, run_ids: list[str]) -> dict[str, tuple[str, int, int, int]]:
    """Per run: (status, events, distinct (event type, span id) pairs, spans) read from the journal."""
    store = open_store(location)
    try:
        out = {}
        for run_id in run_ids:
            run = store.get_run(run_id)
            if run is None:
                continue
            events = store.list_events(run_id, limit=1000)
            spans = store.sql(
                "select count(*), count(distinct span_id) from spans where run_id = $1", [run_id]
            )  # type: ignore[attr-defined]
            assert spans[0][0] == spans[0][1], f"run {run_id} has duplicate span rows"
            out[run_id] = (
                run.status,
                len(events),
                len({(e.event_type, e.span_id) for e in events}),
                spans[0][0],
            )
        return out
    finally:
        store.close()


@pytest.fixture(scope="module")
def expected_shape(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int, int, int]:
    """The shape of one run of the full demo agent journaled in-process (the reference)."""
    spans = agent_spans(1, light=False, capture_content=False)
    location = str(tmp_path_factory.mktemp("ref") / "ref.duckdb")
    exporter = RunJournalExporter(location)
    exporter.export(spans)
    exporter.shutdown()
    store = open_store(location)
    run_id = store.list_runs()[0].run_id
    store.close()
    return _shape(location, [run_id])[run_id]


def _assert_whole(location: str, run_ids: list[str], expected: tuple[str, int, int, int]) -> None:
    shapes = _shape(location, run_ids)
    missing = [r for r in run_ids if r not in shapes]
    assert not missing, f"{len(missing)} of {len(run_ids)} runs missing"
    assert Counter(shapes.values()) == Counter({expected: len(run_ids)})


def test_four_apps_times_200_runs_all_whole(
    tmp_path: Path, expected_shape: tuple[str, int, int, int]
) -> None:
    """4 app processes x 200 runs over gRPC and HTTP into one serve: every run whole, nothing duplicated."""
    location = str(tmp_path / "served.duckdb")
    with ServeProcess(location, tmp_path / "spool", free_port(), free_port()) as serve:
        senders = [
            spawn_sender(endpoint, protocol, 200, "--thread-prefix", f"app{i}")
            for i, (endpoint, protocol) in enumerate(
                [
                    (f"http://127.0.0.1:{serve.grpc_port}", "grpc"),
                    (f"http://127.0.0.1:{serve.grpc_port}", "grpc"),
                    (f"http://127.0.0.1:{serve.http_port}", "http/protobuf"),
                    (f"http://127.0.0.1:{serve.http_port}", "http/protobuf"),
                ]
            )
        ]
        run_ids = [r for proc in senders for r in sender_run_ids(proc)]
        status, stats = health(serve.http_port)
        assert status == 200 and stats["duplicate_spans"] == 0
    assert serve.wait() == 0
    assert len(set(run_ids)) == 800
    _assert_whole(location, run_ids, expected_shape)


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGKILL, 0], ids=["sigterm", "sigkill", "sigkill-all"]
)
def test_serve_stopped_mid_run_and_restarted_loses_and_duplicates_nothing(
    tmp_path: Path, expected_shape: tuple[str, int, int, int], signum: int
) -> None:
    """serve stopped (SIGTERM: graceful; SIGKILL: abrupt, its journal process finishes alone;
    SIGKILL of serve and its journal process at once) while apps send, then restarted: every run whole,
    no duplicates (acknowledged spans come back from the spool, re-sent ones are recognised)."""
    location = str(tmp_path / "served.duckdb")
    serve = ServeProcess(location, tmp_path / "spool", free_port(), free_port()).start()
    try:
        endpoint = f"http://127.0.0.1:{serve.grpc_port}"
        senders = [spawn_sender(endpoint, "grpc", 150, "--thread-prefix", f"app{i}") for i in range(2)]
        deadline = time.monotonic() + 120
        while health(serve.http_port)[1]["written_runs"] < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        if signum:
            serve.signal(signum)
            code = serve.wait(60)
        else:
            children = serve.children()
            assert children, "serve runs its journal in a child process"
            serve.kill_all()
            code = -signal.SIGKILL
        assert code == (0 if signum == signal.SIGTERM else -signal.SIGKILL), serve.log_text()[-3000:]
        if signum == signal.SIGTERM:
            assert "stopped" in serve.log_text()
        time.sleep(0.5)
        serve.start()
        run_ids = [r for proc in senders for r in sender_run_ids(proc)]
    finally:
        serve.__exit__(None, None, None)
    log = serve.log_text()
    assert "replayed" in log or signum == signal.SIGTERM, log[-3000:]
    _assert_whole(location, run_ids, expected_shape)


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # exited, not yet reaped


def _kill_and_wait_for(serve: ServeProcess, children: list[int], timeout: float) -> None:
    """SIGKILL serve, then wait until its journal process (``children``) has exited too."""
    serve.kill()
    deadline = time.monotonic() + timeout
    while not all(_gone(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(pid) for pid in children), "the journal process outlived serve"


def test_journal_process_finishes_and_exits_when_serve_is_killed(tmp_path: Path) -> None:
    """SIGKILL of serve leaves no orphan: its journal process journals what it took, lets go of spool and
    store, and exits; the journal then opens, with the run written."""
    location = str(tmp_path / "served.duckdb")
    serve = ServeProcess(location, tmp_path / "spool", free_port(), free_port()).start()
    children = serve.children()
    assert children
    spans = agent_spans(1)
    assert post(serve.http_port, request_of(spans).SerializeToString()).status == 200
    _kill_and_wait_for(serve, children, 30)
    store = open_store(location, read_only=True)
    try:
        assert len(store.list_runs()) == 1
    finally:
        store.close()
    assert "the receiving process is gone" in serve.log_text()


def test_serve_stops_with_an_error_when_its_journal_process_dies(tmp_path: Path) -> None:
    """The journal process killed: senders get retryable answers, serve exits non-zero saying why, and a
    restart journals everything acknowledged before."""
    location = str(tmp_path / "served.duckdb")
    serve = ServeProcess(location, tmp_path / "spool", free_port(), free_port()).start()
    spans = agent_spans(2)
    roots = [s for s in spans if s.parent is None]
    children_spans = [s for s in spans if s.parent is not None]
    assert post(serve.http_port, request_of(children_spans).SerializeToString()).status == 200
    for pid in serve.children():
        os.kill(pid, signal.SIGKILL)
    assert serve.wait(60) == 1
    assert "the journal process died" in serve.log_text()
    with ServeProcess(location, tmp_path / "spool", free_port(), free_port()) as again:
        assert post(again.http_port, request_of(roots).SerializeToString()).status == 200
    assert again.wait() == 0
    store = open_store(location, read_only=True)
    try:
        runs = store.list_runs()
        assert len(runs) == 2 and {r.status for r in runs} == {"success"}
        assert sum(len(store.list_spans(r.run_id)) for r in runs) == len(spans)
    finally:
        store.close()


def test_serve_embedded_in_a_script_without_a_main_guard(tmp_path: Path) -> None:
    """An app script that starts Serve at module level (no ``if __name__ == "__main__"``) works: the
    journal process does not run the script again, as multiprocessing's spawn would."""
    script = tmp_path / "app.py"
    script.write_text(
        "import sys\n"
        "from otel_runjournal.serve.server import Serve, ServeConfig\n"
        "print('app starts', flush=True)\n"
        "config = ServeConfig(store=sys.argv[1], grpc=None, http=('127.0.0.1', 0), spool=sys.argv[2])\n"
        "server = Serve(config)\n"
        "server.start()\n"
        "print('serving', server.writer.health()['status'], flush=True)\n"
        "server.stop()\n"
    )
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "x.duckdb"), str(tmp_path / "spool")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["app starts", "serving ok"]


def test_runs_acknowledged_before_serve_is_killed_are_journaled_once(tmp_path: Path) -> None:
    """SIGKILL of serve right after its last answer: every run acknowledged is in the store exactly
    once (whole, every span once) when the journal process has finished and exited."""
    location = str(tmp_path / "served.duckdb")
    serve = ServeProcess(location, tmp_path / "spool", free_port(), free_port(), "--settle", "0").start()
    spans = agent_spans(12)
    run_ids = sorted({str(s.attributes["runjournal.run_id"]) for s in spans if s.attributes})
    assert len(run_ids) == 12
    for i in range(0, len(spans), len(spans) // 6):
        assert (
            post(serve.http_port, request_of(spans[i : i + len(spans) // 6]).SerializeToString()).status
            == 200
        )
    _kill_and_wait_for(serve, serve.children(), 60)
    store = open_store(location, read_only=True)
    try:
        runs = store.list_runs(limit=100)
        assert sorted(r.run_id for r in runs) == run_ids
        assert {r.status for r in runs} == {"success"}
        rows = store.sql("select count(*), count(distinct span_id) from spans")  # type: ignore[attr-defined]
        assert rows[0] == (len(spans), len(spans))
    finally:
        store.close()
