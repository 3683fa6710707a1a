"""An application as zero-code users write it: LangChain 1.x, ChatOpenAI, a tool with its own span and
HTTP call, no tracing code at all. ``opentelemetry-instrument`` turns every installed instrumentation on
(httpx, the OpenAI SDK's, and ours). The OpenAI-compatible server is the test's, at ``$STUB_URL``."""

from __future__ import annotations

import asyncio
import os

import httpx
from langchain.agents import create_agent
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from opentelemetry import trace

URL = os.environ["STUB_URL"]
tracer = trace.get_tracer("app")


@tool
def lookup(city: str) -> str:
    """Look a city up."""
    with tracer.start_as_current_span("db.select"):
        httpx.get(URL.rsplit("/v1", 1)[0] + "/ping")
    return f"{city}: 21 degrees"


def main() -> None:
    agent = create_agent(ChatOpenAI(model="gpt-test", base_url=URL, api_key="test", max_retries=0), [lookup])
    inputs = {"messages": [("user", "What's the weather in Paris?")]}
    asyncio.run(agent.ainvoke(inputs, {"configurable": {"thread_id": "zero-a"}}))
    for _chunk in agent.stream(inputs, {"configurable": {"thread_id": "zero-s"}}):
        pass
    print("done")


if __name__ == "__main__":
    main()
