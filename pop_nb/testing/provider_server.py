"""A local HTTP server that speaks the OpenAI chat-completions and Anthropic messages protocols.

Point litellm at it with ``api_base`` and its real code paths run (request building, response parsing,
usage, pricing), with no paid provider involved::

    with ProviderServer() as server:
        pop.chat("hi", model="openai/gpt-4o-mini", api_base=server.openai_base, api_key="sk-test")

Answers come from ``server.answer`` (a function of the request body; by default an echo of the last user
message). Faults are queued with :meth:`ProviderServer.fail_next` (a 429 with ``Retry-After``, a 500, a
slow answer). Every request is recorded in ``server.requests``; usage is counted like a tokenizer would
(about four characters a token) so figures look like a provider's.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Fault:
    status: int = 200
    retry_after: float | None = None
    delay_s: float = 0.0
    message: str = "injected fault"
    echo_key: bool = False  # quote the caller's API key in the error, as some providers do on a 401
    finish_reason: str = "stop"  # of a 200 answer: "length" (cut off), "content_filter" (refused)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def count_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def echo(body: dict[str, Any]) -> str:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    return f"echo: {_text_of(users[-1]['content'])}" if users else "echo"


@dataclass
class ProviderServer:
    """Serves on ``127.0.0.1`` at a free port while used as a context manager (or between start/stop)."""

    answer: Callable[[dict[str, Any]], str] = echo
    cached_tokens: int = 0  # reported as cached input tokens on every answer (capped at the prompt)
    requests: list[Request] = field(default_factory=list)
    max_in_flight: int = 0  # the most requests it has been answering at once
    _in_flight: int = 0
    _faults: deque[Fault] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    # -- control --------------------------------------------------------------------------------
    def fail_next(self, *faults: Fault) -> None:
        """Queue faults; each request takes the next one until the queue is empty."""
        with self._lock:
            self._faults.extend(faults)

    def calls(self, path_suffix: str = "") -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith(path_suffix)]

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_port}"

    @property
    def openai_base(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> ProviderServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def setup(self) -> None:
                super().setup()
                # headers and body go out as two writes: without this, Nagle's algorithm and the
                # client's delayed ACK add ~40 ms to every answer
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server._handle(self, body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True, name="provider-server").start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- protocol ---------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append(Request(handler.path, headers, body))
            fault = self._faults.popleft() if self._faults else Fault()
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self._respond(handler, body, headers, fault)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _respond(
        self, handler: BaseHTTPRequestHandler, body: dict[str, Any], headers: dict[str, str], fault: Fault
    ) -> None:
        if fault.delay_s:
            time.sleep(fault.delay_s)
        anthropic = handler.path.rstrip("/").endswith("/messages")
        if fault.status != 200:
            extra = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            kind = "rate_limit_error" if fault.status == 429 else "api_error"
            message = fault.message
            if fault.echo_key:
                key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
                message = f"{message}: Incorrect API key provided: {key}"
            error = {"type": kind, "message": message}
            payload = {"type": "error", "error": error} if anthropic else {"error": {**error, "code": None}}
            self._send(handler, fault.status, payload, extra)
            return
        text = self.answer(body)
        prompt = sum(count_tokens(_text_of(m.get("content"))) + 4 for m in body.get("messages", []))
        if anthropic and body.get("system"):
            prompt += count_tokens(_text_of(body["system"]))
        completion = count_tokens(text)
        cached = min(self.cached_tokens, prompt)
        payload = (
            self._anthropic(body, text, prompt, completion, cached)
            if anthropic
            else self._openai(body, text, prompt, completion, cached, fault.finish_reason)
        )
        self._send(handler, 200, payload, {})

    @staticmethod
    def _openai(
        body: dict[str, Any], text: str, prompt: int, completion: int, cached: int, finish: str
    ) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{time.monotonic_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "unknown"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached},
                # DeepSeek's own names for the same split
                "prompt_cache_hit_tokens": cached,
                "prompt_cache_miss_tokens": prompt - cached,
            },
        }

    @staticmethod
    def _anthropic(
        body: dict[str, Any], text: str, prompt: int, completion: int, cached: int
    ) -> dict[str, Any]:
        return {
            "id": f"msg_{time.monotonic_ns()}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "unknown"),
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            # Anthropic counts cache reads apart from input_tokens
            "usage": {
                "input_tokens": prompt - cached,
                "output_tokens": completion,
                "cache_read_input_tokens": cached,
                "cache_creation_input_tokens": 0,
            },
        }

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any], headers: dict[str, str]
    ) -> None:
        blob = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(blob)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(blob)
