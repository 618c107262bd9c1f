"""The server of one ``local/`` model: llama-cpp-python's OpenAI-compatible app on a loopback port,
started by :func:`pop_nb.llm.local.server_url` as::

    python -m pop_nb.llm.local_serve <gguf> <name> <state file> <idle seconds>

It writes the state file (pid, port) once it listens; rewrites each chat request as llama-cpp-python
takes it (:func:`as_llama_cpp_takes_it`); stops after ``idle`` seconds without a request; and removes
its state file when it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pop_nb.store.atomic import atomic_write_json

CHECK_EVERY_S = 2.0


def as_llama_cpp_takes_it(body: bytes) -> bytes:
    """A chat request as llama-cpp-python takes it: OpenAI's ``json_schema`` response format becomes
    its ``json_object`` with a ``schema`` (or a grammar, see :func:`bounded_grammar`); and without a
    ``seed`` it gets seed 0, so the same request gets the same answer (a local model is for trying a
    pipeline out: runs should repeat)."""
    try:
        request = json.loads(body)
        if not isinstance(request, dict):
            return body
        request.setdefault("seed", 0)
        wanted = request.get("response_format") or {}
        if wanted.get("type") == "json_schema":
            schema = grammar_sized((wanted.get("json_schema") or {}).get("schema"))
            grammar = bounded_grammar(schema) if isinstance(schema, dict) else None
            if grammar is not None:
                request["grammar"] = grammar
                del request["response_format"]
            else:
                request["response_format"] = {"type": "json_object", **({"schema": schema} if schema else {})}
    except (ValueError, AttributeError):
        return body  # the app answers a malformed request itself
    return json.dumps(request).encode()


MAX_GRAMMAR_LENGTH = 500


def grammar_sized(schema: Any) -> Any:
    """``schema`` with its string length bounds past MAX_GRAMMAR_LENGTH lowered to it: llama.cpp spells
    a length bound out as that many nested rules and aborts (taking the server down) on a grammar too
    large, and a string left unbounded lets a small model write until its context is full, which cuts
    the JSON off. Validation still checks the real bounds on the answer."""
    if isinstance(schema, list):
        return [grammar_sized(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    literal = ("const", "enum", "default", "examples")  # values, not schemas
    sized = {k: v if k in literal else grammar_sized(v) for k, v in schema.items()}
    for bound in ("minLength", "maxLength"):
        if isinstance(sized.get(bound), int) and sized[bound] > MAX_GRAMMAR_LENGTH:
            sized[bound] = MAX_GRAMMAR_LENGTH
    return sized


DIGITS = "[0-9] [0-9]? [0-9]? [0-9]?"  # up to four decimals: a confidence needs no more
UNIT = {"number": f'("0" ("." {DIGITS})? | "1" ("." "0" "0"? "0"? "0"?)?)', "integer": '("0" | "1")'}


def bounded_grammar(schema: dict[str, Any]) -> str | None:
    """The GBNF grammar of ``schema`` with its numbers bounded to [0, 1] (a confidence, a score) held
    to that range, which llama-cpp-python's own conversion leaves out (it bounds types, lengths and
    item counts, not values); None if the schema has no such number (its own conversion does)."""
    try:
        from llama_cpp.llama_grammar import SchemaConverter
    except ImportError:
        return None
    marks: dict[str, str] = {}

    def mark(node: Any) -> Any:
        if isinstance(node, list):
            return [mark(item) for item in node]
        if not isinstance(node, dict):
            return node
        low, high = node.get("minimum"), node.get("maximum")
        bounded = isinstance(low, (int, float)) and isinstance(high, (int, float)) and 0 <= low <= high <= 1
        if node.get("type") in UNIT and bounded:  # within [0, 1]: narrower bounds are left to validation
            key = f"pop-unit-{len(marks)}"
            marks[key] = UNIT[node["type"]]
            return {"const": key}
        return {
            k: mark(v) if k not in ("const", "enum", "default", "examples") else v for k, v in node.items()
        }

    marked = mark(schema)
    if not marks:
        return None
    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    converter.visit(converter.resolve_refs(marked, "request"), "")
    grammar: str = converter.format_grammar()
    for key, rule in marks.items():
        grammar = grammar.replace(f'"\\"{key}\\""', rule)
    return grammar


class Activity:
    """An ASGI wrapper: rewrites chat requests (above) and tells when the last request ended."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.busy = 0
        self.last = time.monotonic()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.busy += 1
        try:
            if scope["path"].endswith("/chat/completions") and scope["method"] == "POST":
                body, more = b"", True
                while more:
                    message = await receive()
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
                rewritten = as_llama_cpp_takes_it(body)
                headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
                scope = {**scope, "headers": [*headers, (b"content-length", str(len(rewritten)).encode())]}
                sent = False

                async def replay() -> dict[str, Any]:
                    nonlocal sent
                    if sent:
                        later: dict[str, Any] = await receive()  # a disconnect, if the client goes away
                        return later
                    sent = True
                    return {"type": "http.request", "body": rewritten, "more_body": False}

                await self.app(scope, replay, send)
            else:
                await self.app(scope, receive, send)
        finally:
            self.busy -= 1
            self.last = time.monotonic()


def main(argv: list[str]) -> int:
    gguf, name, state, idle_s = argv[0], argv[1], Path(argv[2]), float(argv[3])
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    app = Activity(
        create_app(
            server_settings=ServerSettings(host="127.0.0.1", port=0),
            model_settings=[ModelSettings(model=gguf, model_alias=name, n_ctx=4096, verbose=False)],
        )
    )
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))  # loopback only: nobody else on the network reaches it
    listener.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))

    def stop_when_idle() -> None:
        while not server.should_exit:
            time.sleep(CHECK_EVERY_S)
            if not app.busy and time.monotonic() - app.last > idle_s:
                server.should_exit = True

    threading.Thread(target=stop_when_idle, daemon=True, name="pop-local-idle").start()
    atomic_write_json(state, {"pid": os.getpid(), "port": listener.getsockname()[1], "model": name})
    try:
        server.run(sockets=[listener])
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(state.read_text()).get("pid") == os.getpid():
                state.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
