"""The journal's documented SQL views, written once for both SQL stores (DuckDB, PostgreSQL).

Each store's schema supplies a :class:`Dialect` (how to read a span attribute, the UTC day, the
95th percentile) and takes the views' statements for its migrations 2 (create the views) and 3
(the token views count failed model calls too). What the views answer: :mod:`.duckdb.schema`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import semconv as sc


@dataclass(frozen=True)
class Dialect:
    """The SQL that differs between the stores."""

    attr: Callable[[str], str]
    """A span attribute's text value (NULL when absent)."""
    int_attr: Callable[[str], str]
    """A span attribute as BIGINT, 0 when absent or not an integer."""
    day: str
    """The UTC day of ``start_time``."""
    p95: str
    """The 95th percentile of ``duration_ms``."""
    meta: Callable[[str], str]
    """A ``run_events.metadata`` key's text value (NULL when absent or JSON null)."""
    event_day: str
    """The UTC day of ``created_at`` (``run_events``)."""


_SUMS = """count(*) AS llm_calls, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
        sum(input_tokens + output_tokens) AS total_tokens"""


def _usage_spans(d: Dialect, extra: str = "") -> str:
    """Spans that report token usage, one row each: model, caller, day and the token counts."""
    return f"""
    SELECT
        coalesce({d.attr(sc.GEN_AI_RESPONSE_MODEL)}, {d.attr(sc.GEN_AI_REQUEST_MODEL)}, 'unknown') AS model,
        coalesce({d.attr(sc.RJ_CALLER)}, '{sc.CALLER_LEAD_AGENT}') AS caller,
        {d.day} AS day,
        {d.int_attr(sc.GEN_AI_USAGE_INPUT_TOKENS)} AS input_tokens,
        {d.int_attr(sc.GEN_AI_USAGE_OUTPUT_TOKENS)} AS output_tokens,
        {d.int_attr(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)} AS cached_input_tokens,
        {d.int_attr(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS)} AS reasoning_tokens{extra}
    FROM spans
    WHERE {d.attr(sc.GEN_AI_USAGE_INPUT_TOKENS)} IS NOT NULL
       OR {d.attr(sc.GEN_AI_USAGE_OUTPUT_TOKENS)} IS NOT NULL
"""


def _model_call_spans(d: Dialect, extra: str = "") -> str:
    """Model-call spans, failed ones (no usage reported) included: a failed call is a call, as
    ``runs.llm_call_count`` counts it; it adds no tokens."""
    return (
        _usage_spans(d, extra)
        + f"""
       OR {d.attr(sc.GEN_AI_OPERATION_NAME)} IN ('chat', 'text_completion', 'generate_content')
"""
    )


def _counted_model_call_spans(d: Dialect) -> str:
    """:func:`_model_call_spans` but foreign GenAI spans reporting a call one of ours owns: the journal
    marks those ``runjournal.duplicate`` (a model call counts once)."""
    return f"""
    SELECT model, caller, day, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens
    FROM ({_model_call_spans(d, f", {d.attr(sc.RJ_DUPLICATE)} IS NOT NULL AS duplicate")}) AS calls
    WHERE NOT duplicate
"""


def _token_views(create: str, source: str) -> tuple[str, ...]:
    return (
        f"""{create} tokens_by_model AS
               SELECT model, {_SUMS}, sum(cached_input_tokens) AS cached_input_tokens,
                      sum(reasoning_tokens) AS reasoning_tokens
               FROM ({source}) AS llm GROUP BY model ORDER BY total_tokens DESC""",
        f"""{create} tokens_by_caller AS
               SELECT caller, {_SUMS} FROM ({source}) AS llm GROUP BY caller
               ORDER BY total_tokens DESC""",
        f"""{create} tokens_per_day AS
               SELECT day, model, {_SUMS} FROM ({source}) AS llm GROUP BY day, model
               ORDER BY day, model""",
    )


def create_views(d: Dialect) -> tuple[str, ...]:
    """Migration 2: ``messages``, the token views (over spans reporting usage), ``slowest_tools``,
    ``error_runs``."""
    return (
        """CREATE VIEW messages AS
               SELECT thread_id, seq, run_id, event_type, content, metadata, created_at
               FROM run_events WHERE category = 'message' ORDER BY thread_id, seq""",
        *_token_views("CREATE VIEW", _usage_spans(d)),
        f"""CREATE VIEW slowest_tools AS
               SELECT coalesce({d.attr(sc.GEN_AI_TOOL_NAME)}, name) AS tool_name, count(*) AS calls,
                      count(*) FILTER (WHERE status_code = 'ERROR') AS errors,
                      avg(duration_ms) AS avg_ms, {d.p95} AS p95_ms,
                      max(duration_ms) AS max_ms
               FROM spans WHERE {d.attr(sc.GEN_AI_OPERATION_NAME)} = 'execute_tool'
               GROUP BY 1 ORDER BY p95_ms DESC""",
        """CREATE VIEW error_runs AS
               SELECT run_id, thread_id, name, started_at, duration_ms, error
               FROM runs WHERE status = 'error' ORDER BY started_at DESC""",
    )


def count_failed_model_calls(d: Dialect) -> tuple[str, ...]:
    """Migration 3: the token views over every model call, failed ones included (``llm_calls``)."""
    return _token_views("CREATE OR REPLACE VIEW", _model_call_spans(d))


def count_model_calls_once(d: Dialect) -> tuple[str, ...]:
    """Migration 4: the token views without foreign spans that duplicate one of our model calls."""
    return _token_views("CREATE OR REPLACE VIEW", _counted_model_call_spans(d))


def _model_call_costs(d: Dialect) -> str:
    """One row per model call the journal recorded (``llm_end`` / ``llm_error``): model, caller, UTC
    day, tokens and cost (NULL: unpriced). Costs live on the events, not the spans: the journal prices
    calls (``reprice`` updates them), the tracing side does not."""
    return f"""
    SELECT
        coalesce({d.meta("model")}, {d.meta("model_name")}, 'unknown') AS model,
        coalesce({d.meta("caller")}, '{sc.CALLER_LEAD_AGENT}') AS caller,
        {d.event_day} AS day,
        CAST({d.meta("cost_usd")} AS DOUBLE PRECISION) AS cost_usd
    FROM run_events
    WHERE event_type IN ('llm_end', 'llm_error')
"""


_COST_SUMS = """count(*) AS llm_calls, count(cost_usd) AS priced_calls,
        count(*) - count(cost_usd) AS unpriced_calls, sum(cost_usd) AS cost_usd,
        sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (), 0) AS share"""


def cost_views(d: Dialect) -> tuple[str, ...]:
    """Migration 6: ``runs`` gains ``cost_usd`` (NULL when no call was priced, never 0 for unknown),
    ``unpriced_call_count`` and ``complete`` (false: some of the run's spans never arrived; NULL:
    unknown, e.g. other instrumentations' runs); views ``cost_by_model``, ``cost_by_caller``,
    ``cost_per_day`` (share: of the priced cost in the view; unpriced calls counted, never at 0)."""
    source = _model_call_costs(d)
    return (
        "ALTER TABLE runs ADD COLUMN cost_usd DOUBLE PRECISION",
        "ALTER TABLE runs ADD COLUMN unpriced_call_count BIGINT DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN complete BOOLEAN",
        f"""CREATE VIEW cost_by_model AS
               SELECT model, {_COST_SUMS} FROM ({source}) AS llm GROUP BY model
               ORDER BY cost_usd DESC NULLS LAST, model""",
        f"""CREATE VIEW cost_by_caller AS
               SELECT caller, {_COST_SUMS} FROM ({source}) AS llm GROUP BY caller
               ORDER BY cost_usd DESC NULLS LAST, caller""",
        f"""CREATE VIEW cost_per_day AS
               SELECT day, model, {_COST_SUMS} FROM ({source}) AS llm GROUP BY day, model
               ORDER BY day, model""",
    )
