"""``serve`` with TLS on both ports (a throwaway self-signed certificate), and gRPC's health service."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.sdk.trace.export import SpanExportResult
from serve_helpers import ROOT, agent_spans, free_port, request_of, serving

from otel_runjournal import RunJournalExporter, open_store
from otel_runjournal.serve.auth import load_tls

HEALTH = "/grpc.health.v1.Health/Check"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A throwaway CA and a server certificate it signed for 127.0.0.1 / localhost: (cert, key, ca)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (CI installs it: .ci/services/05-openssl.sh)")
    d = tmp_path_factory.mktemp("tls")
    ca, ca_key, cert, key, csr, ext = (
        str(d / n) for n in ("ca.pem", "ca.key", "c.pem", "c.key", "c.csr", "x")
    )
    Path(ext).write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    for command in (
        f"req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-CA -keyout {ca_key} -out {ca}",
        f"req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout {key} -out {csr}",
        f"x509 -req -in {csr} -CA {ca} -CAkey {ca_key} -CAcreateserial -days 1 -extfile {ext} -out {cert}",
    ):
        subprocess.run([openssl, *command.split()], check=True, capture_output=True)
    return cert, key, ca


def _runs(location: str) -> list[tuple[str, str, int]]:
    store = open_store(location, read_only=True)
    try:
        return sorted((r.run_id, r.status, len(store.list_events(r.run_id))) for r in store.list_runs())
    finally:
        store.close()


def test_tls_on_both_ports(
    certificate: tuple[str, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS (the SDK's OTLP/HTTP exporter trusting our CA) and gRPC over TLS journal like the
    exporter; /health over HTTPS; a plain-text client gets nowhere and serve keeps serving."""
    cert, key, ca = certificate
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's CA file (the SDK's
    # certificate_file); some machines set them
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    spans = agent_spans(2)
    half = len(spans) // 2
    location = str(tmp_path / "served.duckdb")
    with serving(location, tmp_path / "spool", tls_cert=cert, tls_key=key) as server:
        with pytest.raises(OSError):  # plain HTTP to the TLS port
            urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/health", timeout=10)
        exporter = OTLPSpanExporter(
            endpoint=f"https://127.0.0.1:{server.http_port}/v1/traces", certificate_file=ca
        )
        assert exporter.export(spans[:half]) is SpanExportResult.SUCCESS
        exporter.shutdown()
        with open(ca, "rb") as f:
            credentials = grpc.ssl_channel_credentials(f.read())
        with grpc.secure_channel(f"localhost:{server.grpc_port}", credentials) as channel:
            response = trace_service_pb2_grpc.TraceServiceStub(channel).Export(
                request_of(spans[half:]), timeout=30
            )
            assert not response.HasField("partial_success")
        context = ssl.create_default_context(cafile=ca)
        with urllib.request.urlopen(
            f"https://127.0.0.1:{server.http_port}/health", timeout=10, context=context
        ) as resp:
            assert resp.status == 200
    reference = str(tmp_path / "local.duckdb")
    exporter_local = RunJournalExporter(reference)
    exporter_local.export(spans)
    exporter_local.shutdown()
    assert _runs(location) == _runs(reference) and len(_runs(location)) == 2


def test_unusable_tls_files_are_one_line_errors(certificate: tuple[str, str, str], tmp_path: Path) -> None:
    """A missing half, an unreadable file, a key that does not match: one line each, also from the CLI."""
    cert, key, _ = certificate
    (tmp_path / "not.pem").write_text("not a certificate\n")
    with pytest.raises(ValueError, match="both a certificate"):
        load_tls(cert, None)
    with pytest.raises(ValueError, match="cannot read the TLS key"):
        load_tls(cert, str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="not a PEM certificate"):
        load_tls(str(tmp_path / "not.pem"), key)
    assert load_tls(None, None) is None
    flags = ["--store", str(tmp_path / "x.duckdb"), "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"]
    result = subprocess.run(
        [sys.executable, "-m", "otel_runjournal", "serve", *flags, "--tls-cert", cert],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: TLS needs both a certificate (--tls-cert) and its key (--tls-key)"
    )


def _health(port: int, body: bytes) -> Any:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = channel.unary_unary(HEALTH, request_serializer=None, response_deserializer=None)
        return check(body, timeout=10)


def test_grpc_health_service(tmp_path: Path) -> None:
    """grpc.health.v1.Health/Check: SERVING for the server and the trace service, NOT_FOUND for others,
    INVALID_ARGUMENT for a body that is not a HealthCheckRequest."""
    with serving(str(tmp_path / "x.duckdb"), tmp_path / "spool") as server:
        port = server.grpc_port or 0
        serving_status = b"\x08\x01"
        assert _health(port, b"") == serving_status
        service = b"opentelemetry.proto.collector.trace.v1.TraceService"
        assert _health(port, b"\x0a" + bytes([len(service)]) + service) == serving_status
        with pytest.raises(grpc.RpcError) as info:
            _health(port, b"\x0a\x05other")
        assert info.value.code() is grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as info:
            _health(port, b"\xff\xff")
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_serve_takes_token_spool_and_tls_from_the_environment(
    certificate: tuple[str, str, str], tmp_path: Path
) -> None:
    """`otel-runjournal serve` with no --token/--spool/--tls-* flags uses OTEL_RUNJOURNAL_SERVE_TOKEN,
    _SPOOL, _TLS_CERT and _TLS_KEY: HTTPS with that certificate, the token required, that spool."""
    cert, key, ca = certificate
    location, spool = str(tmp_path / "served.duckdb"), tmp_path / "env-spool"
    http_port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_RUNJOURNAL_SERVE_TOKEN="s3cret-from-env",
        OTEL_RUNJOURNAL_SERVE_SPOOL=str(spool),
        OTEL_RUNJOURNAL_SERVE_TLS_CERT=cert,
        OTEL_RUNJOURNAL_SERVE_TLS_KEY=key,
    )
    command = [sys.executable, "-m", "otel_runjournal", "serve", "--store", location, "--settle", "0"]
    command += ["--http", f"127.0.0.1:{http_port}", "--grpc", f"127.0.0.1:{grpc_port}"]
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    context = ssl.create_default_context(cafile=ca)
    body = request_of(agent_spans(1)).SerializeToString()

    def send(token: str | None) -> int:
        headers = {"Content-Type": "application/x-protobuf"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            f"https://127.0.0.1:{http_port}/v1/traces", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=10, context=context) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return err.code

    try:
        deadline = time.monotonic() + 60
        while True:  # up when /health answers over HTTPS, trusting our CA (so TLS came from the env)
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{http_port}/health", timeout=5, context=context
                ) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        assert send(None) == 401
        assert send("wrong") == 401
        assert send("s3cret-from-env") == 200
        assert (spool / "lock").exists() and list(spool.glob("*.seg")), sorted(spool.iterdir())
        assert not Path(location + ".spool").exists()  # not the default spool
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
    assert [status for _, status, _ in _runs(location)] == ["success"]
