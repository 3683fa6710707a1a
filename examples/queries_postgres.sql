-- Useful queries over the run journal (PostgreSQL store): the twin of examples/queries.sql.
--   psql "postgresql://user@host:5432/db" -f examples/queries_postgres.sql
-- Tables: runs, run_events, spans. Views: messages, tokens_by_model, tokens_by_caller, tokens_per_day,
-- slowest_tools, error_runs. JSON columns are `json`: `metadata->>'key'`, `attributes->>'gen_ai.x'`.

-- 1. The latest runs with their token totals.
SELECT run_id, thread_id, name, status, started_at, round(duration_ms) AS ms, llm_call_count, total_tokens
FROM runs ORDER BY started_at DESC LIMIT 20;

-- 2. Tokens per model, and per caller (lead agent vs subagents vs middleware).
SELECT * FROM tokens_by_model;
SELECT * FROM tokens_by_caller;

-- 3. Daily token usage per model (UTC days).
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

-- 8. The last 50 messages of a thread (what a chat UI loads; served by an index).
SELECT * FROM (
    SELECT seq, event_type, content FROM run_events
    WHERE thread_id = 'quickstart' AND category = 'message' ORDER BY seq DESC LIMIT 50
) AS last ORDER BY seq;

-- 9. Model calls per run and caller, from the spans.
SELECT run_id, attributes->>'runjournal.caller' AS caller, count(*) AS calls,
       sum((attributes->>'gen_ai.usage.input_tokens')::bigint) AS input_tokens
FROM spans WHERE attributes->>'gen_ai.operation.name' = 'chat'
GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 50;

-- 10. Which hosts / services wrote the most runs today (resource attributes of the root spans).
SELECT resource->>'service.name' AS service, resource->>'host.name' AS host, count(DISTINCT run_id) AS runs
FROM spans WHERE parent_span_id IS NULL AND start_time >= date_trunc('day', now())
GROUP BY 1, 2 ORDER BY runs DESC;
