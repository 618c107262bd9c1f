"""``claude-code/<model>``: a litellm custom provider that runs the Claude Code CLI.

Each call runs ``claude -p --output-format json --model <model>`` with the conversation on stdin (the
system message through ``--system-prompt``), and takes the answer, the token usage and the
``total_cost_usd`` Claude Code reports; the cost is logged with ``cost_source: provider``.
The executable is ``llm.claude_path``, else ``$POP_CLAUDE_PATH``, else ``claude`` on ``PATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from pop_nb.errors import ProviderError
from pop_nb.llm.providers import Answer, Request
from pop_nb.llm.registry import Provider
from pop_nb.redaction import redact

DEFAULT_TIMEOUT_S = 600.0
_TRANSIENT_HINTS = ("rate limit", "rate_limit", "overloaded", "529", "503", "timed out")


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def build_command(model: str, messages: list[dict[str, Any]], claude_path: str) -> tuple[list[str], str]:
    """The argv and the stdin text for one call."""
    system = "\n\n".join(_content(m) for m in messages if m.get("role") == "system")
    turns = [m for m in messages if m.get("role") != "system"]
    if len(turns) == 1:
        prompt = _content(turns[0])
    else:  # an earlier exchange: hand it over as a transcript
        prompt = "\n\n".join(f"{m.get('role', 'user').capitalize()}: {_content(m)}" for m in turns)
    argv = [claude_path, "-p", "--output-format", "json", "--model", model]
    if system:
        argv += ["--system-prompt", system]
    return argv, prompt


def run_claude(
    model: str, messages: list[dict[str, Any]], claude_path: str, timeout_s: float
) -> dict[str, Any]:
    """Run the CLI once and return its result object; raise :class:`ProviderError` if it failed."""
    argv, prompt = build_command(model, messages, claude_path)
    try:
        done = subprocess.run(
            argv, input=prompt, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except FileNotFoundError:
        raise ProviderError(
            "ClaudeCodeNotFound",
            f"claude-code/{model}: no executable {claude_path!r}. Fix: install Claude Code, or set "
            "POP_CLAUDE_PATH (or llm.claude_path) to the `claude` executable",
        ) from None
    except subprocess.TimeoutExpired:
        raise ProviderError(
            "Timeout", f"claude-code/{model}: no answer within {timeout_s:g}s", transient=True
        ) from None
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError:
        result = None
    if done.returncode != 0 or not isinstance(result, dict) or result.get("is_error"):
        said = (result or {}).get("result") if isinstance(result, dict) else None
        detail = redact(str(said or done.stderr or done.stdout).strip())[:1000]
        transient = any(hint in detail.lower() for hint in _TRANSIENT_HINTS)
        raise ProviderError(
            "RateLimitError" if transient else "ClaudeCodeError",
            f"claude-code/{model} exited with code {done.returncode}: {detail}",
            transient=transient,
        )
    return result


def answer(request: Request) -> Answer:
    path = request.params.get("claude_path") or os.environ.get("POP_CLAUDE_PATH") or "claude"
    result = run_claude(request.model, request.messages, str(path), request.timeout or DEFAULT_TIMEOUT_S)
    usage = result.get("usage") or {}
    cached = int(usage.get("cache_read_input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    reported = result.get("total_cost_usd")
    return Answer(
        text=str(result.get("result") or ""),
        prompt_tokens=int(usage.get("input_tokens") or 0) + cached + written,
        completion_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=cached,
        cache_write_tokens=written,
        cost_usd=None if reported is None else float(reported),
    )


PROVIDER = Provider("claude-code", answer, pricing="reported", own_params=frozenset({"claude_path"}))
