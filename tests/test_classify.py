"""Table tests of the pure run classification rules."""

from __future__ import annotations

from typing import Any

import pytest

from otel_runjournal import semconv as sc
from otel_runjournal.tracing import classify as cl


@pytest.mark.parametrize(
    ("name", "tags", "parent_is_graph_node", "dropped"),
    [
        ("RunnableSequence", [], False, True),
        ("RunnableParallel<a,b>", None, False, True),
        ("ChannelWrite<agent>", [], False, True),
        ("Branch<agent>", [], False, True),
        ("__start__", ["graph:step:0"], False, True),
        ("tools_condition", ["seq:step:3"], True, True),
        ("route_after_agent", ["seq:step:2"], True, True),  # a user's conditional edge inside a node
        ("agent", ["seq:step:1"], True, True),  # the node's own runnable duplicates the node
        ("research_assistant", ["seq:step:1"], True, True),  # a subgraph wrapped by a node
        ("anything", ["langsmith:hidden"], False, True),
        ("ChatPromptTemplate", ["seq:step:1"], False, True),
        ("agent", ["graph:step:1"], False, False),  # a graph node is kept
        ("my_step", ["seq:step:2"], False, False),  # a step of a user's sequence outside a graph
        ("summarize", None, False, False),
    ],
)
def test_plumbing_rule(name: str, tags: list[str] | None, parent_is_graph_node: bool, dropped: bool) -> None:
    """Which chain runs verbosity 'genai' drops (see the _classify module doc)."""
    assert cl.is_plumbing(name, tags, parent_is_graph_node) is dropped


@pytest.mark.parametrize(
    ("tags", "inherited", "caller"),
    [
        (None, "lead_agent", "lead_agent"),
        (["seq:step:1"], "subagent:researcher", "subagent:researcher"),
        (["subagent:researcher"], "lead_agent", "subagent:researcher"),
        (["subagent:researcher", "middleware:summarization"], "lead_agent", "middleware:summarization"),
        (["middleware:x", "subagent:y"], "lead_agent", "subagent:y"),
        (["lead_agent"], "subagent:y", "lead_agent"),
    ],
)
def test_caller_is_nearest_tag(tags: list[str] | None, inherited: str, caller: str) -> None:
    """The caller is the run's last caller tag (the nearest), else the inherited one."""
    assert cl.caller_of(tags, inherited) == caller


def test_subagent_needs_a_tag_the_parent_lacks() -> None:
    """A run is a new subagent only when it carries a subagent tag its parent does not."""
    assert cl.new_subagent(["seq:step:1", "subagent:researcher"], ()) == "researcher"
    assert cl.new_subagent(["subagent:researcher"], ("subagent:researcher",)) is None
    assert cl.new_subagent(["subagent:a", "subagent:b"], ("subagent:a",)) == "b"
    assert cl.new_subagent(["subagent:"], ()) is None
    assert cl.new_subagent(None, ()) is None


@pytest.mark.parametrize(
    ("name", "tags", "metadata", "agent"),
    [
        ("LangGraph", [], {"agent_name": "research_assistant"}, "research_assistant"),
        ("graph", [], {"lc_agent_name": "helper"}, "helper"),
        ("my_agent", ["agent"], {}, "my_agent"),
        ("pipeline", [], {"thread_id": "t"}, None),
        ("pipeline", None, None, None),
        ("x", [], {"agent_name": 3}, None),
    ],
)
def test_root_agent_or_workflow(
    name: str, tags: list[str] | None, metadata: dict[str, Any] | None, agent: str | None
) -> None:
    """A root is an agent when metadata names one or it is tagged 'agent'; otherwise a workflow."""
    assert cl.root_agent_name(name, tags, metadata) == agent


@pytest.mark.parametrize(
    ("metadata", "serialized", "params", "provider"),
    [
        ({"ls_provider": "openai"}, None, None, "openai"),
        ({"ls_provider": "anthropic"}, None, None, "anthropic"),
        ({"ls_provider": "google_vertexai"}, None, None, "gcp.vertex_ai"),
        ({"ls_provider": "amazon_bedrock"}, None, None, "aws.bedrock"),
        ({"ls_provider": "MistralAI"}, None, None, "mistral_ai"),
        ({"ls_provider": "scripted"}, None, None, "scripted"),
        (None, {"id": ["langchain", "chat_models", "openai", "ChatOpenAI"]}, None, "openai"),
        (None, {"id": ["langchain_anthropic", "chat_models", "ChatAnthropic"]}, None, "anthropic"),
        (None, None, {"_type": "groq-chat"}, "groq"),
        (None, None, {"_type": "fake-list"}, "fake-list"),
        (None, None, None, "unknown"),
    ],
)
def test_provider(metadata: Any, serialized: Any, params: Any, provider: str) -> None:
    """gen_ai.provider.name comes from ls_provider, then the class path, then the LLM type."""
    assert cl.provider_of(metadata, serialized, params) == provider


def test_request_model_and_params() -> None:
    """Request model and parameters come from ls_* metadata and invocation params, typed."""
    assert cl.request_model({"ls_model_name": "gpt-4o"}, {"model": "other"}) == "gpt-4o"
    assert cl.request_model({}, {"model_name": "claude"}) == "claude"
    assert cl.request_model(None, None) is None
    attrs: dict[str, Any] = {}
    stream = cl.request_params(
        attrs,
        {"ls_temperature": 0.5, "ls_max_tokens": 100},
        {
            "top_p": 0.9,
            "stop": ["\n"],
            "seed": 7,
            "stream": True,
            "presence_penalty": "high",
            "max_tokens": True,
        },
    )
    assert stream is True
    assert attrs == {
        sc.GEN_AI_REQUEST_TEMPERATURE: 0.5,
        sc.GEN_AI_REQUEST_MAX_TOKENS: 100,
        sc.GEN_AI_REQUEST_TOP_P: 0.9,
        sc.GEN_AI_REQUEST_SEED: 7,
        sc.GEN_AI_REQUEST_STOP_SEQUENCES: ("\n",),
    }
    assert cl.request_params({}, None, {"streaming": False}) is False


def test_control_flow_matched_by_class_name() -> None:
    """LangGraph control-flow exceptions are recognised by MRO class names; others are errors."""
    from langgraph.errors import GraphInterrupt, ParentCommand

    assert cl.control_flow(GraphInterrupt(())) == (True, True)
    assert cl.control_flow(ParentCommand(None)) == (True, False)  # type: ignore[arg-type]
    assert cl.control_flow(ValueError("x")) == (False, False)

    class GraphInterrupt2(Exception):
        pass

    GraphInterrupt2.__name__ = "GraphInterrupt"
    assert cl.control_flow(GraphInterrupt2()) == (True, True)
    assert cl.error_type(KeyError("k")) == "KeyError"


def test_run_name() -> None:
    """The run name comes from the name kwarg, then serialized name / id, then the default."""
    assert cl.run_name({"name": "a"}, {"name": "b"}, "d") == "b"
    assert cl.run_name({"name": "a"}, {}, "d") == "a"
    assert cl.run_name({"id": ["x", "Y"]}, {}, "d") == "Y"
    assert cl.run_name(None, {"name": 3}, "d") == "d"


# --- LangChain 1.x inference (rules 3 and 4 of the classify module doc) -------------------------------
@pytest.mark.parametrize(
    ("node", "middleware"),
    [
        ("SummarizationMiddleware.before_model", "SummarizationMiddleware"),
        ("Judge.after_model", "Judge"),
        ("my_hook.before_agent", "my_hook"),
        ("Audit.after_agent", "Audit"),
        ("model", None),  # the agent's own node: the call stack decides (tracing.callcontext)
        ("tools", None),
        ("Foo.bar", None),  # not a middleware hook
        (".before_model", None),
        (None, None),
        (3, None),
    ],
)
def test_middleware_node(node: Any, middleware: str | None) -> None:
    """create_agent names a middleware hook's graph node <Middleware>.<hook>."""
    assert cl.middleware_of_node(node) == middleware


@pytest.mark.parametrize(
    ("metadata", "middleware"),
    [
        ({"lc_source": "summarization"}, "SummarizationMiddleware"),
        ({"lc_source": "tool_selection"}, "LLMToolSelectorMiddleware"),
        ({"lc_source": "tool_emulation"}, "LLMToolEmulator"),
        ({"lc_source": "something_new"}, None),
        ({"lc_internal_call": "abc"}, None),  # internal, but whose? the node or the stack says
        (None, None),
    ],
)
def test_middleware_marker(metadata: dict[str, Any] | None, middleware: str | None) -> None:
    """LangChain's built-in middleware mark their model calls with lc_source."""
    assert cl.middleware_of_metadata(metadata) == middleware


AGENT_MD = {"ls_integration": "langchain_create_agent"}


@pytest.mark.parametrize(
    ("name", "tags", "metadata", "parent_agent", "parent_tool", "nested"),
    [
        ("researcher", [], {**AGENT_MD, "lc_agent_name": "researcher"}, "boss", "research", "researcher"),
        ("researcher", [], {**AGENT_MD, "lc_agent_name": "researcher"}, None, "research", "researcher"),
        # the first agent of a plain workflow: no enclosing agent, no tool: the lead agent
        ("researcher", [], {**AGENT_MD, "lc_agent_name": "researcher"}, None, None, None),
        ("model", ["graph:step:1"], {**AGENT_MD, "lc_agent_name": "researcher"}, "boss", None, None),
        ("boss", [], {**AGENT_MD, "lc_agent_name": "boss"}, "boss", None, None),  # its own graph
        (
            "LangGraph",
            [],
            {**AGENT_MD, "lc_agent_name": "boss"},
            "boss",
            "write",
            "write",
        ),  # unnamed, in a tool
        ("LangGraph", [], {**AGENT_MD, "lc_agent_name": "boss"}, "boss", None, None),  # not in a tool
        ("LangGraph", [], {"ls_integration": "langgraph"}, "boss", "write", None),  # a plain graph
        ("RunnableSequence", [], AGENT_MD, "boss", "write", None),  # a chain in a tool's body
        ("LangGraph", ["graph:step:2"], AGENT_MD, "boss", "write", None),
    ],
)
def test_nested_agent(
    name: str,
    tags: list[str],
    metadata: dict[str, Any],
    parent_agent: str | None,
    parent_tool: str | None,
    nested: str | None,
) -> None:
    """An agent graph inside another agent or a tool: a named one by its changed lc_agent_name, an
    unnamed create_agent run straight from a tool's body by the tool's name; never without either."""
    assert cl.nested_agent(name, tags, metadata, parent_agent, parent_tool) == nested


@pytest.mark.parametrize(
    ("name", "metadata", "agent"),
    [
        ("LangGraph", AGENT_MD, "agent"),  # create_agent without name=
        ("boss", {**AGENT_MD, "lc_agent_name": "boss"}, "boss"),
        ("my_graph", AGENT_MD, "my_graph"),
        ("LangGraph", {"ls_integration": "langgraph"}, None),  # a workflow
    ],
)
def test_root_agent_of_create_agent(name: str, metadata: dict[str, Any], agent: str | None) -> None:
    """A create_agent graph is an agent, named or not."""
    assert cl.root_agent_name(name, [], metadata) == agent


@pytest.mark.parametrize(
    ("caller", "tagged", "blocks"),
    [
        ("subagent:a", True, True),
        ("middleware:b", True, True),
        ("lead_agent", True, False),  # an ancestor's lead_agent tag is the default
        ("middleware:b", False, False),  # inferred: a nearer rule may still apply
    ],
)
def test_ancestor_tags_block_inference(caller: str, tagged: bool, blocks: bool) -> None:
    """Tags always win over inference, but lead_agent is what inference refines."""
    assert cl.blocks_inference(caller, tagged) is blocks


def test_resume_is_read_by_shape() -> None:
    """A Command(resume=...) input is a resume; anything else is not."""
    from langgraph.types import Command

    assert cl.resume_value(Command(resume={"ok": True})) == (True, {"ok": True})
    assert cl.resume_value(Command(update={"x": 1})) == (False, None)
    assert cl.resume_value({"messages": []}) == (False, None)
