"""Pure classification of LangChain runs: span names, operations, agents, providers, callers, plumbing.

No OpenTelemetry and no state here: every function takes plain values LangChain hands to callbacks
and returns plain values, so the rules are table-tested in ``tests/test_classify.py``.

Verbosity ``genai`` (the default) keeps every model, tool and retriever run, every root, every
subagent and every LangGraph graph node (a run tagged ``graph:step:N``), and drops a chain run when
any of these holds:

1. it is hidden from tracing by its framework (tag ``langsmith:hidden``);
2. its name is LangChain/LangGraph plumbing: ``RunnableSequence``, ``RunnableParallel<...>``,
   ``RunnableLambda``, ``RunnablePassthrough``, ``RunnableAssign``, ``ChannelWrite<...>``,
   ``Branch<...>``, ``__start__``, ``tools_condition``, prompt templates, output parsers, ...;
3. it is a step *inside* a graph node (tag ``seq:step:N`` under a run tagged ``graph:step:N``):
   the node's own runnable (a duplicate of the node span, also a subgraph wrapped by the node) or
   the node's writers and conditional edges (``tools_condition`` or any routing function).

Children of a dropped run are re-parented to its nearest kept ancestor. Verbosity ``all`` keeps
every run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import semconv as sc

VERBOSITY_GENAI = "genai"
VERBOSITY_ALL = "all"
VERBOSITIES = (VERBOSITY_GENAI, VERBOSITY_ALL)

_PLUMBING_NAMES = frozenset(
    {
        "RunnableSequence",
        "RunnableLambda",
        "RunnablePassthrough",
        "RunnableAssign",
        "RunnablePick",
        "RunnableBinding",
        "RunnableEach",
        "RunnableBranch",
        "RunnableWithFallbacks",
        "RunnableRetry",
        "RunnableCallable",
        "RunnableGenerator",
        "ChannelWrite",
        "ChannelRead",
        "tools_condition",
        "PromptTemplate",
        "ChatPromptTemplate",
        "StrOutputParser",
        "JsonOutputParser",
        "PydanticOutputParser",
        "PydanticToolsParser",
        "JsonOutputToolsParser",
        "JsonOutputKeyToolsParser",
    }
)
_PLUMBING_PREFIXES = ("RunnableParallel", "ChannelWrite<", "ChannelRead<", "Branch<", "__")

_GRAPH_STEP = "graph:step:"
_SEQ_STEP = "seq:step:"
_HIDDEN = "langsmith:hidden"
_AGENT_TAG = "agent"
_AGENT_METADATA_KEYS = ("agent_name", "lc_agent_name")

# ``ls_provider`` values / class-path fragments → ``gen_ai.provider.name`` (semconv well-known values)
_PROVIDERS: Mapping[str, str] = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "google_genai": "gcp.gen_ai",
    "google_vertexai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "google": "gcp.gen_ai",
    "bedrock": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "aws": "aws.bedrock",
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "groq": "groq",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
    "ibm": "ibm.watsonx.ai",
    "watsonx": "ibm.watsonx.ai",
}
UNKNOWN_PROVIDER = "unknown"


def has_graph_step(tags: Sequence[str] | None) -> bool:
    """True for a LangGraph graph node run (tagged ``graph:step:N``)."""
    if tags:
        for tag in tags:
            if tag.startswith(_GRAPH_STEP):
                return True
    return False


def is_plumbing(name: str, tags: Sequence[str] | None, parent_is_graph_node: bool) -> bool:
    """Whether verbosity ``genai`` drops this (non-root, non-subagent) chain run; see module doc."""
    if name in _PLUMBING_NAMES or name.startswith(_PLUMBING_PREFIXES):
        return True
    if tags:
        for tag in tags:
            if tag == _HIDDEN:
                return True
            if parent_is_graph_node and tag.startswith(_SEQ_STEP):
                return True
    return False


def caller_of(tags: Sequence[str] | None, inherited: str) -> str:
    """The run's caller: its last (nearest) ``subagent:``/``middleware:``/``lead_agent`` tag, else
    ``inherited`` (the parent's caller, ``lead_agent`` at a root)."""
    if tags:
        for tag in reversed(tags):
            if (
                tag.startswith(sc.CALLER_SUBAGENT_PREFIX)
                or tag.startswith(sc.CALLER_MIDDLEWARE_PREFIX)
                or tag == sc.CALLER_LEAD_AGENT
            ):
                return tag
    return inherited


def subagent_tags(tags: Sequence[str] | None) -> tuple[str, ...]:
    """The ``subagent:NAME`` tags of a run (empty for almost every run)."""
    if not tags:
        return ()
    return tuple(t for t in tags if t.startswith(sc.CALLER_SUBAGENT_PREFIX))


def new_subagent(tags: Sequence[str] | None, parent_subagent_tags: tuple[str, ...]) -> str | None:
    """The NAME of a ``subagent:NAME`` tag the run carries and its parent does not, else ``None``."""
    for tag in reversed(subagent_tags(tags)):
        if tag not in parent_subagent_tags:
            return tag[len(sc.CALLER_SUBAGENT_PREFIX) :] or None
    return None


def root_agent_name(name: str, tags: Sequence[str] | None, metadata: Mapping[str, Any] | None) -> str | None:
    """The agent name when a root run is an agent (metadata ``agent_name``/``lc_agent_name`` or tag
    ``agent``), else ``None`` (the root is a workflow)."""
    if metadata:
        for key in _AGENT_METADATA_KEYS:
            value = metadata.get(key)
            if isinstance(value, str) and value:
                return value
    if tags and _AGENT_TAG in tags:
        return name
    return None


def run_name(serialized: Mapping[str, Any] | None, kwargs: Mapping[str, Any], default: str) -> str:
    """The run's name: the ``name`` callback kwarg, else the serialized name / class, else ``default``."""
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if serialized:
        name = serialized.get("name")
        if isinstance(name, str) and name:
            return name
        ident = serialized.get("id")
        if isinstance(ident, list) and ident and isinstance(ident[-1], str):
            return ident[-1]
    return default


def provider_of(
    metadata: Mapping[str, Any] | None,
    serialized: Mapping[str, Any] | None,
    invocation_params: Mapping[str, Any] | None,
) -> str:
    """``gen_ai.provider.name`` from ``ls_provider``, the model class path, or the LLM type."""
    if metadata:
        ls_provider = metadata.get("ls_provider")
        if isinstance(ls_provider, str) and ls_provider:
            return _PROVIDERS.get(ls_provider.lower(), ls_provider.lower())
    if serialized:
        ident = serialized.get("id")
        if isinstance(ident, list):
            for part in ident[:-1]:
                if isinstance(part, str):
                    key = part.removeprefix("langchain_")
                    if key in _PROVIDERS:
                        return _PROVIDERS[key]
    if invocation_params:
        llm_type = invocation_params.get("_type")
        if isinstance(llm_type, str) and llm_type:
            key = llm_type.split("-", 1)[0].lower()
            return _PROVIDERS.get(key, llm_type)
    return UNKNOWN_PROVIDER


_MODEL_KEYS = ("model", "model_name", "model_id", "deployment_name", "azure_deployment")


def request_model(
    metadata: Mapping[str, Any] | None, invocation_params: Mapping[str, Any] | None
) -> str | None:
    """``gen_ai.request.model`` from ``ls_model_name`` or the invocation parameters."""
    if metadata:
        value = metadata.get("ls_model_name")
        if isinstance(value, str) and value:
            return value
    if invocation_params:
        for key in _MODEL_KEYS:
            value = invocation_params.get(key)
            if isinstance(value, str) and value:
                return value
    return None


# (attribute, invocation-param keys, ls_* metadata key, accepted types)
_PARAMS: tuple[tuple[str, tuple[str, ...], str | None, tuple[type, ...]], ...] = (
    (sc.GEN_AI_REQUEST_TEMPERATURE, ("temperature",), "ls_temperature", (int, float)),
    (
        sc.GEN_AI_REQUEST_MAX_TOKENS,
        ("max_tokens", "max_completion_tokens", "max_output_tokens", "max_tokens_to_sample"),
        "ls_max_tokens",
        (int,),
    ),
    (sc.GEN_AI_REQUEST_TOP_P, ("top_p",), None, (int, float)),
    (sc.GEN_AI_REQUEST_TOP_K, ("top_k",), None, (int, float)),
    (sc.GEN_AI_REQUEST_FREQUENCY_PENALTY, ("frequency_penalty",), None, (int, float)),
    (sc.GEN_AI_REQUEST_PRESENCE_PENALTY, ("presence_penalty",), None, (int, float)),
    (sc.GEN_AI_REQUEST_SEED, ("seed",), None, (int,)),
)


def request_params(
    attributes: dict[str, Any],
    metadata: Mapping[str, Any] | None,
    invocation_params: Mapping[str, Any] | None,
) -> bool:
    """Add request parameters to ``attributes``; return whether the call streams."""
    params = invocation_params or {}
    meta = metadata or {}
    for attr, keys, ls_key, types in _PARAMS:
        candidates = [params.get(key) for key in keys]
        if ls_key is not None:
            candidates.append(meta.get(ls_key))
        for value in candidates:
            if isinstance(value, types) and not isinstance(value, bool):
                attributes[attr] = value
                break
    stop = params.get("stop") or meta.get("ls_stop")
    if isinstance(stop, str):
        attributes[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = (stop,)
    elif isinstance(stop, (list, tuple)) and stop and all(isinstance(s, str) for s in stop):
        attributes[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(stop)
    return params.get("stream") is True or params.get("streaming") is True


_CONTROL_FLOW = frozenset({"GraphBubbleUp", "GraphInterrupt", "NodeInterrupt", "ParentCommand"})
_INTERRUPTS = frozenset({"GraphInterrupt", "NodeInterrupt"})


def control_flow(exc: BaseException) -> tuple[bool, bool]:
    """``(is_control_flow, is_interrupt)`` for an exception, matched by class names in its MRO so
    LangGraph need not be imported."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & _CONTROL_FLOW), bool(names & _INTERRUPTS)


def error_type(exc: BaseException) -> str:
    """``error.type`` of an exception: its qualified class name."""
    return type(exc).__qualname__
