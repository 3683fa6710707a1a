"""A small OpenAI-compatible HTTP server on 127.0.0.1 for integration tests (no network, no key).

Serves ``POST /v1/chat/completions``: non-streaming JSON, or SSE chunks when ``stream`` is true (with a
final usage-only chunk when ``stream_options.include_usage`` is set). The answer is a tool call to
the first offered tool when the last message is from the user and tools were offered, else text.
Usage includes ``prompt_tokens_details.cached_tokens`` and ``completion_tokens_details.reasoning_tokens``.
Every request body is kept in ``requests`` for assertions; any ``GET`` answers ``pong``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "gpt-stub-2024-01-01"
FINGERPRINT = "fp_stub"
USAGE = {
    "prompt_tokens": 42,
    "completion_tokens": 9,
    "total_tokens": 51,
    "prompt_tokens_details": {"cached_tokens": 32, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 4, "audio_tokens": 0},
}
ANSWER = "The stub says hello."


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # many concurrent clients (the default backlog of 5 resets connections)
    daemon_threads = True


class StubOpenAI:
    """Start with ``with StubOpenAI() as stub:``; ``stub.base_url`` goes to ``ChatOpenAI(base_url=...)``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.gets = 0  # GET requests served (any path: 200 "pong")
        self.first_chunk_delay = 0.0  # seconds a stream waits before its first chunk
        self._counter = 0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # silence
                return

            def do_GET(self) -> None:  # anything else a test's code fetches (e.g. with httpx)
                with stub._lock:
                    stub.gets += 1
                data = b"pong"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self.send_error(404)
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                with stub._lock:
                    stub.requests.append(body)
                    stub._counter += 1
                    completion_id = f"chatcmpl-stub-{stub._counter}"
                message, finish = _answer(body)
                if body.get("stream"):
                    self._stream(body, completion_id, message, finish)
                else:
                    payload = {
                        "id": completion_id,
                        "object": "chat.completion",
                        "created": 1_700_000_000,
                        "model": MODEL,
                        "system_fingerprint": FINGERPRINT,
                        "choices": [
                            {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                        ],
                        "usage": USAGE,
                    }
                    data = json.dumps(payload).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            def _stream(
                self, body: dict[str, Any], completion_id: str, message: dict[str, Any], finish: str
            ) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()

                def chunk(delta: dict[str, Any], finish_reason: str | None, usage: Any = None) -> None:
                    event = {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": 1_700_000_000,
                        "model": MODEL,
                        "system_fingerprint": FINGERPRINT,
                        "choices": (
                            [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]
                            if delta is not None
                            else []
                        ),
                        "usage": usage,
                    }
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()

                time.sleep(stub.first_chunk_delay)
                chunk({"role": "assistant", "content": ""}, None)
                if message.get("tool_calls"):
                    for i, call in enumerate(message["tool_calls"]):
                        chunk({"tool_calls": [{"index": i, **call}]}, None)
                else:
                    for word in ANSWER.split(" "):
                        chunk({"content": word + " "}, None)
                chunk({}, finish)
                if (body.get("stream_options") or {}).get("include_usage"):
                    chunk(None, None, USAGE)  # type: ignore[arg-type]
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> StubOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _answer(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    messages = body.get("messages") or []
    tools = body.get("tools") or []
    if tools and messages and messages[-1].get("role") == "user":
        name = tools[0]["function"]["name"]
        call = {
            "id": "call_stub_1",
            "type": "function",
            "function": {"name": name, "arguments": '{"city": "Paris"}'},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    return {"role": "assistant", "content": ANSWER}, "stop"
