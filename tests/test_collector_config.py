"""The files in ``collector-config/`` agree with each other and with the Collector built from them.

The end-to-end run against real Jaeger and Collector processes is ``scripts/jaeger_check.py`` (CI's
``.ci/checks/40-jaeger.sh``); here the shapes, the env-var endpoints, and, when ``OTELCOL_BIN`` /
``JAEGER_BIN`` are set (CI sets them), the binaries' own ``validate`` of the files as shipped.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent / "collector-config"
ENV_REF = re.compile(r"^\$\{env:([A-Z0-9_]+):-([^}]*)\}$")
# component type in otel-collector.yaml -> the Go package the builder manifest must list
MODULES = {
    "otlp": "receiver/otlpreceiver",
    "memory_limiter": "processor/memorylimiterprocessor",
    "batch": "processor/batchprocessor",
    "otlp_grpc": "exporter/otlpexporter",
    "otlp_http": "exporter/otlphttpexporter",
    "debug": "exporter/debugexporter",
    "health_check": "extension/healthcheckextension",
    "file_storage": "extension/storage/filestorage",
}


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def collector() -> dict[str, Any]:
    """The parsed collector configuration."""
    return _load("otel-collector.yaml")


@pytest.fixture(scope="module")
def jaeger() -> dict[str, Any]:
    """The parsed Jaeger v2 configuration."""
    return _load("jaeger.yaml")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed docker-compose file."""
    return _load("docker-compose.yaml")


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    """The parsed Collector builder manifest."""
    return _load("otelcol-builder.yaml")


def _default(value: str) -> str:
    """The default of a ``${env:NAME:-default}`` reference (the compose value)."""
    match = ENV_REF.match(str(value))
    assert match, f"{value!r} is not ${{env:NAME:-default}}"
    return match.group(2)


def _port(endpoint: str) -> int:
    return int(_default(endpoint).rsplit(":", 1)[1])


def _published(service: dict[str, Any]) -> dict[int, int]:
    """container port -> host port of a compose service."""
    out: dict[int, int] = {}
    for spec in service.get("ports", []):
        host, container = str(spec).split(":")[-2:]
        out[int(container)] = int(host)
    return out


def _endpoints(node: Any, path: str = "") -> dict[str, Any]:
    """Every ``endpoint`` / ``host`` / ``port`` value in a config, by its dotted path."""
    out: dict[str, Any] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("endpoint", "host", "port") and not isinstance(value, (dict, list)):
                out[f"{path}{key}"] = value
            else:
                out.update(_endpoints(value, f"{path}{key}."))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.update(_endpoints(value, f"{path}{i}."))
    return out


def test_every_pipeline_component_is_defined(collector: dict[str, Any], jaeger: dict[str, Any]) -> None:
    """Each receiver/processor/exporter/extension a pipeline names is declared in its section."""
    for config in (collector, jaeger):
        pipelines = config["service"]["pipelines"]
        assert "traces" in pipelines
        for name, pipeline in pipelines.items():
            for kind in ("receivers", "processors", "exporters"):
                for component in pipeline.get(kind, []):
                    assert component in (config.get(kind) or {}), f"{name}: {kind[:-1]} {component} undefined"
        for ext in config["service"].get("extensions", []):
            assert ext in config.get("extensions", {})


def test_traces_pipeline_shape(collector: dict[str, Any]) -> None:
    """OTLP in; memory_limiter first, then batch; OTLP/gRPC to Jaeger and debug out."""
    traces = collector["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    assert traces["processors"] == ["memory_limiter", "batch"]
    assert set(traces["exporters"]) == {"otlp_grpc/jaeger", "debug"}
    protocols = collector["receivers"]["otlp"]["protocols"]
    assert _port(protocols["grpc"]["endpoint"]) == 4317
    assert _port(protocols["http"]["endpoint"]) == 4318


def test_every_address_comes_from_an_env_var(collector: dict[str, Any], jaeger: dict[str, Any]) -> None:
    """Every listen/target address is ``${env:NAME:-default}`` with distinct names, so the same files
    run in compose (the defaults) and on free loopback ports (the variables)."""
    names: list[str] = []
    for config in (collector, jaeger):
        endpoints = _endpoints(config)
        assert endpoints
        for where, value in endpoints.items():
            match = ENV_REF.match(str(value))
            assert match, f"{where}: {value!r} is not ${{env:NAME:-default}}"
            names.append(match.group(1))
    assert len(names) == len(set(names)), f"an env var is used twice: {names}"


def test_memory_limiter_limits_come_from_env_with_defaults(collector: dict[str, Any]) -> None:
    """memory_limiter: 512 MiB with a 128 MiB spike unless the environment says otherwise."""
    limiter = collector["processors"]["memory_limiter"]
    assert int(_default(limiter["limit_mib"])) == 512
    assert int(_default(limiter["spike_limit_mib"])) == 128


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


def test_jaeger_exporter_targets_compose_service(
    collector: dict[str, Any], jaeger: dict[str, Any], compose: dict[str, Any]
) -> None:
    """By default the collector exports to the compose ``jaeger`` service's OTLP gRPC port, which is
    the port jaeger.yaml listens on, and that service runs Jaeger v2 with jaeger.yaml mounted."""
    host, port = _default(collector["exporters"]["otlp_grpc/jaeger"]["endpoint"]).rsplit(":", 1)
    assert host in compose["services"]
    service = compose["services"][host]
    assert service["image"].startswith("jaegertracing/jaeger:2.")
    mounted = [v for v in service["volumes"] if v.startswith("./jaeger.yaml:")]
    assert mounted and f"--config={mounted[0].split(':')[1]}" in service["command"]
    assert int(port) == _port(jaeger["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]) == 4317
    assert "4317" in [str(p) for p in service.get("expose", [])]
    query = _port(jaeger["extensions"]["jaeger_query"]["http"]["endpoint"])
    assert _published(service).get(query) == query == 16686
    assert "opentelemetry-collector-contrib" in compose["services"]["collector"]["image"]
    assert host in compose["services"]["collector"]["depends_on"]


def test_builder_manifest_has_every_component_at_one_release(
    collector: dict[str, Any], manifest: dict[str, Any]
) -> None:
    """The manifest builds every component otel-collector.yaml uses, plus file_storage (a persistent
    sending queue), core modules at one release, contrib at the matching one."""
    gomods = [
        c["gomod"] for kind in ("receivers", "processors", "exporters", "extensions") for c in manifest[kind]
    ]
    used = {
        name.split("/")[0]
        for kind in ("receivers", "processors", "exporters", "extensions")
        for name in collector[kind]
    }
    for component in used | {"file_storage"}:
        assert any(MODULES[component] + " " in g for g in gomods), f"{component} not in the manifest"
    versions = {g.split(" ")[1] for g in gomods}
    assert len(versions) == 1, versions
    assert f"{manifest['dist']['version']}" == versions.pop().lstrip("v")


def _binary(var: str) -> str:
    path = os.environ.get(var)
    if not path:
        pytest.skip(f"{var} not set: run .ci/services/20-otel-binaries.sh (needs Go) to build the binaries")
    return path


def test_collector_binary_validates_the_shipped_config() -> None:
    """The built Collector (``OTELCOL_BIN``) accepts otel-collector.yaml as shipped (compose defaults)."""
    out = subprocess.run(
        [_binary("OTELCOL_BIN"), "validate", f"--config={ROOT / 'otel-collector.yaml'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


def test_jaeger_binary_validates_the_shipped_config() -> None:
    """The built Jaeger v2 (``JAEGER_BIN``) accepts jaeger.yaml as shipped."""
    out = subprocess.run(
        [_binary("JAEGER_BIN"), "validate", f"--config={ROOT / 'jaeger.yaml'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
