"""Environment variables, each named once, and the one precedence rule.

Precedence everywhere: **constructor argument → environment variable → default**. Nothing here
reads the environment at import time; :func:`resolve` is called from constructors.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TypeVar

_logger = logging.getLogger(__name__)

T = TypeVar("T")

OTEL_RUNJOURNAL_STORE = "OTEL_RUNJOURNAL_STORE"
"""Where the journal is written: ``x.duckdb``, ``duckdb:///x.duckdb``, a directory, ``jsonl:///dir``
or ``postgresql://user@host:port/db`` (the ``postgres`` extra); ``none``: no local journal (``configure()``
exports OTLP only). Default: ``./runjournal.duckdb``."""

OTEL_RUNJOURNAL_CONTENT_MAX_LENGTH = "OTEL_RUNJOURNAL_CONTENT_MAX_LENGTH"
"""Largest content value (characters) recorded anywhere before truncation. Default: 65536."""

OTEL_RUNJOURNAL_JOURNAL_CONTENT = "OTEL_RUNJOURNAL_JOURNAL_CONTENT"
"""Whether the local journal records content (messages, tool args/results). Default: true."""

OTEL_RUNJOURNAL_VERBOSITY = "OTEL_RUNJOURNAL_VERBOSITY"
"""Which runs become spans: ``all`` (every run) or ``genai`` (drops plumbing chains, re-parenting
their children). Default: ``genai``."""

OTEL_RUNJOURNAL_RUN_TTL = "OTEL_RUNJOURNAL_RUN_TTL"
"""Seconds after which a run that never ended is closed and marked abandoned. Default: 3600."""

OTEL_RUNJOURNAL_MAX_PENDING_SPANS = "OTEL_RUNJOURNAL_MAX_PENDING_SPANS"
"""Spans the exporter holds for runs whose root has not ended yet. Default: 100000."""

OTEL_RUNJOURNAL_PRICES = "OTEL_RUNJOURNAL_PRICES"
"""A JSON file of the user's model prices, which override genai-prices' table (see
:mod:`otel_runjournal.pricing`). Default: none (the table alone)."""

OTEL_RUNJOURNAL_FSYNC = "OTEL_RUNJOURNAL_FSYNC"
"""JSONL store fsync policy: ``never``, ``batch`` (after every write) . Default: ``never``."""

OTEL_RUNJOURNAL_SERVE_TOKEN = "OTEL_RUNJOURNAL_SERVE_TOKEN"
"""``otel-runjournal serve``: bearer token senders must present (``Authorization: Bearer <token>``, HTTP
header or gRPC metadata). Default: none (then serve binds loopback only, unless ``--insecure``)."""

OTEL_RUNJOURNAL_SERVE_SPOOL = "OTEL_RUNJOURNAL_SERVE_SPOOL"
"""``otel-runjournal serve``: directory of its write-ahead spool. Default: the store's path + ``.spool``."""

OTEL_RUNJOURNAL_SERVE_TLS_CERT = "OTEL_RUNJOURNAL_SERVE_TLS_CERT"
"""``otel-runjournal serve``: PEM certificate (chain) to serve TLS on both ports. Default: none (plain)."""

OTEL_RUNJOURNAL_SERVE_TLS_KEY = "OTEL_RUNJOURNAL_SERVE_TLS_KEY"
"""``otel-runjournal serve``: PEM private key of ``OTEL_RUNJOURNAL_SERVE_TLS_CERT``."""

OTEL_RUNJOURNAL_TRACE_URL = "OTEL_RUNJOURNAL_TRACE_URL"
"""``otel-runjournal show``: a link template for a run's trace in your trace viewer, ``{trace_id}`` replaced
(Jaeger: ``http://localhost:16686/trace/{trace_id}``). Default: none (only the trace id is printed)."""
OTEL_RUNJOURNAL_RETENTION = "OTEL_RUNJOURNAL_RETENTION"
"""``otel-runjournal serve``: prune runs that started longer ago than this (``30d``, ``12h``, ...) once
an hour. Default: none (keep everything)."""

OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""Standard OTel GenAI switch: put content attributes on spans (so every exporter sees them).
Default: false."""

OTEL_SERVICE_NAME = "OTEL_SERVICE_NAME"
OTEL_EXPORTER_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
OTEL_EXPORTER_OTLP_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
OTEL_BSP_MAX_EXPORT_BATCH_SIZE = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
"""Standard SDK variable; ``configure()``'s journal processor defaults it to 2048 (SDK: 512)."""
OTEL_BSP_MAX_QUEUE_SIZE = "OTEL_BSP_MAX_QUEUE_SIZE"
"""Standard SDK variable; ``configure()``'s journal processor defaults it to 8192 (SDK: 2048)."""

DEFAULT_STORE = "./runjournal.duckdb"
DEFAULT_CONTENT_MAX_LENGTH = 65536

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def parse_bool(text: str) -> bool:
    """Parse an OTel-style boolean; raises ``ValueError`` for anything else."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def resolve(arg: T | None, env_var: str, default: T, parse: Callable[[str], T] | None = None) -> T:
    """Return ``arg`` if given, else the parsed environment variable, else ``default``.

    A malformed environment value is logged and ignored (the default wins): configuration from the
    environment must not crash the application at start-up.
    """
    if arg is not None:
        return arg
    raw = os.environ.get(env_var)
    if raw is None or raw.strip() == "":
        return default
    if parse is None:
        return raw.strip()  # type: ignore[return-value]
    try:
        return parse(raw)
    except (TypeError, ValueError):
        _logger.warning("ignoring malformed %s=%r; using %r", env_var, raw, default)
        return default
