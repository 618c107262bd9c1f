"""Scorers that cost something to run, run once per job and version, their results kept.

- ``judge``: a model grades the output at ``path`` against a rubric.
- ``notebook``: a notebook papermill runs per job, in a fresh kernel, given the job's folder, outputs
  and the item's ``expected`` as parameters; what it records with ``pop.metric`` are its scores, and
  what it asks a model (``pop.chat``) is priced like a judge's call. The executed notebook is kept.

A result is kept in ``<data>/experiments/<name>/scores/<scorer>.jsonl`` (a line a result, with the
scorer's digest: its definition and the content of the files it names, and a digest of what it scored).
Comparing again runs nothing; a changed scorer runs again, and the response cache still answers every
prompt already asked. Their calls are logged in ``<data>/experiments/<name>/usage.jsonl``, apart from
the jobs' own cost. A scorer that fails leaves the item unscored (an error), never a zero.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pop_nb.config import PopSettings
from pop_nb.models.experiment import Item, Scorer
from pop_nb.models.pipeline import LLMSettings
from pop_nb.orchestrator.experiments import Experiment

PROMPT = """You grade one output of an LLM pipeline against a rubric.

Rubric:
{rubric}

The input the pipeline was given:
{data}
{expected}
The output to grade:
{output}

Answer with JSON only:
{{"score": <a whole number from 1 (worst) to {scale} (best)>, "reason": "<one sentence>"}}"""


@dataclass
class Grade:
    values: dict[str, float | None]  # metric -> 0..1 (a judge) or what the notebook recorded; None: error
    reason: str | None = None
    error: str | None = None
    cost_usd: float = 0.0
    notebook: str | None = None  # a notebook scorer's executed notebook, relative to the data folder
    pending: bool = False  # not kept, and not asked for (``Scoring(ask=False)``)


@dataclass
class Ask:
    """One job to score: ``output`` is what the scorer reads (a judge: the value at its path; a notebook:
    every task's output)."""

    scorer: Scorer
    job: str
    item: Item
    output: Any
    variant: str = ""
    job_dir: str | None = field(default=None, repr=False)


def folder(settings: PopSettings, experiment: Experiment) -> Path:
    """Where an experiment keeps what is not a job's: its scorers' results and calls."""
    return settings.data / "experiments" / experiment.name


def digest(scorer: Scorer, base: Path) -> str:
    """The scorer's version: its definition and the content of the files it names."""
    h = hashlib.sha256(scorer.model_dump_json(by_alias=True).encode())
    named = [scorer.schema_, scorer.notebook, scorer.llm.mock_responses if scorer.llm else None]
    for name in named:
        if isinstance(name, str):
            try:
                h.update((base / name).read_bytes())
            except OSError:
                h.update(b"(missing)")
    return h.hexdigest()[:16]


def _output_digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Scoring:
    """Results for one comparison: kept ones read once, missing ones run (``concurrency`` at a time)
    unless ``ask`` is False."""

    def __init__(
        self, settings: PopSettings, experiment: Experiment, concurrency: int = 4, *, ask: bool = True
    ) -> None:
        self.settings = settings
        self.experiment = experiment
        self.folder = folder(settings, experiment)
        self.concurrency = concurrency
        self.ask = ask  # False: what is not kept stays pending (a view that must not spend)
        self._kept: dict[str, dict[tuple[str, str], Grade]] = {}
        self._digests: dict[str, str] = {}
        self._kernels: Any = None

    def _file(self, scorer: Scorer) -> Path:
        return self.folder / "scores" / f"{scorer.name}.jsonl"

    def _digest(self, scorer: Scorer) -> str:
        if scorer.name not in self._digests:
            self._digests[scorer.name] = digest(scorer, self.experiment.file.parent)
        return self._digests[scorer.name]

    def _load(self, scorer: Scorer) -> dict[tuple[str, str], Grade]:
        """``(job, output digest) -> result`` of this version of the scorer (a later line wins)."""
        if scorer.name in self._kept:
            return self._kept[scorer.name]
        from pop_nb.store.atomic import read_jsonl

        found: dict[tuple[str, str], Grade] = {}
        version = self._digest(scorer)
        for row in read_jsonl(self._file(scorer)):  # a torn last line is skipped: that one runs again
            if isinstance(row, dict) and row.get("digest") == version and isinstance(row.get("values"), dict):
                kept = Grade(
                    row["values"],
                    row.get("reason"),
                    row.get("error"),
                    row.get("cost_usd") or 0.0,
                    row.get("notebook"),
                )
                found[(str(row.get("job")), str(row.get("output")))] = kept
        self._kept[scorer.name] = found
        return found

    def grades(self, asks: list[Ask]) -> list[Grade]:
        """A result for each of ``asks``, in order: kept, else run now (and kept)."""
        found: list[Grade | None] = []
        missing = []
        for n, ask in enumerate(asks):
            grade = self._load(ask.scorer).get((ask.job, _output_digest(ask.output)))
            found.append(grade)
            if grade is None:
                missing.append(n)
        if missing and not self.ask:
            return [g if g is not None else Grade({}, pending=True) for g in found]
        if missing:
            try:
                with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(missing)))) as pool:
                    for n, grade in zip(
                        missing, pool.map(self._run, (asks[n] for n in missing)), strict=True
                    ):
                        found[n] = grade
            finally:
                if self._kernels is not None:
                    self._kernels.shutdown_all()
                    self._kernels = None
        return [g if g is not None else Grade({}, error="not scored") for g in found]

    def _run(self, ask: Ask) -> Grade:
        from pop_nb.store.atomic import append_jsonl

        grade = self._notebook(ask) if ask.scorer.kind == "notebook" else self._judge(ask)
        row = {
            "job": ask.job,
            "scorer": ask.scorer.name,
            "digest": self._digest(ask.scorer),
            "output": _output_digest(ask.output),
            "values": grade.values,
            "reason": grade.reason,
            "error": grade.error,
            "cost_usd": grade.cost_usd,
            "notebook": grade.notebook,
        }
        append_jsonl(self._file(ask.scorer), row)  # redacted there, like every write
        return grade

    def _llm(self, scorer: Scorer) -> LLMSettings:
        """A scorer's call settings: deterministic (temperature 0) unless it says otherwise."""
        llm = LLMSettings.model_validate({"temperature": 0, "cache": "read-write"})
        if scorer.llm:
            llm = llm.merged(scorer.llm.anchored(self.experiment.file.parent))
        return llm.merged({"model": scorer.model}) if scorer.model else llm

    def _cost(self, job: str, scorer: str, before: int) -> float:
        """What ``scorer``'s calls for ``job`` logged after byte ``before`` of the usage file cost."""
        from pop_nb.safejson import loads

        try:
            with (self.folder / "usage.jsonl").open("rb") as fh:
                fh.seek(before)
                lines = fh.read().splitlines()
        except FileNotFoundError:
            return 0.0
        cost = 0.0
        for line in lines:
            try:
                row = loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and row.get("job") == job and row.get("task") == scorer:
                cost += float(row.get("cost_usd") or 0.0)
        return cost

    def _judge(self, ask: Ask) -> Grade:
        from pop_nb.errors import PopError
        from pop_nb.llm import client
        from pop_nb.llm.cache import shared_store
        from pop_nb.llm.ledger import Ledger

        scorer = ask.scorer
        expected = json.dumps(ask.item.expected, indent=2, ensure_ascii=False)
        prompt = PROMPT.format(
            rubric=(scorer.rubric or "").strip(),
            data=json.dumps(ask.item.data, indent=2, ensure_ascii=False),
            expected=f"\nWhat was expected:\n{expected}\n" if ask.item.expected else "",
            output=ask.output if isinstance(ask.output, str) else json.dumps(ask.output, indent=2),
            scale=scorer.scale,
        )
        try:
            answer = client.chat(
                prompt,
                settings=self._llm(scorer),
                default_model=self.settings.default_model,
                attribution=client.Attribution(
                    job=ask.job, pipeline=self.experiment.spec.pipeline, task=scorer.name, stage="judge"
                ),
                # one ledger a grade: the same prompt for two jobs is one question, answered once
                ledger=Ledger(self.folder, shared_store(self.settings.data).root, own=False),
                price_overrides=self.settings.prices,
            )
        except PopError as exc:
            return Grade({scorer.name: None}, error=f"the judge could not grade: {exc}")
        return _read_grade(scorer.name, answer, scorer.scale)

    def _notebook(self, ask: Ask) -> Grade:
        """Run the scorer's notebook on one job; its ``pop.metric`` values are the scores."""
        import papermill
        from papermill.exceptions import PapermillExecutionError

        from pop_nb.execution.kernels import KERNEL_NAME, FreshKernelProvider
        from pop_nb.execution.stage import _register_engine
        from pop_nb.llm.cache import shared_store
        from pop_nb.store.atomic import read_jsonl

        scorer = ask.scorer
        source = (self.experiment.file.parent / str(scorer.notebook)).resolve()
        ran = self.folder / "scores" / scorer.name / f"{ask.job}.ipynb"
        metrics = ran.with_suffix(".metrics.jsonl")
        ran.parent.mkdir(parents=True, exist_ok=True)
        metrics.unlink(missing_ok=True)
        usage = self.folder / "usage.jsonl"
        before = usage.stat().st_size if usage.exists() else 0
        _register_engine()
        if self._kernels is None:
            self._kernels = FreshKernelProvider(start="fork")
        parameters = {
            "job_dir": str(ask.job_dir or ""),
            "item": ask.item.id or "",
            "variant": ask.variant,
            "outputs": ask.output,
            "expected": ask.item.expected,
            "pop_scorer": {
                "name": scorer.name,
                "job": ask.job,
                "pipeline": self.experiment.spec.pipeline,
                "metrics": str(metrics),
                "ledger": str(self.folder),
                "cache": str(shared_store(self.settings.data).root),
                "llm": self._llm(scorer).model_dump(exclude_none=True),
                "default_model": self.settings.default_model,
            },
        }
        rel = str(ran.relative_to(self.settings.data))
        error = None
        try:
            papermill.execute_notebook(
                str(source),
                str(ran),
                parameters=parameters,
                engine_name="pop",
                kernel_name=KERNEL_NAME,
                language="python",  # a notebook without kernel metadata still gets its parameters
                progress_bar=False,
                kernel_provider=self._kernels,
                kernel_cwd=str(source.parent),
                start_timeout=60,
            )
        except PapermillExecutionError as exc:
            error = f"the scorer notebook raised {exc.ename}: {exc.evalue} (see {rel}, cell {exc.exec_count})"
        except Exception as exc:  # a kernel that would not start, a notebook papermill cannot read
            error = f"the scorer notebook could not run: {type(exc).__name__}: {exc}"
        values: dict[str, float | None] = {}
        for row in read_jsonl(metrics):
            if isinstance(row, dict) and isinstance(row.get("value"), int | float):
                values[str(row.get("name"))] = float(row["value"])
        metrics.unlink(missing_ok=True)
        if error is None and not values:
            error = f"the scorer notebook recorded no metric: call pop.metric(name, value) in it (see {rel})"
        if error is not None:
            values = {name: None for name in values} or {scorer.name: None}
        return Grade(values, error=error, cost_usd=self._cost(ask.job, scorer.name, before), notebook=rel)


def _read_grade(name: str, answer: Any, scale: int) -> Grade:
    try:
        said = answer.json()
        score = said["score"]
    except (ValueError, TypeError, KeyError):
        said, score = None, None
    if isinstance(score, bool) or not isinstance(score, int | float) or not 1 <= score <= scale:
        return Grade(
            {name: None},
            error=f"the judge's answer is not {{score: 1..{scale}, reason}}: {answer.content[:120]!r}",
            cost_usd=answer.cost_usd,
        )
    reason = said.get("reason") if isinstance(said, dict) else None
    value = (float(score) - 1) / (scale - 1)
    return Grade({name: value}, str(reason) if reason else None, cost_usd=answer.cost_usd)
