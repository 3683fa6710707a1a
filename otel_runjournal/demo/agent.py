"""The bundled offline LangGraph agent used by the demo, the tests, the examples and the benchmarks.

``build_agent()`` returns a compiled ReAct-style graph (``agent`` node → ``tools`` node → ...) run
by :class:`ScriptedChatModel`. Options add a subagent (a nested agent graph called from a tool, its
runs tagged ``subagent:researcher``), a tool that fails, and a middleware step (a model call tagged
``middleware:summarization`` that emits a ``summarization`` custom event).
Needs ``langgraph`` (``pip install 'otel-runjournal[demo]'``).
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import dispatch_custom_event
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool

from .model import ScriptedChatModel

AGENT_NAME = "research_assistant"

ANSWERS = {
    "6*7+1": "{tool:get_weather} And 6*7+1 = {tool:calculator}.",
    "order": "I could not look up order A-1001: the order service is unavailable right now. "
    "Please try again in a few minutes.",
    "rainy": "A rainy day in Lisbon: the Gulbenkian Museum in the morning, the Oceanário after lunch, "
    "fado in Alfama at night.",
    "compare": "Both are mild, Lisbon warmer and sunnier all year. {tool:ask_researcher}",
    "forecast": "Paris: {tool:get_weather}",
    "pack": "For Lisbon: light layers, comfortable shoes for the hills and a light rain jacket.",
    "weather": "{tool:get_weather}",
}
"""The demo agent's final answers, by a word of the question (``ScriptedChatModel.answers``)."""
DEFAULT_ANSWER = (
    "I can help with the weather, sums, orders and trips to Paris or Lisbon; I have nothing on: {question}"
)
SUBAGENT_NAME = "researcher"


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"It is 21°C and sunny in {city}."


@tool
def calculator(expression: str) -> str:
    """Evaluate a simple arithmetic expression of integers joined by + or *."""
    total = 0
    for term in expression.replace(" ", "").split("+"):
        product = 1
        for factor in term.split("*"):
            product *= int(factor)
        total += product
    return str(total)


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order by id (the demo's order system is down: this always fails)."""
    raise LookupError(f"order service unavailable while looking up {order_id}")


def _react_graph(model: Any, tools: list[BaseTool], name: str, handle_tool_errors: bool) -> Any:
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    bound = model.bind_tools(tools)

    def call_model(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"], config)]}

    async def acall_model(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"], config)]}

    from langchain_core.runnables import RunnableLambda

    graph = StateGraph(MessagesState)
    graph.add_node("agent", RunnableLambda(call_model, afunc=acall_model, name="agent"))
    graph.add_node("tools", ToolNode(tools, handle_tool_errors=handle_tool_errors))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "agent")
    return graph.compile(name=name)


def build_subagent(model: ScriptedChatModel | None = None) -> Any:
    """The ``researcher`` agent: one ``get_weather`` call, then an answer."""
    model = model or ScriptedChatModel(
        model_name="scripted-mini",
        plan=[[("get_weather", {"city": "Lisbon"})]],
        answer="Research notes on {question}: {tool:get_weather}",
    )
    return _react_graph(model, [get_weather], SUBAGENT_NAME, handle_tool_errors=True)


def build_agent(
    model: ScriptedChatModel | None = None,
    *,
    subagent: bool = True,
    failing_tool: bool = True,
    middleware: bool = True,
) -> Any:
    """Compile the demo agent. With every option off it is 3 model calls + 2 tool calls per invoke."""
    tools: list[BaseTool] = [get_weather, calculator]
    plan: list[list[tuple[str, dict[str, Any]]]] = [
        [("get_weather", {"city": "Paris"})],
        [("calculator", {"expression": "6*7+1"})],
    ]
    if failing_tool:
        tools.append(lookup_order)
        plan.append([("lookup_order", {"order_id": "A-1001"})])
    if subagent:
        researcher = build_subagent()

        @tool
        def ask_researcher(question: str, config: RunnableConfig) -> str:
            """Delegate a research question to the researcher subagent."""
            result = researcher.invoke(
                {"messages": [HumanMessage(question)]},
                {**config, "tags": [f"subagent:{SUBAGENT_NAME}"], "run_name": SUBAGENT_NAME},
            )
            return str(result["messages"][-1].content)

        tools.append(ask_researcher)
        plan.append([("ask_researcher", {"question": "climate of Lisbon"})])
    model = model or ScriptedChatModel(plan=plan, answer=DEFAULT_ANSWER, answers=ANSWERS)
    if not model.plan:
        model = model.model_copy(update={"plan": plan})
    agent = _react_graph(model, tools, AGENT_NAME, handle_tool_errors=True)
    if not middleware:
        return agent.with_config(metadata={"agent_name": AGENT_NAME})
    return _with_summarizer(agent, model).with_config(metadata={"agent_name": AGENT_NAME})


def _with_summarizer(agent: Any, model: ScriptedChatModel) -> Any:
    """Wrap the agent so a ``middleware:summarization`` model call summarises the conversation."""
    from langgraph.graph import END, START, MessagesState, StateGraph

    summarizer = model.model_copy(update={"plan": [], "answer": "Summary: {question}", "answers": {}})

    def summarize(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        msgs = state["messages"]
        summary = summarizer.invoke(
            [SystemMessage("Summarise the conversation."), *msgs],
            {**config, "tags": ["middleware:summarization"]},
        )
        dispatch_custom_event(
            "summarization",
            {"summary": str(summary.content), "replaced_count": len(msgs)},
            config=config,
        )
        return {}

    graph = StateGraph(MessagesState)
    graph.add_node("assistant", agent)
    graph.add_node("summarize", summarize)
    graph.add_edge(START, "assistant")
    graph.add_edge("assistant", "summarize")
    graph.add_edge("summarize", END)
    return graph.compile(name=AGENT_NAME)
