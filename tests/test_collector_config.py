"""The collector config and compose file in ``collector-config/`` agree with each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent / "collector-config"


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def collector() -> dict[str, Any]:
    """The parsed collector configuration."""
    return _load("otel-collector.yaml")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed docker-compose file."""
    return _load("docker-compose.yaml")


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def _published(service: dict[str, Any]) -> dict[int, int]:
    """container port -> host port of a compose service."""
    out: dict[int, int] = {}
    for spec in service.get("ports", []):
        host, container = str(spec).split(":")[-2:]
        out[int(container)] = int(host)
    return out


def test_every_pipeline_component_is_defined(collector: dict[str, Any]) -> None:
    """Each receiver/processor/exporter a pipeline names is declared in its section."""
    pipelines = collector["service"]["pipelines"]
    assert "traces" in pipelines
    for name, pipeline in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in (collector.get(kind) or {}), f"{name}: {kind[:-1]} {component} undefined"
    for ext in collector["service"].get("extensions", []):
        assert ext in collector.get("extensions", {})


def test_traces_pipeline_shape(collector: dict[str, Any]) -> None:
    """OTLP in; memory_limiter first, then batch; OTLP to Jaeger and debug out."""
    traces = collector["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    assert traces["processors"] == ["memory_limiter", "batch"]
    assert set(traces["exporters"]) == {"otlp/jaeger", "debug"}
    protocols = collector["receivers"]["otlp"]["protocols"]
    assert _port(protocols["grpc"]["endpoint"]) == 4317
    assert _port(protocols["http"]["endpoint"]) == 4318


def test_collector_ports_are_published(collector: dict[str, Any], compose: dict[str, Any]) -> None:
    """The compose file publishes the collector's OTLP and health ports on the same host ports."""
    service = compose["services"]["collector"]
    published = _published(service)
    protocols = collector["receivers"]["otlp"]["protocols"]
    for proto in ("grpc", "http"):
        port = _port(protocols[proto]["endpoint"])
        assert published.get(port) == port
    health = _port(collector["extensions"]["health_check"]["endpoint"])
    assert published.get(health) == health
    mounted = [v for v in service["volumes"] if "otel-collector.yaml" in v]
    target = mounted[0].split(":")[1]
    assert any(arg == f"--config={target}" for arg in service["command"])


def test_jaeger_exporter_targets_compose_service(collector: dict[str, Any], compose: dict[str, Any]) -> None:
    """The collector exports to the compose ``jaeger`` service's OTLP gRPC port, with OTLP enabled."""
    host, port = collector["exporters"]["otlp/jaeger"]["endpoint"].rsplit(":", 1)
    assert host in compose["services"]
    jaeger = compose["services"][host]
    assert "jaegertracing/all-in-one" in jaeger["image"]
    assert str(jaeger["environment"]["COLLECTOR_OTLP_ENABLED"]).lower() == "true"
    assert int(port) == 4317
    assert "4317" in [str(p) for p in jaeger.get("expose", [])]
    assert _published(jaeger).get(16686) == 16686
    assert "opentelemetry-collector-contrib" in compose["services"]["collector"]["image"]
    assert host in compose["services"]["collector"]["depends_on"]
