"""A LangGraph agent with a subagent and a middleware step, traced with ``instrument()`` (no ``callbacks=``).

    python examples/langgraph_subagents.py

The lead agent ``research_assistant`` delegates to the ``researcher`` subagent (its runs are tagged
``subagent:researcher``) and a summarization step calls the model under the tag
``middleware:summarization``. The journal splits the tokens by that caller, and records the
conversation (human / AI / summary messages) per thread. Two conversations run concurrently.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from otel_runjournal import configure, instrument, uninstrument
from otel_runjournal.demo.agent import build_agent

THREADS = {"trip-lisbon": "Plan a trip to Lisbon", "trip-paris": "Plan a trip to Paris"}


def main() -> None:
    journal = configure(service_name="subagents-example")
    instrument(journal.handler)  # every LangChain run in the process is now traced
    agent = build_agent()  # subagent + a failing tool + middleware tags

    def ask(thread_id: str) -> str:
        result = agent.invoke(
            {"messages": [("user", THREADS[thread_id])]}, {"configurable": {"thread_id": thread_id}}
        )
        return str(result["messages"][-1].content)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for thread_id, answer in zip(THREADS, pool.map(ask, THREADS), strict=True):
            print(f"[{thread_id}] {answer}")
    uninstrument()
    journal.force_flush()

    store = journal.store
    for thread_id in THREADS:
        usage = store.token_usage(thread_id=thread_id)
        split = ", ".join(f"{caller}={tokens}" for caller, tokens in sorted(usage.by_caller.items()))
        print(f"[{thread_id}] {usage.total_tokens} tokens in {usage.llm_call_count} model calls: {split}")
        for message in store.list_messages(thread_id):
            print(f"    {message.seq:>4} {message.event_type:<13} {(message.content or '')[:70]}")
    journal.shutdown()


if __name__ == "__main__":
    main()
