"""Attribute, span and metric names: the one place they are spelled.

Implements the OpenTelemetry GenAI semantic conventions as they stand in their own repository
(``open-telemetry/semantic-conventions-genai``, which has no release yet; checked at commit
``002c8a6``), on top of core semconv **v1.44.0** (``opentelemetry-semantic-conventions`` 0.66b2).
Cache writes are ``gen_ai.usage.cache_creation.input_tokens`` (the short-lived ``cache_write``
spelling of semconv main, and older names other instrumentations use, are still read from foreign
spans). In-process agents are ``invoke_agent`` INTERNAL spans, workflows ``invoke_workflow
{gen_ai.workflow.name}`` INTERNAL spans. ``runjournal.*`` names are this library's own.
"""

from __future__ import annotations

SEMCONV_VERSION = "1.44.0"
GENAI_CONVENTIONS_REVISION = "open-telemetry/semantic-conventions-genai@002c8a6"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"
INSTRUMENTATION_NAME = "otel_runjournal"

# --- gen_ai.* span attributes -------------------------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_WORKFLOW_NAME = "gen_ai.workflow.name"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K = "gen_ai.request.top_k"
GEN_AI_REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
GEN_AI_DATA_SOURCE_ID = "gen_ai.data_source.id"
# content attributes (only on spans when the user opts in)
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
CONTENT_ATTRIBUTES = (
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_RESULT,
)
# names of earlier revisions / other instrumentations that the exporter also reads
LEGACY_CACHE_WRITE_ATTRIBUTES = (
    "gen_ai.usage.cache_write.input_tokens",  # semconv main for a while before the GenAI repository
    "gen_ai.usage.cache_creation_input_tokens",
)
LEGACY_CACHE_READ_ATTRIBUTES = ("gen_ai.usage.cache_read_input_tokens",)
LEGACY_INPUT_TOKENS_ATTRIBUTES = ("gen_ai.usage.prompt_tokens",)
LEGACY_OUTPUT_TOKENS_ATTRIBUTES = ("gen_ai.usage.completion_tokens",)
LEGACY_PROVIDER_ATTRIBUTES = ("gen_ai.system",)
# OpenLLMetry (traceloop) span markers the exporter reads to classify foreign spans
TRACELOOP_SPAN_KIND = "traceloop.span.kind"  # workflow | agent | task | tool
LLM_REQUEST_TYPE = "llm.request.type"  # chat | completion | embedding

ERROR_TYPE = "error.type"

# --- gen_ai.operation.name values ---------------------------------------------------------------
OP_CHAT = "chat"
OP_TEXT_COMPLETION = "text_completion"
OP_EMBEDDINGS = "embeddings"
OP_RETRIEVAL = "retrieval"
OP_EXECUTE_TOOL = "execute_tool"
OP_INVOKE_AGENT = "invoke_agent"
OP_INVOKE_WORKFLOW = "invoke_workflow"
KNOWN_OPERATIONS = frozenset(
    {
        OP_CHAT,
        OP_TEXT_COMPLETION,
        OP_EMBEDDINGS,
        OP_RETRIEVAL,
        OP_EXECUTE_TOOL,
        OP_INVOKE_AGENT,
        OP_INVOKE_WORKFLOW,
    }
)
"""The operations whose name starts a span name (``chat gpt-4o``, ``invoke_agent boss``)."""

# --- runjournal.* attributes (this library's own) -----------------------------------------------
RJ_RUN_ID = "runjournal.run_id"
RJ_THREAD_ID = "runjournal.thread_id"
RJ_CALLER = "runjournal.caller"
RJ_RUN_TYPE = "runjournal.run_type"
RJ_IS_ROOT = "runjournal.is_root"  # true on the span of the run's root (the exporter's "run ended" signal)
RJ_INTERRUPTED = "runjournal.interrupted"
RJ_RESUMED = "runjournal.resumed"  # the root resumes an interrupted run (LangGraph Command(resume=...))
RJ_ABANDONED = "runjournal.abandoned"
# set by the journal (never by the handler) on the spans row of another instrumentation's GenAI span
# that reports a model call one of our spans owns: it stays in the table but counts nothing
RJ_DUPLICATE = "runjournal.duplicate"
RJ_RETRIEVER_DOCUMENT_COUNT = "runjournal.retriever.document_count"
RJ_LLM_CALL_COUNT = "runjournal.llm_call_count"
RJ_SPAN_COUNT = "runjournal.span_count"  # on the root: spans the run made (the journal checks all arrived)
RJ_USAGE_INPUT_TOKENS = "runjournal.usage.input_tokens"
RJ_USAGE_OUTPUT_TOKENS = "runjournal.usage.output_tokens"
RJ_USAGE_TOTAL_TOKENS = "runjournal.usage.total_tokens"
RJ_USAGE_CACHED_INPUT_TOKENS = "runjournal.usage.cached_input_tokens"
RJ_USAGE_REASONING_TOKENS = "runjournal.usage.reasoning_tokens"
RJ_USAGE_LEAD_AGENT_TOKENS = "runjournal.usage.lead_agent_tokens"
RJ_USAGE_SUBAGENT_TOKENS = "runjournal.usage.subagent_tokens"
RJ_USAGE_MIDDLEWARE_TOKENS = "runjournal.usage.middleware_tokens"
# JSON object: caller ("lead_agent", "subagent:NAME", "middleware:NAME") -> total tokens
RJ_USAGE_BY_CALLER = "runjournal.usage.by_caller"

# caller tag values
CALLER_LEAD_AGENT = "lead_agent"
CALLER_SUBAGENT_PREFIX = "subagent:"
CALLER_MIDDLEWARE_PREFIX = "middleware:"

# span event names the handler emits and the exporter reads
EVENT_EXCEPTION = "exception"
EVENT_CUSTOM_PREFIX = "runjournal.custom."  # span event "runjournal.custom.<name>"
# JSON data of a custom event (on the span event only with capture_content)
RJ_CUSTOM_DATA = "runjournal.custom.data"

# --- metrics ------------------------------------------------------------------------------------
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
