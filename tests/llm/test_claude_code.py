"""``claude-code/<model>`` through a fake ``claude`` executable that prints what the real CLI prints."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from pop_nb.errors import LLMError
from pop_nb.llm.client import chat
from pop_nb.llm.ledger import Ledger

FAKE = """#!{python}
import json, sys
argv = sys.argv[1:]
prompt = sys.stdin.read()
with open({log!r}, "a") as fh:
    fh.write(json.dumps({{"argv": argv, "stdin": prompt}}) + "\\n")
if "fail" in prompt:
    print(json.dumps({{"type": "result", "subtype": "error_during_execution", "is_error": True,
                      "result": "{failure}"}}))
    sys.exit(1)
print(json.dumps({{
    "type": "result", "subtype": "success", "is_error": False, "num_turns": 1,
    "result": "claude: " + prompt.splitlines()[-1], "session_id": "s-1", "total_cost_usd": 0.0421,
    "usage": {{"input_tokens": 12, "cache_read_input_tokens": 3000, "cache_creation_input_tokens": 150,
              "output_tokens": 40}},
}}))
"""


def fake_claude(tmp_path: Path, failure: str = "Invalid API key") -> tuple[Path, Path]:
    import sys

    log = tmp_path / "claude-calls.jsonl"
    exe = tmp_path / "claude"
    exe.write_text(FAKE.format(python=sys.executable, log=str(log), failure=failure))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe, log


def test_answer_usage_and_reported_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe, log = fake_claude(tmp_path)
    monkeypatch.setenv("POP_CLAUDE_PATH", str(exe))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Summarise X."}]
    reply = chat(messages, model="claude-code/sonnet", ledger=Ledger(tmp_path))
    assert reply.content == "claude: Summarise X."
    [call] = [json.loads(line) for line in log.read_text().splitlines()]
    assert call["argv"][:5] == ["-p", "--output-format", "json", "--model", "sonnet"]
    assert call["argv"][5:] == ["--system-prompt", "Be brief."] and call["stdin"] == "Summarise X."
    [row] = [json.loads(line) for line in (tmp_path / "usage.jsonl").read_text().splitlines()]
    assert row["cost_usd"] == 0.0421 and row["cost_source"] == "provider"
    assert row["input_tokens"] == 12 + 3000 + 150 and row["cached_tokens"] == 3000
    assert row["output_tokens"] == 40 and row["provider"] == "claude-code"


def test_path_from_llm_settings_and_failures(tmp_path: Path) -> None:
    exe, log = fake_claude(tmp_path, failure="Invalid API key. Please run /login")
    with pytest.raises(LLMError) as info:
        chat("please fail", model="claude-code/opus", claude_path=str(exe), ledger=Ledger(tmp_path))
    assert info.value.error_type == "ClaudeCodeError" and "Invalid API key" in str(info.value)
    assert len(log.read_text().splitlines()) == 1  # a permanent failure is not retried

    with pytest.raises(LLMError, match=r"ClaudeCodeNotFound.*POP_CLAUDE_PATH"):
        chat("hi", model="claude-code/opus", claude_path=str(tmp_path / "nope"))


def test_overload_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pop_nb.llm import client

    exe, log = fake_claude(tmp_path, failure="API Error: 529 overloaded")
    monkeypatch.setattr(client, "_sleep", lambda s: None)
    with pytest.raises(LLMError) as info:
        chat("fail again", model="claude-code/opus", claude_path=str(exe), max_retries=2)
    assert info.value.error_type == "RateLimitError" and "after 3 attempts" in str(info.value)
    assert len(log.read_text().splitlines()) == 3
