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

Callers (who spent the tokens), nearest rule first:

1. a ``subagent:NAME`` / ``middleware:NAME`` / ``lead_agent`` tag on the run itself;
2. a ``subagent:NAME`` / ``middleware:NAME`` tag on an ancestor (tags always beat inference; an
   ancestor's ``lead_agent`` tag is the default and does not stop it);
3. a nested agent starting here (:func:`nested_agent`): ``subagent:NAME`` for it and everything under
   it, its own middleware included (the subagent's bill; only a further nested agent is nearer);
4. a LangChain 1.x middleware making this call: the graph node ``<Middleware>.before_model`` (and
   ``after_model``, ``before_agent``, ``after_agent``: :func:`middleware_of_node`), the middleware's own
   ``lc_source`` marker (:func:`middleware_of_metadata`), or, for a model call inside the agent's own
   model or tools node, a ``wrap_model_call`` / ``wrap_tool_call`` hook on the call stack
   (:mod:`.hooks`): ``middleware:<Middleware>``;
5. else the parent's caller (``lead_agent`` at a root).
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
CREATE_AGENT = "langchain_create_agent"  # metadata ``ls_integration`` of a LangChain 1.x create_agent graph
DEFAULT_AGENT_NAME = "agent"
"""The name of an agent that has none (``create_agent`` without ``name=``)."""
_DEFAULT_GRAPH_NAME = "LangGraph"  # what LangGraph calls a graph that was given no name
_MIDDLEWARE_NODE_HOOKS = ("before_model", "after_model", "before_agent", "after_agent")
MIDDLEWARE_NODE_SUFFIXES = tuple(f".{hook}" for hook in _MIDDLEWARE_NODE_HOOKS)
_LC_SOURCES: Mapping[str, str] = {  # LangChain's built-in middleware mark their model calls so
    "summarization": "SummarizationMiddleware",
    "tool_selection": "LLMToolSelectorMiddleware",
    "tool_emulation": "LLMToolEmulator",
}
AGENT_NODES = frozenset({"model", "tools"})
"""create_agent's own nodes: a model call there is the agent's, unless a wrap hook makes it."""

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


def tag_caller(tags: Sequence[str] | None) -> str | None:
    """The run's own caller tag: its last (nearest) ``subagent:``/``middleware:``/``lead_agent`` tag."""
    if tags:
        for tag in reversed(tags):
            if (
                tag.startswith(sc.CALLER_SUBAGENT_PREFIX)
                or tag.startswith(sc.CALLER_MIDDLEWARE_PREFIX)
                or tag == sc.CALLER_LEAD_AGENT
            ):
                return tag
    return None


def caller_of(tags: Sequence[str] | None, inherited: str) -> str:
    """The run's caller tag (:func:`tag_caller`), else ``inherited`` (the parent's caller)."""
    return tag_caller(tags) or inherited


def blocks_inference(caller: str, tagged: bool) -> bool:
    """Whether an ancestor's tag decides for this run (rule 2): a ``subagent:``/``middleware:`` tag."""
    return tagged and caller != sc.CALLER_LEAD_AGENT


def middleware_of_node(node: Any) -> str | None:
    """``Middleware`` of a create_agent graph node named ``<Middleware>.<hook>``, else ``None``."""
    if isinstance(node, str) and "." in node:
        name, _, hook = node.rpartition(".")
        if hook in _MIDDLEWARE_NODE_HOOKS and name:
            return name
    return None


def middleware_of_metadata(metadata: Mapping[str, Any] | None) -> str | None:
    """The middleware a built-in ``lc_source`` marker names (``summarization`` → SummarizationMiddleware)."""
    if metadata:
        source = metadata.get("lc_source")
        if isinstance(source, str) and source:
            return _LC_SOURCES.get(source)
    return None


def agent_name_of(metadata: Mapping[str, Any] | None) -> str | None:
    """The LangChain 1.x agent a run belongs to (metadata ``lc_agent_name``), if named."""
    if metadata:
        value = metadata.get("lc_agent_name")
        if isinstance(value, str) and value:
            return value
    return None


def nested_agent(
    name: str,
    tags: Sequence[str] | None,
    metadata: Mapping[str, Any] | None,
    parent_agent: str | None,
    parent_tool: str | None,
) -> str | None:
    """The name of an agent graph that starts with this (non-root) chain run, else ``None``.

    A named LangChain 1.x agent carries its name in ``lc_agent_name``; the run where that name first
    differs from the enclosing agent's (``parent_agent``) and which bears it as its own name is the
    nested agent's graph (under a tool, or as a node of another agent's graph). An agent is nested
    only under an enclosing agent or a tool: the first agent of a plain workflow (no agent above it)
    is the lead agent, not a subagent. An unnamed create_agent graph invoked directly in a tool's body
    (``parent_tool``) is named after that tool.
    """
    agent = agent_name_of(metadata)
    if (
        agent is not None
        and agent != parent_agent
        and name == agent
        and (parent_agent is not None or parent_tool is not None)
    ):
        return agent
    if (
        parent_tool is not None
        and name == _DEFAULT_GRAPH_NAME
        and not has_graph_step(tags)
        and metadata
        and metadata.get("ls_integration") == CREATE_AGENT
    ):
        return parent_tool
    return None


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
    """The agent name when a root run is an agent (metadata ``agent_name``/``lc_agent_name``, a
    LangChain 1.x ``create_agent`` graph, or tag ``agent``), else ``None`` (the root is a workflow)."""
    if metadata:
        for key in _AGENT_METADATA_KEYS:
            value = metadata.get(key)
            if isinstance(value, str) and value:
                return value
        if metadata.get("ls_integration") == CREATE_AGENT:
            return name if name and name != _DEFAULT_GRAPH_NAME else DEFAULT_AGENT_NAME
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


def resume_value(inputs: Any) -> tuple[bool, Any]:
    """``(True, value)`` when a run's input is LangGraph's ``Command(resume=value)``, else ``(False, None)``.

    Read by shape (a ``Command`` with a ``resume``), so LangGraph need not be installed."""
    if type(inputs).__name__ == "Command":
        value = getattr(inputs, "resume", None)
        if value is not None:
            return True, value
    return False, None
