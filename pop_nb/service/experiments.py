"""Experiments as the server's API shows them: every experiment with how far each variant has got
(:func:`experiments`), one compared (:func:`experiment`), one item under every variant (:func:`item`).

What is read here is cheap enough to ask for on every job event: a variant's progress is its batch's
manifest and where its jobs' folders are (three directory listings), not their status files. Comparing
grades with what is kept unless told to ``ask``: opening a view never spends money on a judge.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pop_nb.config import PopSettings
from pop_nb.errors import PopError
from pop_nb.models.api import ExperimentDetail, ExperimentInfo, ExperimentItem, ItemScores, VariantProgress

if TYPE_CHECKING:
    from pop_nb.orchestrator.experiments import Experiment

MAX_ITEMS = 2000  # item rows a detail carries (a heat map of more is not read by anyone)
_GRADING: dict[str, threading.Lock] = {}  # experiment -> held while its grades are asked for
_GUARD = threading.Lock()
_LINES: dict[tuple[str, int, int], int] = {}  # (dataset, mtime_ns, size) -> non-blank lines


def experiments(settings: PopSettings) -> list[ExperimentInfo]:
    """Every experiment of the project, a broken one with why, each variant with its progress."""
    from pop_nb.orchestrator import experiments as known

    places = _places(settings.data)
    found = []
    for name, file in known.files(settings).items():
        try:
            found.append(_info(settings, known.load(name, file), places))
        except PopError as exc:
            if _meant(file):  # else another YAML kept beside experiments (a mock script): not listed
                found.append(ExperimentInfo(name=name, file=_relative(settings, file), error=str(exc)))
    return found


def _meant(file: Path) -> bool:
    """Is ``file`` meant as an experiment (a mapping with an experiment's keys), though it is not one?"""
    import yaml

    try:
        loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):  # unreadable: say why
        return True
    return isinstance(loaded, dict) and bool({"pipeline", "dataset", "variants", "grid"} & set(loaded))


def experiment(settings: PopSettings, name: str, *, ask: bool = False) -> ExperimentDetail:
    """The comparison of ``name``'s finished jobs; ``ask``: grade what is not graded yet (a judge's
    calls are paid for), else those grades are counted as pending."""
    from pop_nb.orchestrator import experiments as known
    from pop_nb.orchestrator.experiment_compare import compare

    found = known.find(settings, name)
    if ask:  # two presses of Grade at once ask (and pay) once: the second finds the grades kept
        with _GUARD:
            lock = _GRADING.setdefault(f"{settings.data}\0{name}", threading.Lock())
        with lock:
            comparison = compare(settings, found, ask=True)
    else:
        comparison = compare(settings, found, ask=False)
    ids = [ident for ident, _ in known.items(found)]
    rows = [
        ItemScores(
            item=ident,
            scores={
                variant: {metric: by_item.get(ident) for metric, by_item in metrics.items()}
                for variant, metrics in comparison.scores.items()
            },
        )
        for ident in ids[:MAX_ITEMS]
    ]
    info = _info(settings, found, _places(settings.data))
    return ExperimentDetail(info=info, comparison=comparison, items=rows, items_total=len(ids))


def item(settings: PopSettings, name: str, ident: str, repeat: int = 0) -> ExperimentItem:
    """One item under every variant: outputs, scores (kept ones: nothing is asked), stage notebooks
    and what differs from the baseline's job."""
    from pop_nb.orchestrator import experiments as known
    from pop_nb.orchestrator.experiment_show import show

    view = show(settings, known.find(settings, name), ident, repeat, ask=False)
    return ExperimentItem.model_validate(view.model_dump())


def _info(settings: PopSettings, experiment: Experiment, places: dict[str, set[str]]) -> ExperimentInfo:
    from pop_nb.orchestrator.batch_plan import read_manifest

    spec = experiment.spec
    items = _count_lines(experiment.dataset)
    variants = []
    for name in spec.all_variants():
        batch = experiment.batch_name(name)
        manifest = settings.data / "batches" / batch / "manifest.jsonl"
        try:
            lines = read_manifest(manifest) if manifest.is_file() else []
        except (OSError, ValueError):  # torn by a crash mid-write: the batch writes it again
            lines = []
        jobs = [line.job for line in lines if line.job]
        variants.append(
            VariantProgress(
                name=name,
                batch=batch,
                planned=(items or 0) * spec.repeat,
                submitted=len(jobs),
                running=sum(1 for j in jobs if j in places["current"]),
                done=sum(1 for j in jobs if j in places["complete"]),
                failed=sum(1 for j in jobs if j in places["failed"]),
                rejected=sum(1 for line in lines if line.job is None),
            )
        )
    return ExperimentInfo(
        name=experiment.name,
        file=_relative(settings, experiment.file),
        pipeline=spec.pipeline,
        baseline=spec.baseline_name,
        repeat=spec.repeat,
        items=items,
        variants=variants,
    )


def _places(data: Path) -> dict[str, set[str]]:
    """The job ids in each place of the data folder (one listing each)."""
    found: dict[str, set[str]] = {}
    for place in ("current", "complete", "failed"):
        try:
            found[place] = set(os.listdir(data / place))
        except OSError:
            found[place] = set()
    return found


def _count_lines(path: Path) -> int | None:
    """Non-blank lines of a dataset (remembered while the file is unchanged); None: no such file."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _LINES:
        count = 0
        try:
            with path.open("rb") as lines:
                count = sum(1 for line in lines if line.strip())
        except OSError:
            return None
        if len(_LINES) > 256:
            _LINES.clear()
        _LINES[key] = count
    return _LINES[key]


def _relative(settings: PopSettings, file: Path) -> str:
    try:
        return file.resolve().relative_to(settings.root.resolve()).as_posix()
    except ValueError:
        return str(file)
