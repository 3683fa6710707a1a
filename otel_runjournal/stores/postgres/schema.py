"""The PostgreSQL journal schema: the DuckDB store's tables and views, ported, as recorded migrations.

Same tables, columns and views as :mod:`..duckdb.schema` (see it for what each view answers; both take
the views' statements from :mod:`..views`); only the SQL dialect differs (``json ->> 'key'`` for
attributes, ``percentile_cont`` for quantiles, UTC days from ``AT TIME ZONE``). PostgreSQL adds what a
shared server needs: ``(thread_id, seq)`` is unique (a second guard behind the per-thread counter; its
index also serves a thread's last messages, read backwards), ``spans`` has the primary key ``(trace_id,
span_id)`` that makes writes idempotent per span, and ids compare byte-wise (``COLLATE "C"``). JSON
columns are ``json`` (the text is kept as written, so values round-trip exactly). Every index costs
writes: there are four on the event and span tables, measured in ``bench/bench_stores.py``.

Migrations run once, in order, in one transaction under an advisory lock (many processes may open a
new database at once), recorded in ``schema_migrations(version, name, applied_at)``. Add new ones at
the end; never edit a released one.
"""

from __future__ import annotations

from ..views import Dialect, cost_views, count_failed_model_calls, count_model_calls_once, create_views
from .sandbox import SETUP as _SANDBOX_SETUP

SCHEMA_TABLE = "schema_migrations"
MIGRATION_LOCK = 0x52554E4A  # pg_advisory_xact_lock key ("RUNJ")


def _attr(name: str) -> str:
    """SQL for a span attribute's text value."""
    return f"(attributes ->> '{name}')"


def _int_attr(name: str) -> str:
    """The attribute as BIGINT, 0 when absent or not an integer (DuckDB: TRY_CAST)."""
    value = _attr(name)
    return f"(CASE WHEN {value} ~ '^\\s*-?[0-9]{{1,18}}\\s*$' THEN {value}::BIGINT ELSE 0 END)"


_DIALECT = Dialect(
    _attr,
    _int_attr,
    day="(start_time AT TIME ZONE 'UTC')::DATE",
    p95="percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)",
    meta=lambda key: f"(metadata ->> '{key}')",
    event_day="(created_at AT TIME ZONE 'UTC')::DATE",
)

ID = 'TEXT COLLATE "C"'
"""Ids compare byte-wise (as in DuckDB): index maintenance and look-ups skip the locale's collation."""

_SUMS = """count(*) AS llm_calls, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
        sum(input_tokens + output_tokens) AS total_tokens"""

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "create_tables",
        (
            "CREATE TYPE event_category AS ENUM ('lifecycle', 'trace', 'message')",
            f"""CREATE TABLE runs (
                run_id {ID} PRIMARY KEY, thread_id {ID} NOT NULL, trace_id {ID}, name TEXT,
                status TEXT NOT NULL, started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ,
                duration_ms DOUBLE PRECISION, input_tokens BIGINT, output_tokens BIGINT, total_tokens BIGINT,
                cached_input_tokens BIGINT, reasoning_tokens BIGINT, llm_call_count BIGINT,
                lead_agent_tokens BIGINT, subagent_tokens BIGINT, middleware_tokens BIGINT,
                message_count BIGINT, first_human_message TEXT, last_ai_message TEXT,
                error TEXT, usage_by_caller JSON)""",
            "CREATE INDEX runs_thread ON runs (thread_id, started_at)",
            "CREATE INDEX runs_started ON runs (started_at DESC)",
            f"""CREATE TABLE run_events (
                thread_id {ID} NOT NULL, run_id {ID} NOT NULL, seq BIGINT NOT NULL,
                event_type {ID} NOT NULL, category event_category NOT NULL, content TEXT,
                metadata JSON, created_at TIMESTAMPTZ NOT NULL, trace_id {ID}, span_id {ID})""",
            "CREATE UNIQUE INDEX run_events_thread ON run_events (thread_id, seq)",
            "CREATE INDEX run_events_run ON run_events (run_id, seq)",
            f"""CREATE TABLE spans (
                trace_id {ID} NOT NULL, span_id {ID} NOT NULL, parent_span_id {ID},
                run_id {ID}, name TEXT, kind TEXT, start_time TIMESTAMPTZ, end_time TIMESTAMPTZ,
                duration_ms DOUBLE PRECISION, status_code TEXT, status_message TEXT, attributes JSON,
                events JSON, resource JSON, PRIMARY KEY (trace_id, span_id))""",
            "CREATE INDEX spans_run ON spans (run_id)",
            # Last seq handed out per thread: advanced inside each write transaction; the row lock
            # it takes orders the writers of one thread, on any host, until they commit.
            f"CREATE TABLE thread_seq (thread_id {ID} PRIMARY KEY, last_seq BIGINT NOT NULL)",
        ),
    ),
    (
        2,
        "create_views",
        create_views(_DIALECT),
    ),
    (
        3,
        "views_count_failed_model_calls",
        count_failed_model_calls(_DIALECT),
    ),
    (
        4,
        "views_count_model_calls_once",
        count_model_calls_once(_DIALECT),
    ),
    (
        5,
        "runs_service_name",
        ("ALTER TABLE runs ADD COLUMN service_name TEXT",),
    ),
    (
        6,
        "cost",
        cost_views(_DIALECT),
    ),
    (
        7,  # PostgreSQL only (DuckDB's sql() is sandboxed by DuckDB itself): 5 and 6 are both stores'
        "sql_sandbox_role",
        # the read-only role and function sql() runs statements in (see .sandbox), where the migrating
        # role may create them; the store grants the role SELECT on the journal after each migration
        (_SANDBOX_SETUP,),
    ),
)

LATEST_VERSION = MIGRATIONS[-1][0]
