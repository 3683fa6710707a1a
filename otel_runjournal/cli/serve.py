"""``otel-runjournal serve``: receive OTLP trace exports (gRPC, HTTP) and journal them into a store.

The server (grpc, protobuf, the journal mapping) is imported only when the command runs, so the
reading commands stay light.
"""

from __future__ import annotations

import logging

import click

from .. import settings as _env


def _endpoint(value: str, default_port: int) -> tuple[str, int] | None:
    from ..serve.auth import split_endpoint

    if value.strip().lower() in ("", "off", "none"):
        return None
    try:
        return split_endpoint(value, default_port)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option(
    "--store",
    "store",
    metavar="LOCATION",
    default=None,
    help="Journal to write (x.duckdb, a directory, jsonl:///dir, ...). "
    f"Default: ${_env.OTEL_RUNJOURNAL_STORE}, then {_env.DEFAULT_STORE}.",
)
@click.option(
    "--grpc",
    "grpc_at",
    default="127.0.0.1:4317",
    show_default=True,
    metavar="HOST:PORT",
    help="OTLP/gRPC listen address ('off' to disable; port 0: any free port).",
)
@click.option(
    "--http",
    "http_at",
    default="127.0.0.1:4318",
    show_default=True,
    metavar="HOST:PORT",
    help="OTLP/HTTP listen address, also serving GET /health ('off' to disable).",
)
@click.option(
    "--token",
    default=None,
    metavar="TOKEN",
    help=f"Bearer token every sender must present. Default: ${_env.OTEL_RUNJOURNAL_SERVE_TOKEN}.",
)
@click.option("--insecure", is_flag=True, help="Allow a non-loopback address without a token.")
@click.option(
    "--tls-cert",
    default=None,
    metavar="FILE",
    help=f"PEM certificate (chain): TLS on both ports. Default: ${_env.OTEL_RUNJOURNAL_SERVE_TLS_CERT}.",
)
@click.option(
    "--tls-key",
    default=None,
    metavar="FILE",
    help=f"PEM private key of --tls-cert. Default: ${_env.OTEL_RUNJOURNAL_SERVE_TLS_KEY}.",
)
@click.option(
    "--spool",
    default=None,
    metavar="DIR",
    help=f"Write-ahead spool directory. Default: ${_env.OTEL_RUNJOURNAL_SERVE_SPOOL}, then the "
    "store's path + '.spool'.",
)
@click.option("--fsync", is_flag=True, help="fsync the spool before acknowledging (survives power loss).")
@click.option(
    "--max-request-bytes",
    type=click.IntRange(1024),
    default=32 * 1024 * 1024,
    show_default=True,
    help="Largest request body (also after gunzip).",
)
@click.option(
    "--max-queued-spans",
    type=click.IntRange(1),
    default=20_000,
    show_default=True,
    help="Spans waiting for the writer; past it requests are refused as retryable.",
)
@click.option(
    "--settle",
    type=click.FloatRange(0),
    default=3.0,
    show_default=True,
    help="Seconds a run must be quiet after its root span arrived before it is journaled (through a "
    "Collector a root can overtake its children; up to 10x while spans the root announces are missing).",
)
@click.option(
    "--run-idle-timeout",
    type=click.FloatRange(1),
    default=600.0,
    show_default=True,
    help="Seconds after which a run whose root never came, with no new span, is written as it is "
    "(its sender died mid-run).",
)
@click.option(
    "--retention",
    default=None,
    metavar="AGE",
    help="Prune runs that started longer ago than AGE (30d, 12h, ...) at start and then hourly. "
    f"Default: ${_env.OTEL_RUNJOURNAL_RETENTION}, else keep everything.",
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning"]), default="info", show_default=True
)
def serve(
    store: str | None,
    grpc_at: str,
    http_at: str,
    token: str | None,
    insecure: bool,
    tls_cert: str | None,
    tls_key: str | None,
    spool: str | None,
    fsync: bool,
    max_request_bytes: int,
    max_queued_spans: int,
    settle: float,
    run_idle_timeout: float,
    retention: str | None,
    log_level: str,
) -> None:
    """Receive OTLP traces (gRPC :4317, HTTP :4318) and journal them like RunJournalExporter.

    Point apps or an OpenTelemetry Collector at it. Spans carry prompts and completions only when
    the sending app opted in (capture_content=True or
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true); without that the journal gets runs,
    tokens, timings and errors but no message text. SIGTERM stops it gracefully.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    from ..serve.server import Serve, ServeConfig  # the server only when the command runs
    from ..serve.spool import SpoolError
    from ..stores.base import StoreError
    from ..stores.retention import parse_age

    keep = _env.resolve(retention, _env.OTEL_RUNJOURNAL_RETENTION, "")
    try:
        age = parse_age(keep) if keep else None
    except ValueError as exc:
        raise click.BadParameter(
            str(exc), param_hint="--retention / $" + _env.OTEL_RUNJOURNAL_RETENTION
        ) from None
    config = ServeConfig(
        store=_env.resolve(store, _env.OTEL_RUNJOURNAL_STORE, _env.DEFAULT_STORE),
        grpc=_endpoint(grpc_at, 4317),
        http=_endpoint(http_at, 4318),
        token=_env.resolve(token, _env.OTEL_RUNJOURNAL_SERVE_TOKEN, "") or None,
        insecure=insecure,
        tls_cert=_env.resolve(tls_cert, _env.OTEL_RUNJOURNAL_SERVE_TLS_CERT, "") or None,
        tls_key=_env.resolve(tls_key, _env.OTEL_RUNJOURNAL_SERVE_TLS_KEY, "") or None,
        spool=_env.resolve(spool, _env.OTEL_RUNJOURNAL_SERVE_SPOOL, "") or None,
        fsync=fsync,
        max_request_bytes=max_request_bytes,
        max_queued_spans=max_queued_spans,
        settle=settle,
        run_idle_timeout=run_idle_timeout,
        retention=age,
    )
    try:
        server = Serve(config)
        server.start()
    except (ValueError, OSError, SpoolError, StoreError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    server.install_signal_handlers()
    server.wait()
    if server.failed:
        raise click.ClickException("the journal process died; serve stopped (the spool keeps what it took)")
