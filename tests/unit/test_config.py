import os
from pathlib import Path

import pytest

from pop_nb.config import load_settings
from pop_nb.errors import ConfigError
from tests.conftest import REPO


def test_pop_toml_under_the_root_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POP_ROOT", raising=False)
    monkeypatch.delenv("POP_DATA_DIR", raising=False)
    (tmp_path / "pop.toml").write_text('max_parallel_tasks = 7\ndata_dir = "jobs"\n')
    settings = load_settings(tmp_path)
    assert settings.root == tmp_path.resolve()
    assert settings.max_parallel_tasks == 7
    assert settings.data == tmp_path.resolve() / "jobs"
    monkeypatch.setenv("POP_MAX_PARALLEL_TASKS", "3")
    assert load_settings(tmp_path).max_parallel_tasks == 3
    assert "POP_ROOT" not in os.environ


def test_personalities_by_name_home_folder_inline_and_default(tmp_path, monkeypatch) -> None:
    from pop_nb.llm.personalities import resolve_personality

    pipelines = tmp_path / "pipelines"
    (pipelines / "personalities").mkdir(parents=True)
    (pipelines / "personalities" / "analyst.md").write_text("You are an analyst.\n")
    home = tmp_path / "home"
    (home / ".pop" / "personalities").mkdir(parents=True)
    (home / ".pop" / "personalities" / "poet.md").write_text("You are a poet.")
    monkeypatch.setenv("HOME", str(home))
    assert resolve_personality("analyst", pipelines) == "You are an analyst."
    assert resolve_personality("poet", pipelines) == "You are a poet."
    assert resolve_personality("Answer in French.", pipelines) == "Answer in French."
    assert resolve_personality(None, pipelines).startswith("You are a careful")  # standard
    assert resolve_personality("nobody", pipelines) is None


def test_settings_that_would_do_nothing_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pop_nb.errors import ConfigError

    monkeypatch.setenv("POP_BROKER_ULR", "redis://localhost:6379/0")
    with pytest.raises(ConfigError, match=r"POP_BROKER_ULR is not a pop-nb setting\. Did you mean"):
        load_settings(tmp_path)
    monkeypatch.delenv("POP_BROKER_ULR")
    monkeypatch.setenv("POP_MAX_RUNING_JOBS", "4")
    with pytest.raises(ConfigError, match="Did you mean 'POP_MAX_RUNNING_JOBS'"):
        load_settings(tmp_path)
    monkeypatch.delenv("POP_MAX_RUNING_JOBS")
    (tmp_path / "pop.toml").write_text("max_paralel_tasks = 3\n")
    with pytest.raises(ConfigError, match=r"'max_paralel_tasks' is not a pop-nb setting\. Did you mean"):
        load_settings(tmp_path)
    (tmp_path / "pop.toml").write_text("max_parallel_tasks = 3\n")
    assert load_settings(tmp_path).max_parallel_tasks == 3


def test_every_variable_pop_nb_reads_or_documents_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # POP_LOCAL_IDLE_S was documented and read by the local provider, yet refused as a typo
    import re

    repo = Path(__file__).resolve().parents[2]
    texts = [p.read_text(encoding="utf-8") for p in (repo / "pop_nb").rglob("*.py")]
    texts += [
        (repo / "README.md").read_text(encoding="utf-8"),
        (repo / "docs/contract.md").read_text("utf-8"),
    ]
    named = {m for text in texts for m in re.findall(r"\bPOP_[A-Z][A-Z0-9_]*[A-Z0-9]\b", text)}
    assert "POP_LOCAL_IDLE_S" in named and "POP_MAX_RUNNING_JOBS" in named
    values = {
        "POP_KERNEL_PRELOAD": "[]",
        "POP_MODEL_SCORES": "{}",
        "POP_PRICES": "{}",
        "POP_KERNEL_START": "spawn",
        "POP_LLM_CACHE": "replay",
        "POP_OTEL": "{}",
    }
    for name in sorted(named):
        monkeypatch.setenv(
            name, values.get(name, "7" if name.endswith(("_S", "_JOBS", "_TASKS", "RIES")) else "x")
        )
    monkeypatch.setenv("POP_ROOT", str(tmp_path))
    monkeypatch.setenv("POP_DATA_DIR", str(tmp_path / "data"))
    assert load_settings(tmp_path).max_running_jobs == 7


def test_the_root_is_found_by_walking_up_and_pop_root_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pop_nb.config import find_root

    project = tmp_path / "proj"
    (project / "pipelines").mkdir(parents=True)
    deep = project / "notebooks" / "drafts"
    deep.mkdir(parents=True)
    assert find_root(deep) == project.resolve()
    assert find_root(tmp_path) == tmp_path.resolve()  # nothing above: where it stands
    monkeypatch.delenv("POP_ROOT", raising=False)
    monkeypatch.delenv("POP_DATA_DIR", raising=False)
    monkeypatch.chdir(deep)
    settings = load_settings()
    assert settings.root == project.resolve() and settings.data == project.resolve() / "pipeline-data"
    monkeypatch.setenv("POP_ROOT", str(tmp_path))
    assert load_settings().root == tmp_path.resolve()


def test_env_beats_dotenv_beats_toml_and_lists_are_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("POP_ROOT", "POP_DATA_DIR", "POP_KERNEL_PRELOAD", "POP_MAX_RUNNING_JOBS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pop.toml").write_text('max_running_jobs = 5\ndefault_model = "mock/a"\n')
    (tmp_path / ".env").write_text('POP_MAX_RUNNING_JOBS=4\nPOP_KERNEL_PRELOAD=["litellm", "pandas"]\n')
    settings = load_settings(tmp_path)
    assert (settings.max_running_jobs, settings.default_model) == (4, "mock/a")
    assert settings.kernel_preload == ["litellm", "pandas"]
    monkeypatch.setenv("pop_max_running_jobs", "3")  # names are case-insensitive, as before
    assert load_settings(tmp_path).max_running_jobs == 3
    monkeypatch.setenv("POP_KERNEL_PRELOAD", "litellm")
    with pytest.raises(ConfigError, match=r"POP_KERNEL_PRELOAD in the environment is not JSON.*Fix"):
        load_settings(tmp_path)
    monkeypatch.setenv("POP_KERNEL_PRELOAD", "[]")
    monkeypatch.setenv("POP_MAX_RUNNING_JOBS", "zero")
    with pytest.raises(ConfigError, match="max_running_jobs"):
        load_settings(tmp_path)


def test_the_readme_shows_the_error_table_as_the_code_has_it() -> None:
    """One table of error -> HTTP status and exit code: the README's rows are ERROR_CODES', in order."""
    import re

    from pop_nb.errors import ERROR_CODES

    readme = (REPO / "README.md").read_text()
    shown = [
        (name, int(http), int(code))
        for name, http, code in re.findall(r"^\| `(\w+)` \| (\d{3}) \| (\d+) \|", readme, flags=re.M)
    ]
    assert shown == [(kind.__name__, http, code) for kind, http, code in ERROR_CODES]
