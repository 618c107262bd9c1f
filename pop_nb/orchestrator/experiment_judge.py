"""The ``judge`` scorer: a model grades a job's output against a rubric.

A grade is asked once per job, scorer version and output, and kept in
``<data>/experiments/<name>/scores/<scorer>.jsonl`` (a line a grade, with the scorer's digest: its
definition and the content of the files it names). Comparing again asks nothing; changing the rubric
asks again, and the response cache still answers every prompt already asked. The judge's calls are
priced and logged in ``<data>/experiments/<name>/usage.jsonl``, apart from the jobs' own cost.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
    value: float | None  # 0..1; None: no grade (``error`` says why)
    reason: str | None = None
    error: str | None = None
    cost_usd: float = 0.0


@dataclass
class Ask:
    """One output to grade."""

    scorer: Scorer
    job: str
    item: Item
    output: Any


def folder(settings: PopSettings, experiment: Experiment) -> Path:
    """Where an experiment keeps what is not a job's: its judges' grades and calls."""
    return settings.data / "experiments" / experiment.name


def digest(scorer: Scorer, base: Path) -> str:
    """The scorer's version: its definition and the content of the files it names."""
    h = hashlib.sha256(scorer.model_dump_json(by_alias=True).encode())
    named = [scorer.schema_, scorer.llm.mock_responses if scorer.llm else None]
    for name in named:
        if isinstance(name, str):
            try:
                h.update((base / name).read_bytes())
            except OSError:
                h.update(b"(missing)")
    return h.hexdigest()[:16]


def _output_digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Judges:
    """Grades for one comparison: kept ones read once, missing ones asked (``concurrency`` at a time)."""

    def __init__(self, settings: PopSettings, experiment: Experiment, concurrency: int = 8) -> None:
        self.settings = settings
        self.experiment = experiment
        self.folder = folder(settings, experiment)
        self.concurrency = concurrency
        self._kept: dict[str, dict[tuple[str, str], Grade]] = {}
        self._digests: dict[str, str] = {}

    def _file(self, scorer: Scorer) -> Path:
        return self.folder / "scores" / f"{scorer.name}.jsonl"

    def _digest(self, scorer: Scorer) -> str:
        if scorer.name not in self._digests:
            self._digests[scorer.name] = digest(scorer, self.experiment.file.parent)
        return self._digests[scorer.name]

    def _load(self, scorer: Scorer) -> dict[tuple[str, str], Grade]:
        """``(job, output digest) -> grade`` of this version of the scorer (a later line wins)."""
        if scorer.name in self._kept:
            return self._kept[scorer.name]
        from pop_nb.safejson import loads

        found: dict[tuple[str, str], Grade] = {}
        version = self._digest(scorer)
        try:
            lines = self._file(scorer).read_bytes().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                row = loads(line)
            except ValueError:
                continue  # a torn last line: that grade is asked again
            if isinstance(row, dict) and row.get("digest") == version:
                grade = Grade(
                    row.get("value"), row.get("reason"), row.get("error"), row.get("cost_usd") or 0.0
                )
                found[(str(row.get("job")), str(row.get("output")))] = grade
        self._kept[scorer.name] = found
        return found

    def grades(self, asks: list[Ask]) -> list[Grade]:
        """A grade for each of ``asks``, in order: kept, else asked now (and kept)."""
        found: list[Grade | None] = []
        missing = []
        for n, ask in enumerate(asks):
            grade = self._load(ask.scorer).get((ask.job, _output_digest(ask.output)))
            found.append(grade)
            if grade is None:
                missing.append(n)
        if missing:
            with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(missing)))) as pool:
                for n, grade in zip(missing, pool.map(self._ask, (asks[n] for n in missing)), strict=True):
                    found[n] = grade
        return [g if g is not None else Grade(None, error="not graded") for g in found]

    def _ask(self, ask: Ask) -> Grade:
        from pop_nb.errors import PopError
        from pop_nb.llm import client
        from pop_nb.llm.cache import shared_store
        from pop_nb.llm.ledger import Ledger
        from pop_nb.store.atomic import append_jsonl

        scorer = ask.scorer
        expected = ask.item.expected
        prompt = PROMPT.format(
            rubric=(scorer.rubric or "").strip(),
            data=json.dumps(ask.item.data, indent=2, ensure_ascii=False),
            expected=(
                f"\nWhat was expected:\n{json.dumps(expected, indent=2, ensure_ascii=False)}\n"
                if expected
                else ""
            ),
            output=ask.output if isinstance(ask.output, str) else json.dumps(ask.output, indent=2),
            scale=scorer.scale,
        )
        # a grade is deterministic (temperature 0) unless the scorer says otherwise
        llm = LLMSettings.model_validate({"temperature": 0})
        if scorer.llm:
            llm = llm.merged(scorer.llm.anchored(self.experiment.file.parent))
        try:
            answer = client.chat(
                prompt,
                model=scorer.model,
                settings=llm,
                default_model=self.settings.default_model,
                attribution=client.Attribution(
                    job=ask.job, pipeline=self.experiment.spec.pipeline, task=scorer.name, stage="judge"
                ),
                # one ledger a grade: the same prompt for two jobs is one question, answered once
                ledger=Ledger(self.folder, shared_store(self.settings.data).root, own=False),
                price_overrides=self.settings.prices,
                cache="read-write",
            )
            grade = _read_grade(answer, scorer.scale)
        except PopError as exc:
            grade = Grade(None, error=f"the judge could not grade: {exc}")
        row = {
            "job": ask.job,
            "scorer": scorer.name,
            "digest": self._digest(scorer),
            "output": _output_digest(ask.output),
            "value": grade.value,
            "reason": grade.reason,
            "error": grade.error,
            "cost_usd": grade.cost_usd,
        }
        append_jsonl(self._file(scorer), row)  # redacted there, like every write
        return grade


def _read_grade(answer: Any, scale: int) -> Grade:
    try:
        said = answer.json()
        score = said["score"]
    except (ValueError, TypeError, KeyError):
        said, score = None, None
    if isinstance(score, bool) or not isinstance(score, int | float) or not 1 <= score <= scale:
        return Grade(
            None,
            error=f"the judge's answer is not {{score: 1..{scale}, reason}}: {answer.content[:120]!r}",
            cost_usd=answer.cost_usd,
        )
    reason = said.get("reason") if isinstance(said, dict) else None
    return Grade((float(score) - 1) / (scale - 1), str(reason) if reason else None, cost_usd=answer.cost_usd)
