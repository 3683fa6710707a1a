"""What the calling context knows and LangChain's callbacks are not told.

:func:`thread_of_current_config`: a plain runnable's ``configurable.thread_id`` (LangGraph copies it
into the callbacks' metadata, other runnables do not); a root's children run with the root's config
as the current one (``langchain_core.runnables.config.var_child_runnable_config``), so the first
child reads it there.

:func:`calling_middleware`: which LangChain 1.x middleware hook, if any, is making a model call.

A middleware's ``wrap_model_call`` (or ``wrap_tool_call``) runs inside the agent's own ``model`` (or
``tools``) graph node, so neither the node nor the run's metadata tells a judge model it calls apart
from the agent's own model call that the hook passes on through ``handler(request)``. The call stack
does: walking up from the callback, the agent's own call reaches create_agent's model execution
(module :data:`AGENT_MODULE`) before any hook (a call from inside a tool reaches the tool node's
module, :data:`TOOL_MODULE`), while a middleware's call reaches the hook method first
(an ``AgentMiddleware`` subclass instance as ``self``; decorator-made middleware too, whose generated
class's method calls the decorated function). Asyncio tasks keep their awaiting coroutines on the stack, so
``awrap_model_call`` is found the same way.

Only public names are relied on: the hook names of ``AgentMiddleware`` and the module that
``create_agent`` lives in. Anything unrecognised answers ``None`` (the caller is then inherited, as
before this rule existed), and the walk is bounded. It runs only for model calls inside create_agent's
``model`` / ``tools`` nodes, once per call (a few microseconds).
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

from langchain_core.runnables.config import var_child_runnable_config

AGENT_MODULE = "langchain.agents.factory"
TOOL_MODULE = "langgraph.prebuilt.tool_node"
_OWN_CALL_MODULES = frozenset({AGENT_MODULE, TOOL_MODULE})  # the agent's own model call / tool execution
_HOOKS = frozenset(
    {
        "wrap_model_call",
        "awrap_model_call",
        "wrap_tool_call",
        "awrap_tool_call",
        "before_model",
        "abefore_model",
        "after_model",
        "aafter_model",
        "before_agent",
        "abefore_agent",
        "after_agent",
        "aafter_agent",
        "wrapped",  # the method of a class made by LangChain's hook decorators (@wrap_model_call, ...)
        "async_wrapped",
    }
)
_MAX_DEPTH = 200


def _middleware_name(frame: FrameType) -> str | None:
    code = frame.f_code
    if not code.co_argcount:
        return None
    owner = frame.f_locals.get(code.co_varnames[0])  # the method's instance, whatever it is called
    if owner is None:
        return None
    for cls in type(owner).__mro__:
        if cls.__name__ == "AgentMiddleware" and cls.__module__.startswith("langchain."):
            name = getattr(owner, "name", None)
            return name if isinstance(name, str) and name else type(owner).__name__
    return None


def calling_middleware() -> str | None:
    """The name of the middleware whose hook is making the current model call, else ``None``."""
    try:
        frame: FrameType | None = sys._getframe(1)
    except (AttributeError, ValueError):  # not CPython
        return None
    depth = 0
    while frame is not None and depth < _MAX_DEPTH:
        if frame.f_code.co_name in _HOOKS:
            name = _middleware_name(frame)
            if name is not None:
                return name
        elif frame.f_globals.get("__name__") in _OWN_CALL_MODULES:
            return None  # create_agent running its own model, or a tool's body: not a hook's call
        frame = frame.f_back
        depth += 1
    return None


def thread_of_current_config() -> str | None:
    """``configurable.thread_id`` of the runnable config now current, if any."""
    config: Any = var_child_runnable_config.get()
    configurable = config.get("configurable") if isinstance(config, dict) else None
    thread = configurable.get("thread_id") if isinstance(configurable, dict) else None
    if isinstance(thread, int) and not isinstance(thread, bool):
        return str(thread)
    return thread if isinstance(thread, str) and thread else None
