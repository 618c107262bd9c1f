"""Providers are plug-ins: a package adds one with an entry point, and its calls go through litellm,
the request hash, pricing and the usage log like any other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pop_nb.errors import ProviderError
from pop_nb.llm import registry
from pop_nb.llm.pricing import cost_of, needs_price, price_entry, pricing_name

ECHO = """
from pop_nb.llm.providers import Answer
from pop_nb.llm.registry import Provider

def answer(request):
    text = "echo: " + request.messages[-1]["content"]
    return Answer(text=text, prompt_tokens=7, completion_tokens=len(text.split()))

PROVIDER = Provider("echo", answer, pricing="local", own_params=frozenset({"echo_socket"}))
BROKEN = Provider("not-its-name", answer)
"""


def install_plugin(site: Path, entry_points: str) -> None:
    """A package as pip leaves it: the module, and a dist-info with its entry points."""
    (site / "echo_provider.py").write_text(ECHO)
    info = site / "echo_provider-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-provider\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[pop_nb.providers]\n{entry_points}\n")


CALL = """
import json, sys
from pathlib import Path
from pop_nb.llm.client import chat, request_hash
from pop_nb.llm.ledger import Ledger
from pop_nb.llm.registry import own_providers
print(json.dumps(sorted(own_providers())))
try:
    reply = chat("hello there", model=sys.argv[2], ledger=Ledger(Path(sys.argv[1])), echo_socket="/run/a")
    print(json.dumps({"content": reply.content, "cost": reply.cost_usd, "source": reply.cost_source}))
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
print(json.dumps(request_hash("echo/x", [], {"echo_socket": "/a"}) == request_hash("echo/x", [], {})))
"""


def run_with_plugin(tmp_path: Path, entry_points: str, model: str) -> list[object]:
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site, entry_points)
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", CALL, str(tmp_path / "ledger"), model],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_a_package_adds_a_provider_with_an_entry_point(tmp_path: Path) -> None:
    names, reply, unhashed = run_with_plugin(tmp_path, "echo = echo_provider:PROVIDER", "echo/tiny")
    assert names == ["claude-code", "echo", "local", "mock"]
    assert reply == {"content": "echo: hello there", "cost": 0.0, "source": "local"}
    assert unhashed is True  # where it is reached is not part of what is asked
    [row] = [json.loads(line) for line in (tmp_path / "ledger" / "usage.jsonl").read_text().splitlines()]
    assert row["provider"] == "echo" and row["model"] == "echo/tiny"
    assert row["input_tokens"] == 7 and row["cost_usd"] == 0.0 and row["cost_source"] == "local"


def test_a_broken_plugin_breaks_only_its_own_models_and_says_why(tmp_path: Path) -> None:
    entry_points = "echo = echo_provider:BROKEN\nghost = no_such_module:PROVIDER"
    (tmp_path / "one").mkdir()
    names, echo, _ = run_with_plugin(tmp_path / "one", entry_points, "echo/tiny")
    assert names == ["claude-code", "local", "mock"]  # the others still work
    assert isinstance(echo, dict) and echo["error"] == "ProviderError"
    assert "provider 'echo'" in echo["message"] and "not a pop_nb.llm.registry.Provider" in echo["message"]
    (tmp_path / "two").mkdir()
    _, ghost, _ = run_with_plugin(tmp_path / "two", entry_points, "ghost/x")
    assert isinstance(ghost, dict) and "no_such_module" in ghost["message"] and "Fix:" in ghost["message"]


def test_pricing_follows_the_provider_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    from pop_nb.llm.providers import Answer

    def silent(request: object) -> Answer:
        return Answer(text="", prompt_tokens=0, completion_tokens=0)

    monkeypatch.setattr(registry, "_registered", {})
    registry.register(registry.Provider("box", silent, pricing="local", response_schema=True))
    assert pricing_name("mock/openai/gpt-4o-mini") == "gpt-4o-mini"  # imitated
    assert pricing_name("claude-code/sonnet") == "claude-code/sonnet"  # reported
    assert not needs_price("claude-code/sonnet") and not needs_price("box/m") and needs_price("mock/gpt-4o")
    assert cost_of("box/m", 1000, 1000) == (0.0, "local")
    assert price_entry("box/m") == {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0}
    # a pop.toml price wins even for a local model (a user who wants to count electricity)
    assert cost_of("box/m", 1000, 0, overrides={"box/m": {"input_cost_per_token": 1e-6}})[1] == "price_map"
    assert registry.own_provider("gpt-4o") is None and registry.own_provider("openai/gpt-4o") is None


def test_a_model_of_a_broken_provider_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_declared", lambda: ({}, {"gone": "it cannot be imported (x: boom)"}))
    with pytest.raises(ProviderError, match=r"provider 'gone'.*boom.*Fix: reinstall"):
        registry.own_provider("gone/model")
