"""A small Anthropic-compatible HTTP server on 127.0.0.1 for integration tests (no network, no key).

Serves ``POST /v1/messages`` in the wire format the Messages API sends today: a JSON ``message`` or,
when ``stream`` is true, the SSE events ``message_start`` (with the input usage), ``content_block_start``
/ ``content_block_delta`` / ``content_block_stop`` per block, ``ping``, ``message_delta`` (stop reason and
the cumulative usage) and ``message_stop``. Usage carries the cache-write breakdown by lifetime
(``cache_creation.ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens``) beside
``cache_creation_input_tokens`` and ``cache_read_input_tokens``; Anthropic's ``input_tokens`` is the
uncached part only.

The answer is a short text plus a ``tool_use`` block for the first offered tool when tools were offered
and the last user turn is not a tool result, else text. A request for the model ``OVERLOADED_MODEL``
gets HTTP 529 with an ``overloaded_error`` body, as the API answers when it is overloaded (with
``retry-after-ms: 10`` so a client's retries stay fast). Every request body is kept in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "claude-stub-4-5-20260101"
OVERLOADED_MODEL = "claude-stub-overloaded"
ANSWER = "The stub says hello."
TOOL_PREAMBLE = "Let me check."
TOOL_INPUT = {"city": "Paris"}
UNCACHED_INPUT, CACHE_READ, CACHE_WRITE_5M, CACHE_WRITE_1H, OUTPUT = 12, 1500, 150, 53, 9
CACHE_WRITE = CACHE_WRITE_5M + CACHE_WRITE_1H  # 203, the number the API reports as written to the cache
USAGE: dict[str, Any] = {
    "input_tokens": UNCACHED_INPUT,
    "cache_creation_input_tokens": CACHE_WRITE,
    "cache_read_input_tokens": CACHE_READ,
    "cache_creation": {
        "ephemeral_5m_input_tokens": CACHE_WRITE_5M,
        "ephemeral_1h_input_tokens": CACHE_WRITE_1H,
    },
    "output_tokens": OUTPUT,
    "service_tier": "standard",
}


class StubAnthropic:
    """Start with ``with StubAnthropic() as stub:``; pass ``stub.base_url`` to ``ChatAnthropic(base_url=)``.

    ``usage`` replaces the usage object the server reports (e.g. an older shape without the breakdown).
    """

    def __init__(self, usage: dict[str, Any] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.usage = dict(USAGE if usage is None else usage)
        self.first_chunk_delay = 0.0  # seconds a stream waits before its first event
        self._counter = 0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # silence
                return

            def do_POST(self) -> None:
                if self.path.split("?")[0].rstrip("/") != "/v1/messages":
                    self.send_error(404)
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                with stub._lock:
                    stub.requests.append(body)
                    stub._counter += 1
                    message_id = f"msg_stub_{stub._counter:02d}"
                if body.get("model") == OVERLOADED_MODEL:
                    error = {
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"},
                        "request_id": f"req_stub_{stub._counter:02d}",
                    }
                    self._json(529, error, {"retry-after-ms": "10"})
                    return
                content, stop_reason = _answer(body)
                if body.get("stream"):
                    self._stream(message_id, content, stop_reason)
                    return
                self._json(
                    200,
                    {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": MODEL,
                        "content": content,
                        "stop_reason": stop_reason,
                        "stop_sequence": None,
                        "usage": stub.usage,
                    },
                )

            def _json(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", str(payload.get("request_id", "req_stub")))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, message_id: str, content: list[dict[str, Any]], stop_reason: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()

                def event(name: str, data: dict[str, Any]) -> None:
                    self.wfile.write(
                        f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()
                    )
                    self.wfile.flush()

                start_usage = {**stub.usage, "output_tokens": 1}  # output counted so far
                start = {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": MODEL,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                }
                time.sleep(stub.first_chunk_delay)
                event("message_start", {"message": start})
                for index, block in enumerate(content):
                    if block["type"] == "text":
                        event(
                            "content_block_start",
                            {"index": index, "content_block": {"type": "text", "text": ""}},
                        )
                        event("ping", {})
                        for word in block["text"].split(" "):
                            delta = {"type": "text_delta", "text": word + " "}
                            event("content_block_delta", {"index": index, "delta": delta})
                    else:  # tool_use: the input arrives as partial JSON
                        opening = {**block, "input": {}}
                        event("content_block_start", {"index": index, "content_block": opening})
                        arguments = json.dumps(block["input"])
                        for piece in (arguments[:5], arguments[5:]):
                            delta = {"type": "input_json_delta", "partial_json": piece}
                            event("content_block_delta", {"index": index, "delta": delta})
                    event("content_block_stop", {"index": index})
                # message_delta carries the cumulative counts (no lifetime breakdown: that is message_start's)
                final_usage = {
                    k: v
                    for k, v in stub.usage.items()
                    if k
                    in (
                        "input_tokens",
                        "cache_creation_input_tokens",
                        "cache_read_input_tokens",
                        "output_tokens",
                    )
                }
                delta = {"stop_reason": stop_reason, "stop_sequence": None}
                event("message_delta", {"delta": delta, "usage": final_usage})
                event("message_stop", {})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> StubAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _is_tool_result(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )


def _answer(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    messages = body.get("messages") or []
    tools = body.get("tools") or []
    last = messages[-1] if messages else {}
    if tools and last.get("role") == "user" and not _is_tool_result(last):
        call = {"type": "tool_use", "id": "toolu_stub_1", "name": tools[0]["name"], "input": TOOL_INPUT}
        return [{"type": "text", "text": TOOL_PREAMBLE}, call], "tool_use"
    return [{"type": "text", "text": ANSWER}], "end_turn"
