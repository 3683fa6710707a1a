"""The DuckDB journal schema: named, recorded migrations and the documented SQL views.

Each migration runs once, in order, inside the writer's transaction, and is recorded in
``schema_migrations(version, name, applied_at)``. Add new ones at the end; never edit a released one.

Views (one line each to query, e.g. ``SELECT * FROM tokens_by_model``):

- ``messages`` — message rows (human_message, ai_message, summary) in thread order.
``llm_calls`` counts every model call, failed ones included (migration 3), as ``runs.llm_call_count`` does.

- ``tokens_by_model(model, llm_calls, input_tokens, output_tokens, total_tokens, cached_input_tokens,
  reasoning_tokens)`` — from chat/LLM spans' ``gen_ai.usage.*``; model = response model, else request model.
- ``tokens_by_caller(caller, llm_calls, input_tokens, output_tokens, total_tokens)`` — by
  ``runjournal.caller`` (``lead_agent``, ``subagent:NAME``, ``middleware:NAME``; foreign spans: lead_agent).
- ``tokens_per_day(day, model, llm_calls, input_tokens, output_tokens, total_tokens)`` — UTC days.
- ``slowest_tools(tool_name, calls, errors, avg_ms, p95_ms, max_ms)`` — ``execute_tool`` spans, slowest first.
- ``error_runs`` — runs with status ``error``, most recent first.
"""

from __future__ import annotations

from ..views import Dialect, cost_views, count_failed_model_calls, count_model_calls_once, create_views

SCHEMA_TABLE = "schema_migrations"


def _attr(name: str) -> str:
    """SQL for a span attribute's text value (attribute names contain dots, so quote the key)."""
    return f"""attributes->>'$."{name}"'"""


def _int_attr(name: str) -> str:
    return f"coalesce(TRY_CAST({_attr(name)} AS BIGINT), 0)"


_DIALECT = Dialect(
    _attr,
    _int_attr,
    day="CAST(start_time AS DATE)",
    p95="quantile_cont(duration_ms, 0.95)",
    meta=lambda key: f"json_extract_string(metadata, '$.{key}')",
    event_day="CAST(created_at AS DATE)",
)

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "create_tables",
        (
            "CREATE TYPE event_category AS ENUM ('lifecycle', 'trace', 'message')",
            """CREATE TABLE runs (
                run_id VARCHAR PRIMARY KEY, thread_id VARCHAR NOT NULL, trace_id VARCHAR, name VARCHAR,
                status VARCHAR NOT NULL, started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ, duration_ms DOUBLE,
                input_tokens BIGINT, output_tokens BIGINT, total_tokens BIGINT,
                cached_input_tokens BIGINT, reasoning_tokens BIGINT, llm_call_count BIGINT,
                lead_agent_tokens BIGINT, subagent_tokens BIGINT, middleware_tokens BIGINT,
                message_count BIGINT, first_human_message VARCHAR, last_ai_message VARCHAR,
                error VARCHAR, usage_by_caller JSON)""",
            """CREATE TABLE run_events (
                thread_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, seq BIGINT NOT NULL,
                event_type VARCHAR NOT NULL, category event_category NOT NULL, content VARCHAR,
                metadata JSON, created_at TIMESTAMPTZ NOT NULL, trace_id VARCHAR, span_id VARCHAR)""",
            # Point lookups for the two hot queries (a thread's messages, a run's events): the
            # readers fetch (rowid, seq) through these, then the page's rows by rowid.
            "CREATE INDEX run_events_thread ON run_events (thread_id)",
            "CREATE INDEX run_events_run ON run_events (run_id)",
            """CREATE TABLE spans (
                trace_id VARCHAR NOT NULL, span_id VARCHAR NOT NULL, parent_span_id VARCHAR,
                run_id VARCHAR, name VARCHAR, kind VARCHAR, start_time TIMESTAMPTZ, end_time TIMESTAMPTZ,
                duration_ms DOUBLE, status_code VARCHAR, status_message VARCHAR, attributes JSON,
                events JSON, resource JSON)""",
            # Last seq handed out per thread: never decreases, so seq is never reused (not after a
            # delete of events, not after a restart, not across writer processes).
            "CREATE TABLE thread_seq (thread_id VARCHAR PRIMARY KEY, last_seq BIGINT NOT NULL)",
        ),
    ),
    (
        2,
        "create_views",
        create_views(_DIALECT),
    ),
)

MIGRATIONS += (
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
)

MIGRATIONS += (
    (
        5,
        "runs_service_name",
        ("ALTER TABLE runs ADD COLUMN service_name VARCHAR",),
    ),
)

MIGRATIONS += (
    (
        6,
        "cost",
        cost_views(_DIALECT),
    ),
)

LATEST_VERSION = MIGRATIONS[-1][0]
