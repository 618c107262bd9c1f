"""``pop test``: a pipeline's prompt regression tests (``tests.jsonl``), run as a batch through the
executor seam, each job's outputs held to its ``expect`` checks.

The cache mode decides what it costs: ``replay`` (the default) sends no request at all and answers from
the recording, so CI pays $0 and gets the same answers every time; ``--record`` (``read-write``) asks
the providers what is not recorded yet and keeps the answers, then writes the recording
(``tests.cache.jsonl``, next to ``tests.jsonl``: the entries its jobs used) to be committed. A
recording found there is imported into the data folder's cache before the jobs run.

Outcomes: ``passed``; ``failed`` (a check did not hold, the job failed, or a call was not recorded):
a regression, exit 1; ``error`` (a provider's 429, a timeout, a lost connection, a refused key): the
infrastructure, reported apart, exit 4.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pop_nb.config import PopSettings
from pop_nb.dotted import MISSING, lookup
from pop_nb.errors import EXIT_FAILED, EXIT_INFRA, TRANSIENT_ERRORS, DatasetError
from pop_nb.models.batch import JobOutcome, ManifestLine
from pop_nb.models.expect import Expect, PromptTest
from pop_nb.models.pipeline import CacheMode
from pop_nb.models.seed import new_job_id
from pop_nb.models.status import JobStatus

# a job that failed on one of these was stopped by the infrastructure, not by what the pipeline did
_INFRA = frozenset({"TransientLLMError", *TRANSIENT_ERRORS})
_INFRA_MESSAGE = re.compile(
    r"\b(AuthenticationError|PermissionDeniedError|APIConnectionError|RateLimitError|Timeout|"
    r"ServiceUnavailableError|InternalServerError|BadGatewayError)\b"
)


@dataclass
class Failure:
    check: str
    expected: Any
    actual: Any
    task: str | None = None
    notebook: str | None = None  # relative to the data folder: the stage notebook to open


@dataclass
class Outcome:
    id: str
    job: str | None
    state: str
    result: str = "passed"  # passed | failed | error
    failures: list[Failure] = field(default_factory=list)
    error: str | None = None
    cost_usd: float = 0.0
    seconds: float | None = None


@dataclass
class Report:
    pipeline: str
    mode: str
    run: str
    outcomes: list[Outcome]
    seconds: float
    recorded: int | None = None  # entries written to the recording (--record)

    def count(self, result: str) -> int:
        return sum(1 for o in self.outcomes if o.result == result)

    @property
    def exit_code(self) -> int:
        if self.count("failed"):
            return EXIT_FAILED
        return EXIT_INFRA if self.count("error") else 0


def read_tests(path: Path) -> list[tuple[str, PromptTest]]:
    """The tests of a ``tests.jsonl``, each with its id; a bad line is a :class:`DatasetError` naming it."""
    from pop_nb.orchestrator.datasets import read_lines

    fix = (
        'one JSON object a line: {"id": "...", "data": {...}, "expect": [{"path": "task.key", "equals": 1}]}'
    )
    tests = list(read_lines(path, PromptTest, "a test", lambda t, n: t.id or t.name or f"line-{n}", fix))
    if not tests:
        raise DatasetError(f"{path} has no tests")
    return tests


def run_tests(
    settings: PopSettings,
    slug: str,
    dataset: Path | None = None,
    *,
    mode: CacheMode = "replay",
    only: set[str] | None = None,
    concurrency: int | None = None,
    executor: str | None = None,
    record_to: Path | None = None,
) -> Report:
    """Run the tests of ``dataset`` (default ``pipelines/<slug>/tests.jsonl``; those in ``only``, if
    given) as one batch whose jobs call with cache ``mode``, and judge each job. With ``record_to``,
    write there the cache entries the jobs used (the recording to commit)."""
    from pop_nb.llm import cache_admin
    from pop_nb.llm.cache import shared_store
    from pop_nb.orchestrator.batch import BatchRun
    from pop_nb.pipeline.load import load_pipeline
    from pop_nb.store.jobs import JobStore

    pipeline = load_pipeline(settings.root, slug)
    path = dataset or pipeline.dir / "tests.jsonl"
    tests = [(ident, test) for ident, test in read_tests(path) if only is None or ident in only]
    for ident, test in tests:
        _check_schemas(test, pipeline.dir, f"{path}: test {ident!r}")
    store = shared_store(settings.data)
    recording = recording_of(path)
    if recording.is_file():
        cache_admin.import_(store, recording)
    started = time.monotonic()
    name = new_job_id(f"test-{slug}")
    seeds: list[tuple[str, dict[str, Any] | str]] = [(ident, test.seed(slug, mode)) for ident, test in tests]
    summary = BatchRun(settings, slug, name, seeds, concurrency=concurrency, executor=executor).run()
    ended = {o.job: o for o in summary.jobs}
    manifest = _manifest(settings, name)
    outcomes = [
        _judge(settings, pipeline.dir, ident, test, manifest[n].job, manifest[n].error, ended)
        for n, (ident, test) in enumerate(tests, 1)
    ]
    report = Report(slug, mode, name, outcomes, round(time.monotonic() - started, 2))
    for outcome in outcomes:  # judged: a test job left at a gate would wait there for ever
        if outcome.state == "waiting" and outcome.job:
            from pop_nb.service import cancel

            cancel(settings, outcome.job)
    if record_to is not None:
        jobs = JobStore(settings.data)
        found = (jobs.find(line.job) for line in manifest.values() if line.job)
        folders = [folder.path for folder in found if folder is not None]
        keys = cache_admin.keys_of_jobs(folders)
        report.recorded = cache_admin.export([*cache_admin.job_stores(folders), store], keys, record_to)
    return report


def recording_of(tests_file: Path) -> Path:
    """Where the recording of a tests file lives: ``tests.jsonl`` -> ``tests.cache.jsonl``."""
    return tests_file.with_name(f"{tests_file.name.removesuffix('.jsonl')}.cache.jsonl")


def _manifest(settings: PopSettings, name: str) -> dict[int, ManifestLine]:
    from pop_nb.orchestrator.batch_plan import read_manifest

    return {line.n: line for line in read_manifest(settings.data / "batches" / name / "manifest.jsonl")}


def _judge(
    settings: PopSettings,
    pipeline_dir: Path,
    ident: str,
    test: PromptTest,
    job_id: str | None,
    refused: str | None,
    ended: dict[str, JobOutcome],
) -> Outcome:
    from pop_nb.store.jobs import JobStore

    folder = JobStore(settings.data).find(job_id) if job_id else None
    if folder is None:
        why = refused or (ended[job_id].error if job_id in ended else None) or "it did not start"
        return Outcome(ident, job_id, "not started", "failed", [Failure("the job starts", "started", why)])
    status = folder.read_status()
    outcome = Outcome(
        ident,
        job_id,
        status.state,
        cost_usd=status.totals.cost_usd,
        seconds=getattr(ended, "duration_s", None),
    )
    if status.state == "failed" and status.error is not None and _infra(status):
        outcome.result = "error"
        outcome.error = error_text(status.error.type, status.error.message)
        return outcome
    outputs = _outputs(folder, status)
    for check in test.checks:
        failure = _check(check, status, outputs, folder, pipeline_dir, test)
        if failure is not None:
            outcome.failures.append(failure)
    outcome.result = "failed" if outcome.failures else "passed"
    return outcome


def error_text(kind: str, message: str | None) -> str:
    """``Type: message``, without the type twice when the message already starts with it."""
    message = message or ""
    return message if message.startswith(f"{kind}: ") else f"{kind}: {message}"


def _infra(status: JobStatus) -> bool:
    error = status.error
    assert error is not None
    return error.type in _INFRA or (
        error.type == "LLMError" and bool(_INFRA_MESSAGE.search(error.message or ""))
    )


def _outputs(folder: Any, status: JobStatus) -> dict[str, Any]:
    try:
        return dict(folder.final_outputs(status))
    except (OSError, ValueError):
        return {}


def _check(
    check: Expect,
    status: JobStatus,
    outputs: dict[str, Any],
    folder: Any,
    pipeline_dir: Path,
    test: PromptTest,
) -> Failure | None:
    kind = check.kind
    if kind == "state":
        if status.state == check.state:
            return None
        error = status.error
        actual = status.state + (f" ({error_text(error.type, error.message)})" if error else "")
        where = error.notebook if error else None
        return Failure(
            check.describe(), check.state, actual, error.task if error else None, _at(folder, where)
        )
    if kind == "notebook":
        assert check.notebook is not None
        raised = _run_check_notebook(pipeline_dir / check.notebook, folder, outputs, test)
        return None if raised is None else Failure(check.describe(), "no exception", raised)
    task = (check.path or "").split(".", 1)[0] or None
    value = lookup(outputs, check.path) if check.path else outputs
    notebook = _at(folder, _last_notebook(status, task)) if task else None
    if value is MISSING:
        have = ", ".join(sorted(outputs)) or "none (no task finished)"
        return Failure(
            check.describe(),
            f"a value at {check.path}",
            f"nothing there (task outputs: {have})",
            task,
            notebook,
        )
    problem = _value_problem(check, value, pipeline_dir)
    return None if problem is None else Failure(check.describe(), *problem, task, notebook)


def _value_problem(check: Expect, value: Any, pipeline_dir: Path) -> tuple[Any, Any] | None:
    """``(expected, actual)`` when ``value`` fails the check, else None."""
    kind = check.kind
    if kind == "equals":
        return None if value == check.equals else (check.equals, value)
    if kind == "contains":
        holds = isinstance(value, str) and isinstance(check.contains, str) and check.contains in value
        holds = holds or (isinstance(value, list | dict) and check.contains in value)
        return None if holds else (f"something containing {check.contains!r}", value)
    if kind == "regex":
        assert check.regex is not None
        matched = isinstance(value, str) and re.search(check.regex, value) is not None
        return None if matched else (f"text matching /{check.regex}/", value)
    if kind == "bounds":
        number = isinstance(value, int | float) and not isinstance(value, bool)
        low_ok = number and (check.min is None or value >= check.min)
        high_ok = number and (check.max is None or value <= check.max)
        return None if low_ok and high_ok else (check.describe().split(" within ", 1)[1], value)
    return _schema_problem(check.schema_, value, pipeline_dir)


def _check_schemas(test: PromptTest, pipeline_dir: Path, where: str) -> None:
    """Every schema a test names can be read and is a JSON Schema, or a :class:`DatasetError` says which."""
    import jsonschema

    for check in test.expect:
        if check.kind != "schema":
            continue
        try:
            jsonschema.Draft202012Validator.check_schema(_schema(check.schema_, pipeline_dir))
        except (OSError, ValueError, jsonschema.SchemaError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise DatasetError(
                f"{where}: its schema {check.schema_ if isinstance(check.schema_, str) else '(inline)'} "
                f"cannot be used: {message}. Fix: give a JSON Schema (a file: relative to the pipeline)"
            ) from None


def _schema(schema: Any, pipeline_dir: Path) -> Any:
    from pop_nb.safejson import loads

    return loads((pipeline_dir / schema).read_bytes()) if isinstance(schema, str) else schema


def _schema_problem(schema: Any, value: Any, pipeline_dir: Path) -> tuple[Any, Any] | None:
    import jsonschema

    schema = _schema(schema, pipeline_dir)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.path) or "(top)"
    return "valid against the schema", f"{where}: {first.message}"


def _last_notebook(status: JobStatus, task: str | None) -> str | None:
    runs = status.tasks.get(task or "")
    if runs is None:
        return None
    ran = [run for run in runs.stages.values() if run.notebook and run.started_at]
    return max(ran, key=lambda run: run.started_at or "").notebook if ran else None


def _at(folder: Any, notebook: str | None) -> str | None:
    return str(folder.path / notebook) if notebook else None


def _run_check_notebook(notebook: Path, folder: Any, outputs: dict[str, Any], test: PromptTest) -> str | None:
    """Run a check notebook on the job in a fresh kernel; what it raised, or None. The executed copy is
    kept (secrets masked) under the job's ``checks/``."""
    import tempfile

    import nbformat
    import papermill

    from pop_nb.redaction import redact, redact_notebook
    from pop_nb.store.atomic import atomic_write_text

    if not notebook.is_file():
        return f"{notebook} does not exist"
    kept = folder.path / "checks" / notebook.name
    params = {"job_dir": str(folder.path), "outputs": outputs, "data": test.data}
    problem = None
    with tempfile.TemporaryDirectory(prefix="pop-check-") as scratch:
        ran = Path(scratch) / notebook.name
        try:
            papermill.execute_notebook(
                str(notebook),
                str(ran),
                parameters=params,
                cwd=str(notebook.parent),
                progress_bar=False,
                engine_name="pop",  # a fresh kernel of ours, as a stage gets, not papermill's default one
            )
        except papermill.PapermillExecutionError as exc:
            problem = redact(f"{exc.ename}: {exc.evalue}")
        except Exception as exc:  # the kernel would not start, the notebook is not one: still a failure
            problem = redact(f"{type(exc).__name__}: {exc}")
        if ran.is_file():
            atomic_write_text(kept, nbformat.writes(redact_notebook(nbformat.read(ran, as_version=4))))
    return None if problem is None else f"{problem} (see {kept})"
