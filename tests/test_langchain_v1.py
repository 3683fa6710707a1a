"""LangChain 1.x idioms: create_agent and its middleware, agents called as tools, interrupts and resume.

Every scenario runs the real ``create_agent`` (real middleware classes) on offline scripted models,
through the handler and the journal exporter into a real DuckDB file. Expected token numbers come from
what the scripted models returned (recorded by an independent callback), never from our own output;
every run's ``on_run_end`` summary must equal the ``runs`` row the exporter wrote.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    HumanInTheLoopMiddleware,
    ModelFallbackMiddleware,
    ModelRetryMiddleware,
    SummarizationMiddleware,
    TodoListMiddleware,
    wrap_model_call,
    wrap_tool_call,
)
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, interrupt
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_runjournal import RunJournalExporter, RunRecord
from otel_runjournal import semconv as sc
from otel_runjournal.demo.model import ScriptedChatModel
from otel_runjournal.stores.duckdb.store import DuckDBStore
from otel_runjournal.tracing.handler import RunJournalCallbackHandler


class UsageRecorder(BaseCallbackHandler):
    """Independent of our handler: the total tokens each scripted model (by name) reported, in all and
    per LangGraph thread (the thread id LangGraph puts in each model call's metadata)."""

    def __init__(self) -> None:
        self.by_model: dict[str, int] = {}
        self.by_thread: dict[str, dict[str, int]] = {}
        self._thread_of: dict[UUID, str | None] = {}

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: UUID, metadata: Any = None, **kwargs: Any
    ) -> None:
        self._thread_of[run_id] = (metadata or {}).get("thread_id")

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        message = response.generations[0][0].message
        usage = message.usage_metadata
        name = message.response_metadata["model_name"]
        tokens = usage["input_tokens"] + usage["output_tokens"]
        self.by_model[name] = self.by_model.get(name, 0) + tokens
        thread = self._thread_of.pop(run_id, None)
        if thread is not None:
            per_model = self.by_thread.setdefault(thread, {})
            per_model[name] = per_model.get(name, 0) + tokens


@dataclass
class Journal:
    store: DuckDBStore
    handler: RunJournalCallbackHandler
    spans: InMemorySpanExporter
    usage: UsageRecorder
    ends: list[RunRecord] = field(default_factory=list)

    def config(self, thread: str, **extra: Any) -> dict[str, Any]:
        return {"callbacks": [self.handler, self.usage], "configurable": {"thread_id": thread}, **extra}

    def chat_callers(self) -> dict[str, set[str]]:
        """Model name → the runjournal.caller of each of its chat spans."""
        out: dict[str, set[str]] = {}
        for span in self.spans.get_finished_spans():
            if span.attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_CHAT:
                model = str(span.attributes[sc.GEN_AI_REQUEST_MODEL])
                out.setdefault(model, set()).add(str(span.attributes[sc.RJ_CALLER]))
        return out

    def expected_by_caller(self, callers: dict[str, str], thread: str | None = None) -> dict[str, int]:
        """What the models reported (on ``thread``, or in all), summed per caller."""
        out: dict[str, int] = {}
        reported = self.usage.by_model if thread is None else self.usage.by_thread[thread]
        for model, tokens in reported.items():
            out[callers[model]] = out.get(callers[model], 0) + tokens
        return out

    def messages(self, thread: str) -> list[tuple[str, str | None]]:
        return [(m.event_type, m.content) for m in self.store.list_messages(thread, limit=1000)]

    def only_run(self, thread: str) -> RunRecord:
        runs = self.store.list_runs(thread_id=thread)
        assert len(runs) == 1
        return runs[0]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """Handler → provider → (in-memory spans, journal exporter → DuckDB); on_run_end collected."""
    store = DuckDBStore(tmp_path / "journal.duckdb")
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    provider.add_span_processor(SimpleSpanProcessor(RunJournalExporter(store)))
    ends: list[RunRecord] = []
    handler = RunJournalCallbackHandler(provider, on_run_end=ends.append)
    j = Journal(store, handler, spans, UsageRecorder(), ends)
    yield j
    # every scenario: what on_run_end said is exactly the runs row written later
    assert j.ends, "no run ended"
    for summary in j.ends:
        assert dataclasses.asdict(summary) == dataclasses.asdict(store.get_run(summary.run_id))
    provider.shutdown()


def _conversation() -> list[Any]:
    return [
        HumanMessage("one"),
        AIMessage("two"),
        HumanMessage("three"),
        AIMessage("four"),
        HumanMessage("five"),
    ]


def _middleware_agent(judge_model: ScriptedChatModel, *, decorated_sync_hook: bool = True) -> Any:
    """An agent with a summariser, an after_model judge, a wrap_model_call class and a decorated wrap."""

    class Judge(AgentMiddleware):
        def after_model(self, state: Any, runtime: Any) -> None:
            judge_model.invoke([HumanMessage("judge this")])

        async def aafter_model(self, state: Any, runtime: Any) -> None:
            await judge_model.ainvoke([HumanMessage("judge this")])

    wrapjudge = ScriptedChatModel(model_name="wrapjudge", answer="looks fine")

    class Precheck(AgentMiddleware):
        def wrap_model_call(self, request: Any, handler: Any) -> Any:
            wrapjudge.invoke([HumanMessage("pre-check")])
            return handler(request)

        async def awrap_model_call(self, request: Any, handler: Any) -> Any:
            await wrapjudge.ainvoke([HumanMessage("pre-check")])
            return await handler(request)

    decorated = ScriptedChatModel(model_name="decorated", answer="also fine")

    @wrap_model_call
    def guard(request: Any, handler: Any) -> Any:
        decorated.invoke([HumanMessage("guard")])
        return handler(request)

    summarizer = ScriptedChatModel(model_name="summarizer", answer="They counted to five.")
    middleware = [
        SummarizationMiddleware(model=summarizer, trigger=("messages", 3), keep=("messages", 1)),
        Judge(),
        Precheck(),
        *([guard] if decorated_sync_hook else []),  # a sync-only decorated hook cannot run under ainvoke
    ]
    return create_agent(ScriptedChatModel(answer="The answer."), tools=[], middleware=middleware, name="boss")


MIDDLEWARE_CALLERS = {
    "summarizer": "middleware:SummarizationMiddleware",
    "judge": "middleware:Judge",
    "wrapjudge": "middleware:Precheck",
    "decorated": "middleware:guard",
    "scripted-1": "lead_agent",
}


def test_middleware_calls_are_the_middlewares_and_never_the_conversation(journal: Journal) -> None:
    """Model calls in before/after_model nodes and wrap_model_call hooks (class or decorator) count as
    middleware:<Name>; the thread holds the human turn, the summary and the agent's answer only."""
    judge = ScriptedChatModel(model_name="judge", answer="VERDICT: acceptable")
    _middleware_agent(judge).invoke({"messages": _conversation()}, journal.config("t1"))
    assert journal.chat_callers() == {model: {caller} for model, caller in MIDDLEWARE_CALLERS.items()}
    run = journal.only_run("t1")
    expected = journal.expected_by_caller(MIDDLEWARE_CALLERS)
    assert run.usage_by_caller == expected
    assert run.lead_agent_tokens == expected["lead_agent"]
    assert run.middleware_tokens == sum(v for k, v in expected.items() if k.startswith("middleware:"))
    assert run.subagent_tokens == 0
    summary = "Here is a summary of the conversation to date:\n\nThey counted to five."
    assert journal.messages("t1") == [
        ("human_message", "one"),
        ("summary", summary),
        ("ai_message", "The answer."),
    ]
    events = journal.store.list_events(run.run_id, event_types=["summarization", "summary"])
    assert [(e.event_type, e.metadata["replaced_count"]) for e in events] == [
        ("summarization", 4),
        ("summary", 4),
    ]
    root = next(s for s in journal.spans.get_finished_spans() if s.attributes.get(sc.RJ_IS_ROOT))
    assert root.attributes[sc.RJ_USAGE_MIDDLEWARE_TOKENS] == run.middleware_tokens


def test_middleware_calls_under_asyncio(journal: Journal) -> None:
    """The same with ainvoke: awrap_model_call / aafter_model hooks are found on the coroutine stack."""
    judge = ScriptedChatModel(model_name="judge", answer="VERDICT: acceptable")
    agent = _middleware_agent(judge, decorated_sync_hook=False)
    asyncio.run(agent.ainvoke({"messages": _conversation()}, journal.config("t1")))
    callers = {model: caller for model, caller in MIDDLEWARE_CALLERS.items() if model != "decorated"}
    assert journal.chat_callers() == {model: {caller} for model, caller in callers.items()}
    assert journal.only_run("t1").usage_by_caller == journal.expected_by_caller(callers)
    assert [t for t, _ in journal.messages("t1")] == ["human_message", "summary", "ai_message"]


def test_tags_still_win_over_inference(journal: Journal) -> None:
    """A call's own tag beats the middleware it runs in; an ancestor's subagent tag beats inference."""
    judge = ScriptedChatModel(model_name="judge", answer="VERDICT: acceptable")

    class Judge(AgentMiddleware):
        def after_model(self, state: Any, runtime: Any) -> None:
            judge.invoke([HumanMessage("judge this")], config={"tags": ["lead_agent"]})

    summarizer = ScriptedChatModel(model_name="summarizer", answer="short")
    agent = create_agent(
        ScriptedChatModel(answer="done"),
        tools=[],
        middleware=[
            SummarizationMiddleware(model=summarizer, trigger=("messages", 3), keep=("messages", 1)),
            Judge(),
        ],
        name="boss",
    )
    agent.invoke({"messages": _conversation()}, journal.config("t1"))
    assert journal.chat_callers() == {
        "judge": {"lead_agent"},
        "summarizer": {"middleware:SummarizationMiddleware"},
        "scripted-1": {"lead_agent"},
    }
    journal.spans.clear()
    outer = RunnableLambda(lambda x, config: agent.invoke(x, {**config, "tags": ["subagent:planner"]}))
    outer.invoke({"messages": _conversation()}, journal.config("t2"))
    assert journal.chat_callers() == {
        "judge": {"lead_agent"},  # its own tag is nearer than the ancestor's
        "summarizer": {"subagent:planner"},
        "scripted-1": {"subagent:planner"},
    }


def test_an_unnamed_create_agent_is_an_agent(journal: Journal) -> None:
    """create_agent without name= makes `invoke_agent agent`, not `invoke_workflow LangGraph`."""
    create_agent(ScriptedChatModel(answer="hello"), tools=[]).invoke(
        {"messages": [HumanMessage("hi")]}, journal.config("t1")
    )
    root = next(s for s in journal.spans.get_finished_spans() if s.attributes.get(sc.RJ_IS_ROOT))
    assert root.name == "invoke_agent agent"
    assert root.attributes[sc.GEN_AI_OPERATION_NAME] == sc.OP_INVOKE_AGENT
    assert root.attributes[sc.GEN_AI_AGENT_NAME] == "agent"
    assert journal.only_run("t1").name == "agent"


def _inner_agent(name: str | None, model: str, judge_model: str) -> Any:
    judge = ScriptedChatModel(model_name=judge_model, answer="fine")

    class Review(AgentMiddleware):
        def after_model(self, state: Any, runtime: Any) -> None:
            judge.invoke([HumanMessage("review")])

        async def aafter_model(self, state: Any, runtime: Any) -> None:
            await judge.ainvoke([HumanMessage("review")])

    inner = ScriptedChatModel(model_name=model, answer=f"{model} says {{question}}")
    return create_agent(
        inner, tools=[], middleware=[Review(), ModelRetryMiddleware(max_retries=1)], name=name
    )


def _supervisor() -> Any:
    researcher = _inner_agent("researcher", "research-m", "research-judge")
    writer = _inner_agent(None, "writer-m", "writer-judge")  # unnamed: named after its tool

    @tool
    def research(question: str) -> str:
        """Ask the researcher agent."""
        return researcher.invoke({"messages": [HumanMessage(question)]})["messages"][-1].content

    @tool
    async def write(topic: str) -> str:
        """Ask the writer agent."""
        out = await writer.ainvoke({"messages": [HumanMessage(topic)]})
        return out["messages"][-1].content

    plan = [[("research", {"question": "what is up"}), ("write", {"topic": "a poem"})]]
    return create_agent(
        ScriptedChatModel(model_name="boss-m", plan=plan, answer="All done: {question}"),
        tools=[research, write],
        middleware=[TodoListMiddleware()],
        name="boss",
    )


SUPERVISOR_CALLERS = {
    "boss-m": "lead_agent",
    "research-m": "subagent:researcher",
    "research-judge": "subagent:researcher",
    "writer-m": "subagent:write",
    "writer-judge": "subagent:write",
}


def _agent_spans(spans: tuple[ReadableSpan, ...]) -> list[str]:
    return sorted(s.name for s in spans if s.attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_INVOKE_AGENT)


def test_agents_called_as_tools_are_subagents(journal: Journal) -> None:
    """A tool whose body runs another agent: invoke_agent {inner} spans, subagent:{inner} for all under
    it (its middleware too), and none of its answers in the thread's conversation."""
    asyncio.run(_supervisor().ainvoke({"messages": [HumanMessage("go")]}, journal.config("t1")))
    assert journal.chat_callers() == {model: {caller} for model, caller in SUPERVISOR_CALLERS.items()}
    assert _agent_spans(journal.spans.get_finished_spans()) == [
        "invoke_agent boss",
        "invoke_agent researcher",
        "invoke_agent write",
    ]
    run = journal.only_run("t1")
    expected = journal.expected_by_caller(SUPERVISOR_CALLERS)
    assert run.usage_by_caller == expected and len(expected) == 3
    assert run.subagent_tokens == expected["subagent:researcher"] + expected["subagent:write"]
    assert journal.messages("t1") == [("human_message", "go"), ("ai_message", "All done: go")]


QUESTIONS = [f"go {i}" + " and on" * i for i in range(20)]  # lengths, so token counts, differ per run


def test_twenty_concurrent_supervisor_runs_keep_their_callers_apart(journal: Journal) -> None:
    """20 concurrent ainvokes of the multi-agent supervisor: each run's roll-up is its own."""
    agent = _supervisor()

    async def main() -> None:
        await asyncio.gather(
            *(
                agent.ainvoke({"messages": [HumanMessage(QUESTIONS[i])]}, journal.config(f"c{i}"))
                for i in range(20)
            )
        )

    asyncio.run(main())
    runs = [journal.only_run(f"c{i}") for i in range(20)]
    expected = [journal.expected_by_caller(SUPERVISOR_CALLERS, f"c{i}") for i in range(20)]
    # every run's own roll-up, per caller, exactly: tokens moved between concurrent runs would show
    assert [r.usage_by_caller for r in runs] == expected
    assert [r.total_tokens for r in runs] == [sum(e.values()) for e in expected]
    assert len({sum(e.values()) for e in expected}) > 1  # the runs differ (echoed questions), so swaps show
    assert sum(sum(e.values()) for e in expected) == sum(journal.usage.by_model.values())  # nothing unkeyed
    for i, r in enumerate(runs):
        assert journal.messages(f"c{i}") == [
            ("human_message", QUESTIONS[i]),
            ("ai_message", f"All done: {QUESTIONS[i]}"),
        ]
        assert r.llm_call_count == 6  # boss 2, each subagent 1 model + 1 review


def test_a_plain_workflow_running_an_agent_as_a_node_makes_it_the_lead(journal: Journal) -> None:
    """prep → lead → END: the named create_agent of a plain workflow is the lead agent (no agent above
    it); its answer, the run's final one, is what the thread shows."""
    prep_model = ScriptedChatModel(model_name="prep-m", answer="prepared")

    def prep(state: MessagesState) -> dict[str, Any]:
        prep_model.invoke(state["messages"])  # a model call of the workflow itself, not an answer
        return {}

    lead = create_agent(ScriptedChatModel(model_name="lead-m", answer="the answer"), tools=[], name="lead")
    graph = StateGraph(MessagesState)
    graph.add_node("prep", prep)
    graph.add_node("lead", lead)
    graph.add_edge(START, "prep")
    graph.add_edge("prep", "lead")
    graph.add_edge("lead", END)
    graph.compile(name="pipeline").invoke({"messages": [HumanMessage("q")]}, journal.config("t1"))
    assert journal.chat_callers() == {"prep-m": {"lead_agent"}, "lead-m": {"lead_agent"}}
    assert _agent_spans(journal.spans.get_finished_spans()) == []
    (run,) = journal.store.list_runs(thread_id="t1")
    assert run.last_ai_message == "the answer"
    assert run.subagent_tokens == 0 and run.lead_agent_tokens == run.total_tokens > 0
    assert journal.messages("t1")[-1] == ("ai_message", "the answer")


def test_an_agent_as_a_node_of_an_agent_graph_is_a_subagent(journal: Journal) -> None:
    """Supervisor style: a named create_agent inside another agent's run (a tool the boss agent
    calls) is a subagent; its answer stays out of the thread."""
    helper = create_agent(ScriptedChatModel(model_name="helper-m", answer="helped"), tools=[], name="helper")

    @tool
    def ask_helper(question: str) -> str:
        """Ask the helper agent."""
        return str(helper.invoke({"messages": [HumanMessage(question)]})["messages"][-1].content)

    boss = create_agent(
        ScriptedChatModel(model_name="boss-m", plan=[[("ask_helper", {"question": "q"})]], answer="done"),
        tools=[ask_helper],
        name="boss",
    )
    boss.invoke({"messages": [HumanMessage("q")]}, journal.config("t1"))
    assert journal.chat_callers() == {"boss-m": {"lead_agent"}, "helper-m": {"subagent:helper"}}
    assert journal.messages("t1") == [("human_message", "q"), ("ai_message", "done")]


def test_interrupt_and_resume_on_one_thread(journal: Journal) -> None:
    """HumanInTheLoopMiddleware interrupts; Command(resume=...) is journaled as a resumed run_start,
    never as a human message; seq keeps increasing on the thread."""

    @tool
    def send_email(to: str) -> str:
        """Send an email."""
        return f"sent to {to}"

    agent = create_agent(
        ScriptedChatModel(plan=[[("send_email", {"to": "a@b.c"})]], answer="Email sent."),
        tools=[send_email],
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"send_email": True})],
        checkpointer=InMemorySaver(),
        name="mailer",
    )
    agent.invoke({"messages": [HumanMessage("mail them")]}, journal.config("t1"))
    agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), journal.config("t1"))
    first, second = sorted(journal.store.list_runs(thread_id="t1"), key=lambda r: r.started_at or 0)
    assert (first.status, second.status) == ("interrupted", "success")
    assert second.first_human_message is None
    start = journal.store.list_events(second.run_id, event_types=["run_start"])[0]
    assert start.metadata["resumed"] is True
    assert start.content == '{"decisions":[{"type":"approve"}]}'
    assert journal.store.list_events(second.run_id, event_types=["human_message"]) == []
    assert journal.messages("t1") == [("human_message", "mail them"), ("ai_message", "Email sent.")]
    seqs = [e.seq for r in (first, second) for e in journal.store.list_events(r.run_id, limit=1000)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_a_tool_that_interrupts_is_tool_interrupted(journal: Journal) -> None:
    """The tool that raised the interrupt returned nothing: tool_interrupted with the interrupt value."""

    @tool
    def ask_human(question: str) -> str:
        """Ask a human."""
        return str(interrupt({"question": question}))

    agent = create_agent(
        ScriptedChatModel(plan=[[("ask_human", {"question": "ok?"})]], answer="Thanks."),
        tools=[ask_human],
        checkpointer=InMemorySaver(),
        name="asker",
    )
    agent.invoke({"messages": [HumanMessage("start")]}, journal.config("t1"))
    run = journal.only_run("t1")
    types = [e.event_type for e in journal.store.list_events(run.run_id, limit=1000)]
    assert "tool_interrupted" in types and "tool_end" not in types
    event = journal.store.list_events(run.run_id, event_types=["tool_interrupted"])[0]
    assert event.content == '[{"question":"ok?"}]' and event.metadata["tool_name"] == "ask_human"
    agent.invoke(Command(resume="yes"), journal.config("t1"))
    resumed = next(r for r in journal.store.list_runs(thread_id="t1") if r.run_id != run.run_id)
    ends = journal.store.list_events(resumed.run_id, event_types=["tool_end"])
    assert [e.content for e in ends] == ["yes"]


def test_fallback_middleware_calls_are_the_agents(journal: Journal) -> None:
    """ModelFallbackMiddleware's fallback model is the agent's own call (lead_agent); the failed call
    counts as a call."""
    bad = ScriptedChatModel(model_name="primary", fail_on="q", answer="never")
    good = ScriptedChatModel(model_name="fallback", answer="from the fallback")
    agent = create_agent(
        bad,
        tools=[],
        middleware=[ModelFallbackMiddleware(good)],
        name="b",
    )
    agent.invoke({"messages": [HumanMessage("q")]}, journal.config("t1"))
    assert journal.chat_callers() == {"primary": {"lead_agent"}, "fallback": {"lead_agent"}}
    run = journal.only_run("t1")
    assert run.llm_call_count == 2
    assert journal.messages("t1") == [("human_message", "q"), ("ai_message", "from the fallback")]


def test_a_model_called_in_wrap_tool_call_is_the_middlewares(journal: Journal) -> None:
    """A wrap_tool_call middleware's own model call is middleware:<name>; the tool stays the agent's."""
    checker = ScriptedChatModel(model_name="checker", answer="allowed")

    @wrap_tool_call
    def policy(request: Any, handler: Any) -> Any:
        checker.invoke([HumanMessage("may I?")])
        return handler(request)

    @tool
    def lookup(key: str) -> str:
        """Look a key up."""
        return f"value of {key}"

    agent = create_agent(
        ScriptedChatModel(plan=[[("lookup", {"key": "k"})]], answer="Found it."),
        tools=[lookup],
        middleware=[policy],
        name="b",
    )
    agent.invoke({"messages": [HumanMessage("find k")]}, journal.config("t1"))
    assert journal.chat_callers() == {"checker": {"middleware:policy"}, "scripted-1": {"lead_agent"}}
    tool_span = next(s for s in journal.spans.get_finished_spans() if s.name == "execute_tool lookup")
    assert tool_span.attributes[sc.RJ_CALLER] == "lead_agent"


def test_configurable_thread_id_of_a_plain_runnable(journal: Journal) -> None:
    """configurable.thread_id is read where the config carries it, also for plain runnables."""
    chain = RunnableLambda(lambda text: [HumanMessage(text)]) | ScriptedChatModel(answer="ok")
    chain.invoke("hello", journal.config("plain-thread"))
    run = journal.only_run("plain-thread")
    assert journal.messages("plain-thread") == [("human_message", "hello"), ("ai_message", "ok")]
    assert all(
        s.attributes[sc.RJ_THREAD_ID] == "plain-thread" == s.attributes[sc.GEN_AI_CONVERSATION_ID]
        for s in journal.spans.get_finished_spans()
    )
    assert run.thread_id == "plain-thread"


def test_on_run_end_failures_never_reach_the_application(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An on_run_end that raises is logged; the run returns normally and is journaled."""
    store = DuckDBStore(tmp_path / "j.duckdb")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RunJournalExporter(store)))

    def broken(summary: RunRecord) -> None:
        raise RuntimeError("app bug")

    handler = RunJournalCallbackHandler(provider, on_run_end=broken)
    out = create_agent(ScriptedChatModel(answer="fine"), tools=[]).invoke(
        {"messages": [HumanMessage("hi")]}, {"callbacks": [handler], "configurable": {"thread_id": "t"}}
    )
    assert out["messages"][-1].content == "fine"
    assert "on_run_end raised" in caplog.text
    assert store.list_runs(thread_id="t")[0].status == "success"
    with pytest.raises(ValueError, match="on_run_end"):
        RunJournalCallbackHandler(provider, on_run_end="not callable")  # type: ignore[arg-type]
    provider.shutdown()


def test_configure_passes_on_run_end_through(tmp_path: Path) -> None:
    """configure(on_run_end=...) hands every run's summary over before invoke returns."""
    from otel_runjournal import configure

    seen: list[RunRecord] = []
    wiring = configure(tmp_path / "c.duckdb", tracer_provider=TracerProvider(), on_run_end=seen.append)
    try:
        agent = create_agent(ScriptedChatModel(answer="configured"), tools=[], name="cfg")
        agent.invoke(
            {"messages": [HumanMessage("hi")]},
            {"callbacks": [wiring.handler], "metadata": {"thread_id": "c"}},
        )
        assert [(s.name, s.status, s.last_ai_message) for s in seen] == [("cfg", "success", "configured")]
        wiring.tracer_provider.force_flush()
        assert dataclasses.asdict(wiring.store.get_run(seen[0].run_id)) == dataclasses.asdict(seen[0])
    finally:
        wiring.shutdown()
