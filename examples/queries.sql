-- Useful queries over the run journal (DuckDB store).
--   duckdb runjournal.duckdb < examples/queries.sql          (or paste one into `duckdb runjournal.duckdb`)
-- Tables: runs, run_events, spans. Views: messages, tokens_by_model, tokens_by_caller, tokens_per_day,
-- slowest_tools, error_runs. The CLI (`otel-runjournal ...`) answers the common ones too.

-- 1. The latest runs with their token totals.
SELECT run_id, thread_id, name, status, started_at, round(duration_ms) AS ms, llm_call_count, total_tokens
FROM runs ORDER BY started_at DESC LIMIT 20;

-- 2. Tokens per model, and per caller (lead agent vs subagents vs middleware).
SELECT * FROM tokens_by_model;
SELECT * FROM tokens_by_caller;

-- 3. Daily token usage per model.
SELECT * FROM tokens_per_day;

-- 4. Failed runs and why.
SELECT * FROM error_runs LIMIT 20;

-- 5. Tool calls that failed, with the error message.
SELECT run_id, seq, metadata->>'tool_name' AS tool, metadata->>'error_type' AS error_type, content AS error
FROM run_events WHERE event_type = 'tool_error' ORDER BY created_at DESC LIMIT 20;

-- 6. The slowest tools (p95).
SELECT * FROM slowest_tools;

-- 7. A thread's conversation in order (replace the thread id).
SELECT seq, run_id, event_type, content FROM messages WHERE thread_id = 'quickstart' ORDER BY seq;

-- 8. One run's timeline: every event with its latency and token usage (latest run).
SELECT seq, event_type, category, metadata->>'caller' AS caller,
       TRY_CAST(metadata->>'latency_ms' AS DOUBLE) AS latency_ms,
       TRY_CAST(metadata->'usage'->>'total_tokens' AS BIGINT) AS tokens
FROM run_events
WHERE run_id = (SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1)
ORDER BY seq;

-- 9. Model calls slower than a second, with their model and caller.
SELECT run_id, metadata->>'model' AS model, metadata->>'caller' AS caller,
       TRY_CAST(metadata->>'latency_ms' AS DOUBLE) AS latency_ms
FROM run_events WHERE event_type = 'llm_end' AND TRY_CAST(metadata->>'latency_ms' AS DOUBLE) > 1000
ORDER BY latency_ms DESC;

-- 10. Rebuild a trace tree from the spans table (no Jaeger needed): depth-first with indentation.
WITH RECURSIVE tree AS (
    SELECT span_id, parent_span_id, name, start_time, duration_ms, status_code, 0 AS depth,
           [start_time] AS path
    FROM spans
    WHERE parent_span_id IS NULL
      AND run_id = (SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1)
    UNION ALL
    SELECT s.span_id, s.parent_span_id, s.name, s.start_time, s.duration_ms, s.status_code, t.depth + 1,
           list_append(t.path, s.start_time)
    FROM spans s JOIN tree t ON s.parent_span_id = t.span_id
)
SELECT repeat('  ', depth) || name AS span, round(duration_ms, 1) AS ms, status_code
FROM tree ORDER BY path;

-- 11. Cache effectiveness per model: share of input tokens served from the provider's cache.
SELECT model, input_tokens, cached_input_tokens,
       round(100.0 * cached_input_tokens / nullif(input_tokens, 0), 1) AS cached_pct
FROM tokens_by_model;
