"""Quick start: trace a LangGraph agent with ``callbacks=[handler]`` and read back its run journal.

    python examples/quickstart.py            # offline: the bundled scripted model, no API key

Journal location: ``$OTEL_RUNJOURNAL_STORE``, else ``./runjournal.duckdb``. With
``OTEL_EXPORTER_OTLP_ENDPOINT`` set the same spans also go to your collector / Jaeger.
"""

from __future__ import annotations

from otel_runjournal import configure
from otel_runjournal.demo.agent import build_agent  # any LangChain / LangGraph runnable works the same


def main() -> None:
    journal = configure(service_name="quickstart")
    agent = build_agent(subagent=False, failing_tool=False, middleware=False)
    result = agent.invoke(
        {"messages": [("user", "What's the weather in Paris?")]},
        {"callbacks": [journal.handler], "configurable": {"thread_id": "quickstart"}},
    )
    print("answer:", result["messages"][-1].content)

    journal.force_flush()  # the journal is written in the background; flush before reading it back
    run = journal.store.list_runs(thread_id="quickstart", limit=1)[0]
    print(f"run {run.run_id}: {run.status}, {run.llm_call_count} model calls, {run.total_tokens} tokens")
    for event in journal.store.list_events(run.run_id):
        print(f"  {event.seq:>4}  {event.category:<9} {event.event_type}")
    journal.shutdown()


if __name__ == "__main__":
    main()
