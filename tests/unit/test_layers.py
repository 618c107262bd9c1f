"""The house's shape, read from its source: imports point one way (front ends -> service -> execution /
orchestrator -> pipeline / llm / analytics -> store / models), no module imports itself back through
another, and a job is changed only through the service."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pop_nb

ROOT = Path(pop_nb.__file__).parent

# A module of the first group may not import one of the second, lazily or not (TYPE_CHECKING aside).
FRONT = ("cli", "server", "widgets", "jobs", "magics")  # what users touch
ABOVE_EXECUTION = ("service", "orchestrator", *FRONT)
BELOW = {
    "safejson": ("",),  # the bottom: nothing of pop-nb's
    "dotted": ("",),
    "models": (*ABOVE_EXECUTION, "execution", "pipeline", "store"),
    "compat": (*ABOVE_EXECUTION, "execution", "pipeline", "store"),
    "redaction": (*ABOVE_EXECUTION, "execution", "store"),
    "store": (*ABOVE_EXECUTION, "execution", "pipeline"),
    "pipeline": (*ABOVE_EXECUTION, "execution"),
    "analytics": (*ABOVE_EXECUTION, "execution"),
    "execution": ABOVE_EXECUTION,
    "llm": ABOVE_EXECUTION,
    "orchestrator.executors": ("service", *FRONT),
    "service": FRONT,
}
# Front ends: they call the service and render; they never submit to an executor themselves.
FRONT_ENDS = ("cli", "magics", "widgets", "server", "jobs")


def _modules() -> dict[str, Path]:
    found = {}
    for file in ROOT.rglob("*.py"):
        if "labextension" in file.parts:
            continue
        parts = file.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = file
    return found


def _imports(name: str, file: Path, modules: dict[str, Path]) -> dict[str, set[str]]:
    """Each pop_nb module this one imports at run time (TYPE_CHECKING blocks aside), with the names."""
    tree = ast.parse(file.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            pairs = [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1] if package else []
                base = ".".join([*up, base] if base else up)
            elif base.startswith("pop_nb"):
                base = base.removeprefix("pop_nb").lstrip(".")
            else:
                continue
            pairs = [(f"{base}.{alias.name}" if base else alias.name, alias.name) for alias in node.names]
            pairs.append((base, ""))
        else:
            continue
        for target, imported in pairs:
            target = target.removeprefix("pop_nb.") if target.startswith("pop_nb.") else target
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.setdefault(target, set()).add(imported)
    return found


GRAPH = {name: _imports(name, file, _modules()) for name, file in _modules().items()}


def _in(module: str, group: str) -> bool:
    return module == group or module.startswith(group + ".") if group else True


def test_imports_point_down() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for group, above in BELOW.items()
        if _in(module, group)
        for target in targets
        if any(_in(target, a) for a in above) and not _in(target, group)
    ]
    assert wrong == []


def test_no_module_imports_itself_back() -> None:
    """No import cycle, even through lazy imports: every module can be understood before its callers."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert cycles == []


def test_front_ends_change_jobs_only_through_the_service() -> None:
    """The CLI, ``%pop``, the widgets, the server and ``pop_nb.run`` never make, submit or end a job
    themselves (they may follow one: ``handle_of``)."""
    wrong = [
        f"{module} imports {target}: {', '.join(sorted(names - {'', 'handle_of'}))}"
        for module, targets in GRAPH.items()
        if any(_in(module, f) for f in FRONT_ENDS)
        for target, names in targets.items()
        if _in(target, "orchestrator.executors") and names - {"", "handle_of"}
    ]
    assert wrong == []


def test_the_final_states_are_named_in_one_place() -> None:
    """``done``, ``failed``, ``cancelled`` as a set are spelt out only in :mod:`pop_nb.models.lifecycle`."""
    spelt = re.compile(r"""["']done["'],\s*["']failed["'],\s*["']cancelled["']""")
    places = [
        str(file.relative_to(ROOT))
        for file in _modules().values()
        if spelt.search(file.read_text()) and file.name != "lifecycle.py" and file.name != "status.py"
    ]
    assert places == []


def test_the_cli_starts_without_the_heavy_libraries() -> None:
    """``pop --help`` and the parser import none of pydantic, litellm, papermill, duckdb, pandas: each
    command imports what it needs when it runs."""
    import subprocess
    import sys

    heavy = ("pydantic", "litellm", "papermill", "duckdb", "pandas", "nbclient")
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pop_nb.cli.main; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert found == "[]"
