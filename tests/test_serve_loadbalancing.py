"""apps → one Collector (loadbalancing by trace id) → two ``serve`` → one PostgreSQL journal.

Needs ``OTELCOL_LB_BIN`` (the Collector of collector-config/otelcol-builder-loadbalancing.yaml; CI's
``.ci/services`` script builds it and exports the variable) and the test PostgreSQL server.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from pg_server import Schema
from serve_helpers import ServeProcess, free_port, health, sender_run_ids, spawn_sender
from test_serve_collector import _wait_http
from test_serve_processes import expected_shape  # noqa: F401 - the fixture

from otel_runjournal import open_store

yaml = pytest.importorskip("yaml")

CONFIG = Path(__file__).resolve().parent.parent / "collector-config" / "otel-collector-loadbalancing.yaml"


def test_loadbalancing_config_routes_by_trace_id_with_a_persistent_queue() -> None:
    """The config declares what its pipeline names, routes by traceID over two static serves, keeps its
    queue on file_storage without giving up, and takes every address from an env var with a default."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    pipeline = config["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        for name in pipeline[kind]:
            assert name in config[kind], f"{kind[:-1]} {name} is not declared"
    lb = config["exporters"]["loadbalancing/serve"]
    assert lb["routing_key"] == "traceID" and len(lb["resolver"]["static"]["hostnames"]) == 2
    assert lb["sending_queue"]["storage"] in config["service"]["extensions"]
    assert lb["retry_on_failure"]["max_elapsed_time"] == 0
    assert lb["protocol"]["otlp"]["sending_queue"]["enabled"] is False
    placeholders = re.findall(r"\$\{env:([A-Z_]+)(:-[^}]*)?\}", CONFIG.read_text(encoding="utf-8"))
    assert placeholders and all(default for _, default in placeholders)


def _shapes(location: str, run_ids: list[str]) -> dict[str, tuple[str, int, int, int]]:
    """Per run: (status, events, distinct (event type, span id), spans), as test_serve_processes._shape."""
    store = open_store(location, read_only=True)
    try:
        out = {}
        for run_id in run_ids:
            run = store.get_run(run_id)
            if run is None or run.status == "running":
                continue
            events = store.list_events(run_id, limit=1000)
            spans = store.list_spans(run_id)
            assert len(spans) == len({s.span_id for s in spans}), f"run {run_id} has duplicate span rows"
            out[run_id] = (
                run.status,
                len(events),
                len({(e.event_type, e.span_id) for e in events}),
                len(spans),
            )
        return out
    finally:
        store.close()


def test_two_serves_behind_a_loadbalancing_collector_write_whole_runs(
    tmp_path: Path,
    expected_shape: tuple[str, int, int, int],  # noqa: F811 - the fixture
) -> None:
    """3 apps x 80 runs → Collector → two serves → PostgreSQL: every run whole, none duplicated, both
    serves used, and each run written by one serve only."""
    collector_bin = os.environ.get("OTELCOL_LB_BIN")
    if not collector_bin:
        pytest.skip("set OTELCOL_LB_BIN to the loadbalancing Collector (CI builds it: .ci/services)")
    schema = Schema()
    location = schema.url
    grpc_in, health_port = free_port(), free_port()
    serves = [ServeProcess(location, tmp_path / f"spool-{n}", free_port(), free_port()).start() for n in "ab"]
    env: dict[str, Any] = {
        **os.environ,
        "COLLECTOR_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc_in}",
        "COLLECTOR_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{health_port}",
        "COLLECTOR_METRICS_HOST": "127.0.0.1",
        "COLLECTOR_METRICS_PORT": str(free_port()),
        "SERVE_A_OTLP_ENDPOINT": f"127.0.0.1:{serves[0].grpc_port}",
        "SERVE_B_OTLP_ENDPOINT": f"127.0.0.1:{serves[1].grpc_port}",
        "SERVE_QUEUE_DIR": str(tmp_path / "queue"),
    }
    log = open(tmp_path / "collector.log", "w")  # noqa: SIM115 - closed below
    collector = subprocess.Popen(
        [collector_bin, "--config", str(CONFIG)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_http(f"http://127.0.0.1:{health_port}/")
        senders = [
            spawn_sender(f"http://127.0.0.1:{grpc_in}", "grpc", 80, "--thread-prefix", f"app{i}")
            for i in range(3)
        ]
        run_ids = [r for proc in senders for r in sender_run_ids(proc)]
        deadline = time.monotonic() + 180
        while len(_shapes(location, run_ids)) < len(run_ids) and time.monotonic() < deadline:
            time.sleep(0.5)
        written = [health(s.http_port)[1]["written_runs"] for s in serves]
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(60)
        log.close()
        for serve in serves:
            serve.__exit__(None, None, None)
    try:
        assert len(set(run_ids)) == 240
        shapes = _shapes(location, run_ids)
        assert len(shapes) == len(run_ids), (tmp_path / "collector.log").read_text()[-3000:]
        assert set(shapes.values()) == {expected_shape}
        assert all(w > 0 for w in written) and sum(written) == len(run_ids), written
    finally:
        schema.drop()
