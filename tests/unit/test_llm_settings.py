"""One resolver of a call's LLM settings (:class:`pop_nb.models.pipeline.LLMSettings`): the layers of a
job's call (pipeline, seed, task), the files they name made absolute from where each was written, and
the model a call goes to."""

from __future__ import annotations

from pathlib import Path

from pop_nb.models.pipeline import LLMSettings


def test_layers_win_key_by_key_and_each_names_files_from_its_own_folder(tmp_path: Path) -> None:
    pipeline_dir, project = tmp_path / "pipelines" / "p", tmp_path
    found = LLMSettings.layered(
        (LLMSettings(model="a", temperature=0.1, mock_responses="answers.yaml"), pipeline_dir),
        (LLMSettings(temperature=0.5, mock_responses="mine.yaml"), project),  # the seed's
        (None, pipeline_dir),  # a task without llm settings
        (LLMSettings(max_tokens=10), pipeline_dir),
    )
    assert found.model == "a" and found.model_extra == {"temperature": 0.5, "max_tokens": 10}
    assert found.mock_responses == str((project / "mine.yaml").resolve())


def test_inline_mock_answers_are_not_paths(tmp_path: Path) -> None:
    inline = LLMSettings(mock_responses={"default": "hi"})
    assert inline.anchored(tmp_path) is inline


def test_the_model_a_call_goes_to() -> None:
    assert LLMSettings(model="set").model_for("asked", "default") == "asked"
    assert LLMSettings(model="set").model_for(None, "default") == "set"
    assert LLMSettings().model_for(None, "default") == "default"
