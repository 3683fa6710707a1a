"""Content rendering: LangChain values → GenAI JSON message format, redacted and truncated.

Rendering is deferred: the handler keeps shallow copies (:func:`snapshot`) and hands the exporter
zero-argument callables (``functools.partial(renderer.input_messages, msgs)``), so no JSON is built on
the application's hot path unless content goes on spans. Messages are read through their fields
(``.type``, ``.content``, ``.tool_calls``, ``.tool_call_id``, ``.name``), never through ``str()``/
``repr()``. Unknown objects become ``"<TypeName>"`` rather than their ``repr``.

Redaction: the user's ``redact(str) -> str`` is applied to every string value (text parts, tool
arguments, results, custom event data) before truncation; if it raises, the value is replaced by
``"[redaction failed]"`` (fail closed).

Truncation: the limit counts *content* characters. A plain text longer than the limit is cut to it
(ending in :data:`TRUNCATION_MARKER`). In a JSON value the string values are the content: the longest
are cut first (all to one common length, each ending in the marker) until their total fits. The
structure around them stays JSON and is never cut into a string: a GenAI messages value keeps every
message with its role, part types, tool-call ids and names and finish reason (truncate, never drop a
message; the texts, arguments and results are what is cut), and any other value keeps its keys and
numbers, its containers shortened (first items kept, then a marker) only when that structure alone is
longer than the limit and than 256 characters. So a value may exceed the limit by its structure, never
by its content.

Long because every renderer shares the same walk over LangChain values (messages, documents,
pydantic models, dataclasses) and the same redaction and truncation steps.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

import orjson

from .. import genai_json as gj

Redactor = Callable[[str], str]

TRUNCATION_MARKER = "…[truncated]"
REDACTION_FAILED = "[redaction failed]"
_MAX_DEPTH = 24
_MAX_ITEMS = 10_000
# the parts of a GenAI message part that hold content (cut); its other keys are structure (kept)
_CONTENT_KEYS = ("content", "arguments", "response")
# structure (keys, numbers, punctuation) a JSON value may keep whatever the limit, so that a tiny limit
# still leaves e.g. ``{"summary": "…", "replaced_count": 5}`` its keys; beyond it containers are shortened
_STRUCTURE_FLOOR = 256

_ROLES = {
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}
# provider finish reasons → the GenAI output-message ``finish_reason`` values
_FINISH = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "STOP": "stop",
    "tool_calls": "tool_call",
    "tool_call": "tool_call",
    "tool_use": "tool_call",
    "function_call": "tool_call",
    "length": "length",
    "max_tokens": "length",
    "MAX_TOKENS": "length",
    "content_filter": "content_filter",
    "SAFETY": "content_filter",
    "error": "error",
}
_SIMPLE_STR_TYPES = (uuid.UUID, datetime.date, datetime.time, datetime.timedelta, decimal.Decimal, PurePath)


def snapshot(value: Any) -> Any:
    """A cheap shallow copy of a container the handler keeps for later rendering (one level of
    list values inside a dict is copied too, e.g. ``{"messages": [...]}``)."""
    if isinstance(value, dict):
        return {k: (list(v) if isinstance(v, list) else v) for k, v in value.items()}
    if isinstance(value, list):
        return list(value)
    return value


class Renderer:
    """Renders content values with one truncation limit and one redaction function."""

    __slots__ = ("limit", "redact")

    def __init__(self, limit: int, redact: Redactor | None = None) -> None:
        self.limit = max(int(limit), 1)
        self.redact = redact

    # -- public renderings -----------------------------------------------------------------------
    def input_messages(self, messages: Any) -> str:
        """A prompt (messages, strings, tuples, dicts) as GenAI input messages JSON."""
        return self.input_messages_data(messages)[1]

    def input_messages_data(self, messages: Any) -> tuple[list[dict[str, Any]], str]:
        """:meth:`input_messages` and the value its JSON parses to (the journal reads that one)."""
        items = messages if isinstance(messages, (list, tuple)) else [messages]
        return self._fit_messages_data([self._message(m) for m in items[:_MAX_ITEMS]])

    def output_messages(self, outputs: Sequence[tuple[Any, str | None]]) -> str:
        """``(message-or-text, finish_reason)`` pairs as GenAI output messages JSON."""
        return self.output_messages_data(outputs)[1]

    def output_messages_data(
        self, outputs: Sequence[tuple[Any, str | None]]
    ) -> tuple[list[dict[str, Any]], str]:
        """:meth:`output_messages` and the value its JSON parses to."""
        rendered = []
        for message, finish in outputs:
            out = self._message(message, default_role="assistant")
            if finish:
                out["finish_reason"] = _FINISH.get(finish, finish)
            else:
                has_calls = any(p.get("type") == "tool_call" for p in out["parts"])
                out["finish_reason"] = "tool_call" if has_calls else "stop"
            rendered.append(out)
        return self._fit_messages_data(rendered)

    def run_input(self, inputs: Any) -> str:
        """A run's input as GenAI input messages: its messages if it has any, else one user message."""
        return self.run_input_data(inputs)[1]

    def run_input_data(self, inputs: Any) -> tuple[list[dict[str, Any]], str]:
        """:meth:`run_input` and the value its JSON parses to."""
        messages = _messages_in(inputs)
        if messages is not None:
            return self.input_messages_data(messages)
        return self._fit_messages_data([{"role": "user", "parts": [self._text_part(inputs)]}])

    def run_output(self, outputs: Any) -> str:
        """A run's output as one GenAI output message: its last message, else the output as text."""
        messages = _messages_in(outputs)
        if messages:
            return self.output_messages([(messages[-1], None)])
        return self._fit_messages(
            [{"role": "assistant", "parts": [self._text_part(outputs)], "finish_reason": "stop"}]
        )

    def value(self, obj: Any) -> str:
        """A tool argument / result: text stays text, a tool message its content, anything else JSON."""
        if getattr(obj, "type", None) == "tool" and hasattr(obj, "content"):
            obj = obj.content
        if isinstance(obj, str):
            return self.text(obj)
        return self.json(obj)

    def value_data(self, obj: Any) -> tuple[Any, str]:
        """:meth:`value` and the value it parses to as JSON (:data:`gj.NOT_JSON` for plain text)."""
        if getattr(obj, "type", None) == "tool" and hasattr(obj, "content"):
            obj = obj.content
        if isinstance(obj, str):
            text = self.text(obj)
            return gj.load(text), text
        return self._fit_data(self._jsonable(obj, 0))

    def json(self, obj: Any) -> str:
        """Any value as JSON."""
        return self._fit(self._jsonable(obj, 0))

    def text(self, text: str) -> str:
        """A plain string, redacted and truncated."""
        return _cut(self._redact(text), max(self.limit - len(TRUNCATION_MARKER), 0))

    # -- internals -------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        if self.redact is None:
            return text
        try:
            out = self.redact(text)
        except Exception:
            return REDACTION_FAILED
        return out if isinstance(out, str) else REDACTION_FAILED

    def _text_part(self, value: Any) -> dict[str, Any]:
        if isinstance(value, str):
            return {"type": "text", "content": self._redact(value)}
        return {"type": "text", "content": _dumps(self._jsonable(value, 0))}

    def _message(self, m: Any, default_role: str = "user") -> dict[str, Any]:
        role: str | None
        content: Any
        tool_calls: Any = None
        tool_call_id: Any = None
        name: Any = None
        if isinstance(m, str):
            role, content = default_role, m
        elif isinstance(m, (tuple, list)) and len(m) == 2 and isinstance(m[0], str):
            role, content = _ROLES.get(m[0], m[0]), m[1]
        elif type(m) is not dict and (fields := _plain_fields(m)) is not None:
            # a LangChain message (never a Mapping, see _plain_fields): its fields, read once
            mtype = fields.get("type")
            role = _ROLES.get(mtype) if isinstance(mtype, str) else None
            if role is None:
                custom = fields.get("role", _extra(m, "role"))
                role = custom if isinstance(custom, str) else default_role
            content = fields.get("content")
            tool_calls = fields.get("tool_calls", _MISSING)
            tool_calls = _extra(m, "tool_calls") if tool_calls is _MISSING else tool_calls
            tool_call_id = fields.get("tool_call_id", _MISSING)
            tool_call_id = _extra(m, "tool_call_id") if tool_call_id is _MISSING else tool_call_id
            name = fields.get("name")
        elif type(m) is dict or isinstance(m, Mapping):
            raw_role = m.get("role") or m.get("type") or default_role
            role = _ROLES.get(raw_role, raw_role) if isinstance(raw_role, str) else default_role
            content, tool_calls = m.get("content"), m.get("tool_calls")
            role = role if isinstance(role, str) else default_role
            tool_call_id, name = m.get("tool_call_id"), m.get("name")
        elif hasattr(m, "content") and hasattr(m, "type"):
            mtype = m.type
            role = _ROLES.get(mtype) if isinstance(mtype, str) else None
            if role is None:
                custom = getattr(m, "role", None)
                role = custom if isinstance(custom, str) else default_role
            content = m.content
            tool_calls = _attr(m, "tool_calls")
            tool_call_id = _attr(m, "tool_call_id")
            name = _attr(m, "name")
        else:
            return {"role": default_role, "parts": [self._text_part(m)]}
        role = role or default_role
        if role == "tool":
            parts = [
                {
                    "type": "tool_call_response",
                    "id": tool_call_id if isinstance(tool_call_id, str) else None,
                    "response": self._content_value(content),
                }
            ]
        else:
            parts = self._parts(content, skip_tool_blocks=bool(tool_calls))
            if isinstance(tool_calls, list):
                for call in tool_calls[:_MAX_ITEMS]:
                    if type(call) is dict or isinstance(call, Mapping):
                        parts.append(self._tool_call(call))
        out: dict[str, Any] = {"role": role, "parts": parts}
        if isinstance(name, str) and name:
            out["name"] = self._redact(name)
        return out

    def _tool_call(self, call: Mapping[str, Any]) -> dict[str, Any]:
        function = call.get("function")  # OpenAI dict shape
        if function is not None and isinstance(function, Mapping):
            name, args = function.get("name"), function.get("arguments")
        else:
            name, args = call.get("name"), call.get("args", call.get("arguments"))
        return {
            "type": "tool_call",
            "id": call.get("id") if isinstance(call.get("id"), str) else None,
            "name": name if isinstance(name, str) else None,
            "arguments": self._jsonable(args, 1),
        }

    def _content_value(self, content: Any) -> Any:
        if isinstance(content, str):
            return self._redact(content)
        return self._jsonable(content, 1)

    def _parts(self, content: Any, skip_tool_blocks: bool) -> list[dict[str, Any]]:
        if content is None or content == "":
            return []
        if isinstance(content, str):
            return [{"type": "text", "content": self._redact(content)}]
        if not isinstance(content, list):
            return [self._text_part(content)]
        parts: list[dict[str, Any]] = []
        for block in content[:_MAX_ITEMS]:
            if isinstance(block, str):
                parts.append({"type": "text", "content": self._redact(block)})
            elif type(block) is dict or isinstance(block, Mapping):
                btype = block.get("type")
                if btype == "text":
                    parts.append({"type": "text", "content": self._content_value(block.get("text"))})
                elif btype in ("reasoning", "thinking"):
                    value = block.get(btype) or block.get("text") or ""
                    parts.append({"type": "reasoning", "content": self._content_value(value)})
                elif btype in ("tool_use", "tool_call", "function_call") and skip_tool_blocks:
                    continue
                else:
                    parts.append({"type": btype if isinstance(btype, str) else "unknown"})
            else:
                parts.append(self._text_part(block))
        return parts

    def _jsonable(self, obj: Any, depth: int) -> Any:
        kind = type(obj)  # exact builtin types first (the common case), as the general path does them
        if kind is str:
            return obj if self.redact is None else self._redact(obj)
        if kind is dict and depth < _MAX_DEPTH and len(obj) <= _MAX_ITEMS:
            plain = self.redact is None
            out: dict[str, Any] = {}
            for k, v in obj.items():
                out[k if plain and type(k) is str else self._key(k)] = self._jsonable(v, depth + 1)
            return out
        if kind is list and depth < _MAX_DEPTH:
            return [self._jsonable(v, depth + 1) for v in obj[:_MAX_ITEMS]]
        return self._jsonable_any(obj, depth)

    def _key(self, k: Any) -> str:
        key = k if isinstance(k, str) else (str(k) if isinstance(k, (int, float, bool)) else None)
        return self._redact(key) if key is not None else f"<{type(k).__name__}>"

    def _jsonable_any(self, obj: Any, depth: int) -> Any:
        if obj is None or isinstance(obj, (bool, int)):
            return obj
        if isinstance(obj, str):
            return self._redact(obj)
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else str(obj)
        if depth >= _MAX_DEPTH:
            return "<max depth>"
        if isinstance(obj, Mapping):
            out: dict[str, Any] = {}
            for i, (k, v) in enumerate(obj.items()):
                if i >= _MAX_ITEMS:
                    out[TRUNCATION_MARKER] = True
                    break
                out[self._key(k)] = self._jsonable(v, depth + 1)
            return out
        if isinstance(obj, (list, tuple, set, frozenset)):
            items = list(obj)[:_MAX_ITEMS] if not isinstance(obj, (list, tuple)) else obj[:_MAX_ITEMS]
            return [self._jsonable(v, depth + 1) for v in items]
        if hasattr(obj, "content") and isinstance(getattr(obj, "type", None), str):
            return self._message(obj)
        page_content = getattr(obj, "page_content", None)
        if isinstance(page_content, str):
            return {
                "page_content": self._redact(page_content),
                "metadata": self._jsonable(getattr(obj, "metadata", None), depth + 1),
            }
        if isinstance(obj, enum.Enum):
            return self._jsonable(obj.value, depth + 1)
        if isinstance(obj, _SIMPLE_STR_TYPES):
            return self._redact(str(obj))
        if isinstance(obj, (bytes, bytearray)):
            return f"<bytes {len(obj)}>"
        dump = getattr(obj, "model_dump", None)
        if callable(dump):
            try:
                return self._jsonable(dump(), depth + 1)
            except Exception:
                return f"<{type(obj).__name__}>"
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return {
                f.name: self._jsonable(getattr(obj, f.name, None), depth + 1) for f in dataclasses.fields(obj)
            }
        return f"<{type(obj).__name__}>"

    def _fit(self, obj: Any) -> str:
        """Any JSON value within the limit: see the module doc."""
        return self._fit_data(obj)[1]

    def _fit_data(self, obj: Any) -> tuple[Any, str]:
        """:meth:`_fit` and the (JSON-safe) value its text holds."""
        text = _dumps(obj)
        if len(text) <= self.limit:
            return obj, text
        fitted = _fit_value(obj, self.limit)
        return fitted, _dumps(fitted)

    def _fit_messages(self, messages: list[dict[str, Any]]) -> str:
        return self._fit_messages_data(messages)[1]

    def _fit_messages_data(self, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
        """GenAI messages within the limit: only what the parts hold is cut, every message is kept.
        Returns the messages as cut (JSON-safe values only: what their JSON parses back to) and their
        JSON."""
        text = _dumps(messages)
        if len(text) <= self.limit:
            return messages, text
        slots = [
            (part, key)
            for message in messages
            for part in message.get("parts", ())
            if isinstance(part, dict)
            for key in _CONTENT_KEYS
            if key in part
        ]
        values = [part[key] for part, key in slots]
        fitted = _fit_value(values, self.limit, trim_top=False)
        if fitted is values:
            return messages, text  # the content fits; only the structure made the JSON longer than the limit
        for (part, key), value in zip(slots, fitted, strict=True):
            part[key] = value
        return messages, _dumps(messages)


def _cut(text: str, cap: int) -> str:
    """``text`` cut to ``cap`` characters plus the marker, unless cutting would not shorten it."""
    return text if len(text) <= cap + len(TRUNCATION_MARKER) else text[:cap] + TRUNCATION_MARKER


def _cap_strings(obj: Any, cap: int) -> Any:
    if isinstance(obj, str):
        return _cut(obj, cap)
    if isinstance(obj, dict):
        return {k: _cap_strings(v, cap) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cap_strings(v, cap) for v in obj]
    return obj


def _content_len(obj: Any, cap: int | None = None) -> int:
    """Total length of the string values (cut at ``cap``); keys, numbers and punctuation are structure."""
    if isinstance(obj, str):
        return len(obj) if cap is None else min(len(obj), cap + len(TRUNCATION_MARKER))
    if isinstance(obj, dict):
        return sum(_content_len(v, cap) for v in obj.values())
    if isinstance(obj, list):
        return sum(_content_len(v, cap) for v in obj)
    return 0


def _longest_string(obj: Any) -> int:
    if isinstance(obj, str):
        return len(obj)
    if isinstance(obj, dict):
        return max((_longest_string(v) for v in obj.values()), default=0)
    if isinstance(obj, list):
        return max((_longest_string(v) for v in obj), default=0)
    return 0


def _blank(obj: Any) -> Any:
    """The structure of a value: every string value emptied."""
    if isinstance(obj, str):
        return ""
    if isinstance(obj, dict):
        return {k: _blank(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_blank(v) for v in obj]
    return obj


def _trim(obj: Any, n: int) -> Any:
    """Every container shortened to its first ``n`` items, a marker in place of the rest."""
    if isinstance(obj, dict):
        out = {k: _trim(v, n) for i, (k, v) in enumerate(obj.items()) if i < n}
        if len(obj) > n:
            out[TRUNCATION_MARKER] = True
        return out
    if isinstance(obj, list):
        items = [_trim(v, n) for v in obj[:n]]
        return [*items, TRUNCATION_MARKER] if len(obj) > n else items
    return obj


def _largest(fits: Callable[[int], bool], high: int) -> int | None:
    """The largest ``k`` in ``0..high`` with ``fits(k)`` (``fits`` is monotonic), or ``None``."""
    best, low = None, 0
    while low <= high:
        mid = (low + high) // 2
        if fits(mid):
            best, low = mid, mid + 1
        else:
            high = mid - 1
    return best


def _structure_len(values: list[Any]) -> int:
    """JSON length of the containers among ``values`` with their strings emptied (a string alone has no
    structure)."""
    return sum(len(_dumps(_blank(v))) for v in values if isinstance(v, (dict, list)))


def _fit_value(obj: Any, limit: int, *, trim_top: bool = True) -> Any:
    """``obj`` with its string values cut so their total fits ``limit`` (``obj`` itself if it already
    fits), its containers first shortened if their structure alone is longer than ``limit`` and
    :data:`_STRUCTURE_FLOOR`. ``trim_top=False``: ``obj`` is a list of values fitted together (the
    contents of message parts), the list itself never shortened."""
    values: list[Any] = [obj] if trim_top else obj
    room = max(limit, _STRUCTURE_FLOOR)
    if _structure_len(values) > room:
        widest = max((_widest(v) for v in values), default=0)
        n = _largest(lambda k: _structure_len([_trim(v, k) for v in values]) <= room, widest)
        values = [_trim(v, n or 0) for v in values]
    elif _content_len(values) <= limit:
        return obj
    cap = _largest(lambda k: _content_len(values, k) <= limit, _longest_string(values))
    fitted = [_cap_strings(v, cap or 0) for v in values]
    return fitted[0] if trim_top else fitted


def _widest(obj: Any) -> int:
    """The largest number of items of any container in ``obj``."""
    if isinstance(obj, dict):
        return max([len(obj), *(_widest(v) for v in obj.values())])
    if isinstance(obj, list):
        return max([len(obj), *(_widest(v) for v in obj)])
    return 0


def _dumps(obj: Any) -> str:
    """Compact JSON; orjson on the common path (~3x faster), the stdlib for what orjson refuses
    (integers over 64 bits, lone surrogates) so the output is the same either way."""
    try:
        return orjson.dumps(obj, default=_default).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_default)


def _default(obj: Any) -> str:
    return f"<{type(obj).__name__}>"


_LACKS: dict[tuple[type, str], bool] = {}


def _pydantic_getattr(cls: type) -> bool:
    """Whether attribute lookups on instances of ``cls`` are pydantic (v2) ``BaseModel``'s own."""
    hook = getattr(cls, "__getattr__", None)
    return (
        getattr(hook, "__module__", None) == "pydantic.main"
        and getattr(hook, "__qualname__", None) == "BaseModel.__getattr__"
        and getattr(cls, "__getattribute__", None) is object.__getattribute__
    )


def _model_lacks(cls: type, name: str) -> bool:
    """Whether ``cls`` is a pydantic (v2) model with no field, private attribute or class attribute
    ``name`` and pydantic's own attribute lookup (remembered per class and name)."""
    key = (cls, name)
    lacks = _LACKS.get(key)
    if lacks is None:
        fields = getattr(cls, "__pydantic_fields__", None)
        private = getattr(cls, "__private_attributes__", None)
        lacks = (
            isinstance(fields, dict)
            and isinstance(private, dict)
            and name not in fields
            and name not in private
            and not hasattr(cls, name)
            and _pydantic_getattr(cls)
        )
        if len(_LACKS) < 4096:
            _LACKS[key] = lacks
    return lacks


def _attr(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)``. A pydantic model lacking the attribute (``HumanMessage.tool_calls``)
    is read as pydantic's ``__getattr__`` would (instance dict, then extras) without the exception that
    costs ~2 µs there."""
    if not _model_lacks(type(obj), name):
        return getattr(obj, name, None)
    own = getattr(obj, "__dict__", None)
    if own and name in own:
        return own[name]
    extra = getattr(obj, "__pydantic_extra__", None)
    return extra.get(name) if isinstance(extra, dict) else None


_MISSING: Any = object()
_MESSAGE_FIELDS = ("type", "content", "role", "tool_calls", "tool_call_id", "name")
_PLAIN: dict[type, bool] = {}


def _plain_fields(m: Any) -> dict[str, Any] | None:
    """The instance dict of a pydantic (v2) message whose fields are read from it plainly (no
    properties or class attributes by the names :meth:`Renderer._message` reads, pydantic's own
    attribute lookup, ``type`` and ``content`` set), else ``None``. One dict lookup per field instead
    of a ``getattr`` that, on a missing field, goes through pydantic's ``__getattr__``."""
    cls = type(m)
    plain = _PLAIN.get(cls)
    if plain is None:
        plain = (
            isinstance(getattr(cls, "__pydantic_fields__", None), dict)
            and _pydantic_getattr(cls)
            and not any(hasattr(cls, name) for name in _MESSAGE_FIELDS)
            and not issubclass(cls, Mapping)  # Renderer._message reads a Mapping as one, before this
        )
        if len(_PLAIN) < 4096:
            _PLAIN[cls] = plain
    if not plain:
        return None
    fields = getattr(m, "__dict__", None)
    return fields if type(fields) is dict and "content" in fields and "type" in fields else None


def _extra(m: Any, name: str) -> Any:
    """A pydantic model's extra field ``name`` (``extra="allow"``), or ``None``."""
    extra = getattr(m, "__pydantic_extra__", None)
    return extra.get(name) if isinstance(extra, dict) else None


def _messages_in(value: Any) -> list[Any] | None:
    """The message list inside a run's input/output (``{"messages": [...]}``, a list of messages,
    one message), or ``None``."""
    if type(value) is dict or isinstance(value, Mapping):
        messages = value.get("messages")
        if isinstance(messages, (list, tuple)):
            return list(messages)
        return None
    if isinstance(value, (list, tuple)) and value and all(_is_message_like(v) for v in value):
        return list(value)
    if _is_message_like(value) and not isinstance(value, (str, tuple)):
        return [value]
    return None


def _is_message_like(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, tuple):
        return len(value) == 2 and isinstance(value[0], str)
    if type(value) is dict or isinstance(value, Mapping):
        return "role" in value and "content" in value
    return hasattr(value, "content") and isinstance(getattr(value, "type", None), str)
