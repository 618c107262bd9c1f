"""pytest collects a pipeline's prompt regression tests: ``pytest pipelines/`` (or a ``tests.jsonl``)
runs every ``pipelines/<slug>/tests.jsonl`` beside the code's tests, each line one test item.

The items of one file run as one ``pop test`` batch (only those selected, e.g. with ``-k``), in
``replay`` mode unless ``--pop-record`` is given. Under pytest-xdist, use ``--dist loadfile`` so each
file's batch runs once. Loaded through the ``pytest11`` entry point; it imports pop-nb only when a
``tests.jsonl`` is collected.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pop_nb.orchestrator.prompt_tests import Outcome, Report


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pop-nb", "pop-nb prompt regression tests (pipelines/<slug>/tests.jsonl)")
    group.addoption(
        "--pop-record",
        action="store_true",
        help="ask the providers what is not recorded yet and write tests.cache.jsonl (default: replay, $0)",
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name == "tests.jsonl" and (file_path.parent / "pipeline.yaml").is_file():
        return PipelineTests.from_parent(parent, path=file_path)
    return None


class PipelineTests(pytest.File):
    """One pipeline's ``tests.jsonl``."""

    _report: Report | None = None

    @property
    def slug(self) -> str:
        return self.path.parent.name

    def collect(self) -> Any:
        from pop_nb.orchestrator.prompt_tests import read_tests

        for ident, _ in read_tests(self.path):
            yield PromptTestItem.from_parent(self, name=ident)

    def outcome(self, ident: str) -> Outcome:
        if self._report is None:
            self._report = self._run()
        return next(o for o in self._report.outcomes if o.id == ident)

    def _run(self) -> Report:
        from pop_nb.config import load_settings
        from pop_nb.orchestrator.prompt_tests import recording_of, run_tests

        selected = {item.name for item in self.session.items if item.parent is self}
        record = bool(self.config.getoption("--pop-record"))
        settings = load_settings(self.path.parent.parent.parent)  # <root>/pipelines/<slug>/tests.jsonl
        return run_tests(
            settings,
            self.slug,
            self.path,
            mode="read-write" if record else "replay",
            only=selected,
            record_to=recording_of(self.path) if record else None,
        )


class PromptTestFailed(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class PromptTestItem(pytest.Item):
    """One line of a ``tests.jsonl``: its job held to its checks."""

    def runtest(self) -> None:
        from pop_nb.orchestrator.prompt_report import failure_text

        assert isinstance(self.parent, PipelineTests)
        outcome = self.parent.outcome(self.name)
        if outcome.result == "error":
            raise PromptTestFailed(f"infrastructure error (not a regression): {outcome.error}")
        if outcome.result == "failed":
            head = f"pop test {self.parent.slug}, test {outcome.id}: job {outcome.job} ({outcome.state})"
            raise PromptTestFailed("\n".join([head, *(failure_text(f) for f in outcome.failures)]))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, PromptTestFailed):
            return excinfo.value.text
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        slug = self.parent.slug if isinstance(self.parent, PipelineTests) else "?"
        return self.path, None, f"pop test {slug}::{self.name}"
