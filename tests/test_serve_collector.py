"""apps → a real OpenTelemetry Collector (persistent queue) → ``serve`` → DuckDB; serve SIGKILLed mid-run.

Needs ``OTELCOL_BIN`` (a Collector with the components of collector-config/otelcol-builder.yaml; CI's
``.ci/services`` script builds it and exports the variable). Locally:
``OTELCOL_BIN=/path/to/otelcol-runjournal .venv/bin/python -m pytest tests/test_serve_collector.py``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from otlp_receiver import ReceiverProcess
from serve_helpers import ServeProcess, free_port, health, sender_run_ids, spawn_sender
from test_serve_processes import _assert_whole, _shape, expected_shape  # noqa: F401 - the fixture

from otel_runjournal import open_store

yaml = pytest.importorskip("yaml")

CONFIG = Path(__file__).resolve().parent.parent / "collector-config" / "otel-collector-serve.yaml"


def _config() -> dict[str, Any]:
    data = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_serve_config_is_complete_and_persistent() -> None:
    """Every component a pipeline names is declared; serve's queue is on file_storage and never gives up;
    every address is an env var with a default."""
    config = _config()
    pipeline = config["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        for name in pipeline[kind]:
            assert name in config[kind], f"{kind[:-1]} {name} is not declared"
    for name in config["service"]["extensions"]:
        assert name in config["extensions"]
    assert {"otlp_grpc/jaeger", "otlp_grpc/serve"} <= set(pipeline["exporters"])
    serve = config["exporters"]["otlp_grpc/serve"]
    assert serve["sending_queue"]["storage"] in config["service"]["extensions"]
    assert serve["sending_queue"]["storage"].startswith("file_storage")
    assert serve["retry_on_failure"]["max_elapsed_time"] == 0
    text = CONFIG.read_text(encoding="utf-8")
    placeholders = re.findall(r"\$\{env:([A-Z_]+)(:-[^}]*)?\}", text)
    assert placeholders and all(default for _, default in placeholders)
    assert "SERVE_OTLP_ENDPOINT" in {name for name, _ in placeholders}


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def _complete_runs(location: str, run_ids: list[str]) -> int:
    try:
        store = open_store(location)
    except Exception:
        return 0
    try:
        return sum(1 for r in run_ids if (run := store.get_run(r)) is not None and run.status != "running")
    finally:
        store.close()


def _whole_runs(location: str, run_ids: list[str], expected: tuple[str, int, int, int]) -> int:
    try:
        shapes = _shape(location, run_ids)
    except Exception:  # serve holds the store at this instant
        return 0
    return sum(1 for shape in shapes.values() if shape == expected)


def test_collector_to_serve_survives_sigkill(
    tmp_path: Path,
    expected_shape: tuple[str, int, int, int],  # noqa: F811 - the fixture
) -> None:
    """Apps → Collector (file_storage queue) → serve → DuckDB; serve SIGKILLed mid-run and restarted:
    every run whole, no duplicates; the Jaeger-side exporter got the spans too."""
    collector_bin = os.environ.get("OTELCOL_BIN")
    if not collector_bin:
        pytest.skip("set OTELCOL_BIN to a Collector binary (CI builds it: .ci/services) to run this test")
    location = str(tmp_path / "served.duckdb")
    grpc_in, health_port = free_port(), free_port()
    with ReceiverProcess(tmp_path / "jaeger") as jaeger:  # stands in for Jaeger's OTLP port
        serve = ServeProcess(location, tmp_path / "spool", free_port(), free_port()).start()
        env = {
            **os.environ,
            "COLLECTOR_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc_in}",
            "COLLECTOR_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
            "COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{health_port}",
            "COLLECTOR_METRICS_HOST": "127.0.0.1",
            "COLLECTOR_METRICS_PORT": str(free_port()),
            "JAEGER_OTLP_ENDPOINT": jaeger.grpc_endpoint.removeprefix("http://"),
            "SERVE_OTLP_ENDPOINT": f"127.0.0.1:{serve.grpc_port}",
            "SERVE_QUEUE_DIR": str(tmp_path / "queue"),
        }
        log = open(tmp_path / "collector.log", "w")  # noqa: SIM115 - closed below
        collector = subprocess.Popen(
            [collector_bin, "--config", str(CONFIG)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_http(f"http://127.0.0.1:{health_port}/")
            senders = [
                spawn_sender(f"http://127.0.0.1:{grpc_in}", "grpc", 150, "--thread-prefix", f"app{i}")
                for i in range(3)
            ]
            deadline = time.monotonic() + 120
            while health(serve.http_port)[1]["written_runs"] < 30 and time.monotonic() < deadline:
                time.sleep(0.05)
            serve.kill()  # SIGKILL mid-run
            time.sleep(2)  # the Collector keeps queueing on disk meanwhile
            serve.start()
            replayed = health(serve.http_port)[1]["replayed_spans"]  # the runs in flight at the kill
            run_ids = [r for proc in senders for r in sender_run_ids(proc)]
            deadline = time.monotonic() + 180
            while _complete_runs(location, run_ids) < len(run_ids) and time.monotonic() < deadline:
                time.sleep(0.5)
            # a run written before a batch of its children came out of a retry backoff gets them
            # appended within seconds (serve's settle), long before --run-idle-timeout
            deadline = time.monotonic() + 60
            while _whole_runs(location, run_ids, expected_shape) < len(run_ids):
                if time.monotonic() > deadline:
                    break
                time.sleep(1)
        finally:
            collector.send_signal(signal.SIGTERM)
            collector.wait(60)
            log.close()
            serve.__exit__(None, None, None)
        assert replayed > 0, serve.log_text()[-3000:]
        assert re.search(rf"serve: replayed {replayed} spans from the spool", serve.log_text())
        _assert_whole(location, run_ids, expected_shape)
        names = {s.name for s in jaeger.spans()}
        assert "invoke_agent research_assistant" in names
