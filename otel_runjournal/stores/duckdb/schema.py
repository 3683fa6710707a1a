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

from ... import semconv as sc

SCHEMA_TABLE = "schema_migrations"


def _attr(name: str) -> str:
    """SQL for a span attribute's text value (attribute names contain dots, so quote the key)."""
    return f"""attributes->>'$."{name}"'"""


def _int_attr(name: str) -> str:
    return f"coalesce(TRY_CAST({_attr(name)} AS BIGINT), 0)"


_LLM_SPANS = f"""
    SELECT
        coalesce({_attr(sc.GEN_AI_RESPONSE_MODEL)}, {_attr(sc.GEN_AI_REQUEST_MODEL)}, 'unknown') AS model,
        coalesce({_attr(sc.RJ_CALLER)}, '{sc.CALLER_LEAD_AGENT}') AS caller,
        CAST(start_time AS DATE) AS day,
        {_int_attr(sc.GEN_AI_USAGE_INPUT_TOKENS)} AS input_tokens,
        {_int_attr(sc.GEN_AI_USAGE_OUTPUT_TOKENS)} AS output_tokens,
        {_int_attr(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)} AS cached_input_tokens,
        {_int_attr(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS)} AS reasoning_tokens
    FROM spans
    WHERE {_attr(sc.GEN_AI_USAGE_INPUT_TOKENS)} IS NOT NULL
       OR {_attr(sc.GEN_AI_USAGE_OUTPUT_TOKENS)} IS NOT NULL
"""

_MODEL_CALL_SPANS = (
    _LLM_SPANS
    + f"""
       OR {_attr(sc.GEN_AI_OPERATION_NAME)} IN ('chat', 'text_completion', 'generate_content')
"""
)
"""Model-call spans, failed ones (no usage reported) included: a failed call is a call, as
``runs.llm_call_count`` counts it; it adds no tokens."""

_SUMS = """count(*) AS llm_calls, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
        sum(input_tokens + output_tokens) AS total_tokens"""

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
        (
            """CREATE VIEW messages AS
               SELECT thread_id, seq, run_id, event_type, content, metadata, created_at
               FROM run_events WHERE category = 'message' ORDER BY thread_id, seq""",
            f"""CREATE VIEW tokens_by_model AS
               SELECT model, {_SUMS}, sum(cached_input_tokens) AS cached_input_tokens,
                      sum(reasoning_tokens) AS reasoning_tokens
               FROM ({_LLM_SPANS}) GROUP BY model ORDER BY total_tokens DESC""",
            f"""CREATE VIEW tokens_by_caller AS
               SELECT caller, {_SUMS} FROM ({_LLM_SPANS}) GROUP BY caller ORDER BY total_tokens DESC""",
            f"""CREATE VIEW tokens_per_day AS
               SELECT day, model, {_SUMS} FROM ({_LLM_SPANS}) GROUP BY day, model ORDER BY day, model""",
            f"""CREATE VIEW slowest_tools AS
               SELECT coalesce({_attr(sc.GEN_AI_TOOL_NAME)}, name) AS tool_name, count(*) AS calls,
                      count(*) FILTER (WHERE status_code = 'ERROR') AS errors,
                      avg(duration_ms) AS avg_ms, quantile_cont(duration_ms, 0.95) AS p95_ms,
                      max(duration_ms) AS max_ms
               FROM spans WHERE {_attr(sc.GEN_AI_OPERATION_NAME)} = 'execute_tool'
               GROUP BY 1 ORDER BY p95_ms DESC""",
            """CREATE VIEW error_runs AS
               SELECT run_id, thread_id, name, started_at, duration_ms, error
               FROM runs WHERE status = 'error' ORDER BY started_at DESC""",
        ),
    ),
)

MIGRATIONS += (
    (
        3,
        "views_count_failed_model_calls",
        (
            f"""CREATE OR REPLACE VIEW tokens_by_model AS
               SELECT model, {_SUMS}, sum(cached_input_tokens) AS cached_input_tokens,
                      sum(reasoning_tokens) AS reasoning_tokens
               FROM ({_MODEL_CALL_SPANS}) GROUP BY model ORDER BY total_tokens DESC""",
            f"""CREATE OR REPLACE VIEW tokens_by_caller AS
               SELECT caller, {_SUMS} FROM ({_MODEL_CALL_SPANS})
               GROUP BY caller ORDER BY total_tokens DESC""",
            f"""CREATE OR REPLACE VIEW tokens_per_day AS
               SELECT day, model, {_SUMS} FROM ({_MODEL_CALL_SPANS})
               GROUP BY day, model ORDER BY day, model""",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1][0]
