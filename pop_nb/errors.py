"""Every error pop-nb raises on purpose derives from :class:`PopError`.

Messages name the thing that is wrong (file, key, job, task, stage) and say how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


class PopError(Exception):
    """Base class for pop-nb errors."""


def closest(name: str, known: Iterable[str]) -> str | None:
    """The one of ``known`` closest to a mistyped ``name`` (None when none is close)."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the closest of ``known`` to a mistyped ``name``, or ``""``."""
    close = closest(name, known)
    return f" Did you mean {close!r}?" if close else ""


class ConfigError(PopError):
    """A setting in the environment or ``pop.toml`` is invalid."""


class IncompatibleLibrary(ConfigError):
    """An installed library lacks an internal pop-nb relies on (see :mod:`pop_nb.compat`)."""


class PipelineError(PopError):
    """A pipeline definition is invalid.

    Carries every problem found, each naming the file, the key and the fix.
    """

    def __init__(self, slug: str, problems: list[Problem]) -> None:
        self.slug = slug
        self.problems = problems
        lines = [f"pipeline {slug!r} is invalid ({len(problems)} problem(s)):"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


class DatasetError(PopError):
    """A dataset file (``tests.jsonl``, ...) is missing or has a bad line; the message names file and line."""


class Problem:
    """One finding of ``pop compile``: where, what, and how to fix it."""

    def __init__(self, file: Path | str, key: str, message: str, fix: str) -> None:
        self.file = str(file)
        self.key = key
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.message}. Fix: {self.fix}"

    def __repr__(self) -> str:
        return f"Problem({self.file!r}, {self.key!r}, {self.message!r})"

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "key": self.key, "message": self.message, "fix": self.fix}


class PipelineNotFound(PopError):
    def __init__(self, slug: str, searched: list[Path], known: list[str]) -> None:
        self.slug = slug
        where = ", ".join(str(p) for p in searched)
        have = ", ".join(known) or "none"
        super().__init__(
            f"no pipeline named {slug!r} (searched {where}; known pipelines: {have})."
            f"{did_you_mean(slug, known)} Fix: create pipelines/{slug}/pipeline.yaml or add it to "
            "pipelines/registry.yaml."
        )


class ExperimentNotFound(PopError):
    """No experiment of that name, or no item of that id in its dataset (the message names the nearest)."""


class SeedError(PopError):
    """A seed file or seed data is invalid; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class SeedTooLarge(SeedError):
    """A seed over :data:`pop_nb.models.seed.MAX_SEED_BYTES` (HTTP 413)."""

    def __init__(self, where: str, size: int, limit: int) -> None:
        super().__init__(
            "too_large",
            f"{where} is {size} bytes, over the {limit}-byte limit for seeds; put large inputs in files "
            "the task reads and pass their paths in the seed",
        )


class RequestError(PopError):
    """An HTTP request the API cannot take (a body that is not JSON, a field of the wrong type)."""


class JobNotFound(PopError):
    def __init__(self, job_id: str, data_dir: Path) -> None:
        self.job_id = job_id
        super().__init__(
            f"no job {job_id!r} in {data_dir} (looked in current/, complete/, failed/, archive/). "
            "Fix: check the id with `pop status`."
        )


class JobFileNotFound(PopError):
    """A path that is not in the job's folder (the job exists)."""

    def __init__(self, job_id: str, path: str, job_dir: Path) -> None:
        self.job_id = job_id
        super().__init__(
            f"job {job_id} has no file {path!r} (its folder is {job_dir}). Fix: pick a file the job view "
            "lists, or `ls` the folder."
        )


class SchedulesFileError(PopError):
    """The project's ``schedules.yaml`` cannot be read as schedules."""

    def __init__(self, path: Path, why: str) -> None:
        self.path = path
        super().__init__(
            f"{path}: {why}. Fix: write it as a mapping of schedule name to {{pipeline, cron, seed, ...}} "
            "(see README: Schedules)"
        )


class ScheduleNotFound(PopError):
    """No schedule of that name in the project (pipeline.yaml ``schedules:`` or schedules.yaml)."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"no schedule named {name!r}.{did_you_mean(name, known)} Fix: use one of {listed} "
            "(`pop schedules` lists them)"
        )


class JobStateError(PopError):
    """An action does not fit the job's current state (e.g. resuming a running job)."""


class UnreadableStatus(JobStateError, ValueError):
    """A job's ``tasks-status.json`` is not a status (not JSON, or another shape). pop-nb writes it whole
    (a temp file renamed), so this is a hand edit or a broken disk. A ValueError too: every reader that
    skips a status being written skips this one."""

    def __init__(self, job_id: str, path: Path, why: str) -> None:
        self.job_id = job_id
        super().__init__(
            f"job {job_id}: {path} is not a job status ({why[:300]}). Fix: restore it from a backup, "
            f"or remove the job's folder {path.parent}"
        )


class ExecutorError(PopError):
    """An executor cannot take jobs: unknown name, broker unreachable, a worker that cannot see the data
    folder. Raised before anything is dispatched, so nothing is half-submitted."""


class ConditionError(PopError):
    """A task ``condition`` is not a safe, parsable expression, or failed to evaluate."""


@dataclass(frozen=True)
class CellEvidence:
    """The cell a stage failed in, as papermill reports it: its index in the stage notebook (before
    papermill's banner is inserted), its ``In [n]``, its source, and the traceback."""

    cell_index: int | None = None
    exec_count: int | None = None
    source: str | None = None
    traceback: list[str] = field(default_factory=list)


class TaskFailed(PopError):
    """A stage of a task failed; carries where, why, which notebook shows it and the failing cell."""

    def __init__(
        self,
        task: str,
        stage: str,
        error_type: str,
        message: str,
        notebook: str | None = None,
        *,
        transient: bool = False,
        evidence: CellEvidence | None = None,
    ) -> None:
        self.task = task
        self.stage = stage
        self.error_type = error_type
        self.message = message
        self.notebook = notebook
        self.transient = transient
        self.evidence = evidence
        where = f" (see {notebook})" if notebook else ""
        super().__init__(f"task {task!r}, stage {stage!r}: {error_type}: {message}{where}")


class StageTimeout(TaskFailed):
    def __init__(
        self,
        task: str,
        stage: str,
        timeout_s: float,
        notebook: str | None,
        *,
        evidence: CellEvidence | None = None,
    ) -> None:
        super().__init__(
            task,
            stage,
            "StageTimeout",
            f"stage ran past its timeout_s of {timeout_s:g}s and its kernel was stopped; "
            f"raise tasks.{task}.timeout_s in pipeline.yaml if the work is legitimately slow",
            notebook,
            evidence=evidence,
        )


# Exception class names (litellm's, openai's, httpx's, or our own) that mean "try again later", with the
# kind each is logged as. The one list both the LLM retry layer and whole-stage ``retries:`` consult.
TRANSIENT_ERRORS: dict[str, str] = {
    "RateLimitError": "rate_limit",
    "Timeout": "timeout",
    "APITimeoutError": "timeout",
    "ReadTimeout": "timeout",
    "APIConnectionError": "connection",
    "ConnectError": "connection",
    "InternalServerError": "server_error",
    "ServiceUnavailableError": "server_error",
    "BadGatewayError": "server_error",
    "TransientLLMError": "exhausted_retries",
}


# Provider refusals that no retry will change but another model might: with an expert's candidate list,
# the next candidate is tried. (Bad requests of our own making are not here: every model would refuse.)
REFUSAL_ERRORS: frozenset[str] = frozenset(
    {
        "AuthenticationError",
        "PermissionDeniedError",
        "NotFoundError",
        "ContentPolicyViolationError",
        "ContextWindowExceededError",
        "TransientLLMError",
    }
)


class LLMError(PopError):
    """An LLM call failed; ``error_type`` is the provider's error class."""

    def __init__(self, error_type: str, message: str) -> None:
        self.error_type = error_type
        # a subclass's name already says what it is (the banner shows it): "BudgetExceeded: BudgetExceeded"
        named = error_type == type(self).__name__
        super().__init__(message if named else f"{error_type}: {message}")


class TransientLLMError(LLMError):
    """A transient LLM failure that outlasted our retries; a stage with ``retries:`` runs again."""


class BudgetExceeded(LLMError):
    """A call was refused before it was sent: it could push the job or task past its ``budget_usd``."""

    def __init__(
        self, scope: str, job: str, task: str | None, spent: float, estimate: float, limit: float
    ) -> None:
        self.scope, self.job, self.task = scope, job, task
        self.spent, self.estimate, self.limit = spent, estimate, limit
        what = f"task {task!r} of job {job!r}" if scope == "task" else f"job {job!r}"
        fix = (
            f"raise tasks.{task}.budget_usd in pipeline.yaml, then `pop resume {job}`"
            if scope == "task"
            else f"`pop resume {job} --budget-usd <more>` (or raise budget_usd in the seed or pipeline.yaml)"
        )
        super().__init__(
            "BudgetExceeded",
            f"{what} has spent ${spent:.6f}; this call is estimated at ${estimate:.6f}, which would pass "
            f"its budget_usd of ${limit:.6f}, so it was not sent. Fix: {fix}",
        )


class ReplayMiss(LLMError):
    """In ``replay`` mode a call found no recorded answer; nothing was sent."""

    def __init__(
        self, model: str, pipeline: str | None, task: str | None, stage: str | None, key: str
    ) -> None:
        self.key = key
        where = f"task {task!r}, stage {stage!r}" if task else "this call"
        super().__init__(
            "ReplayMiss",
            f"{where}: no recorded answer for this request to {model} (cache key {key[:12]}), and the cache "
            "mode is replay, so nothing was sent. The prompt, model or parameters changed since the "
            f"recording. Fix: record again with `pop test {pipeline or '<pipeline>'} --record`, or run "
            "with POP_LLM_CACHE=read-write to pay for the new answers",
        )


class NoSuitableModel(PopError):
    """No candidate of an expert role can serve the task."""

    def __init__(self, role: str, rejected: dict[str, str]) -> None:
        self.role = role
        self.rejected = rejected
        why = "; ".join(f"{model}: {reason}" for model, reason in rejected.items()) or "no candidates"
        super().__init__(
            f"no suitable model for expert {role!r} ({why}). Fix: set the missing key in the environment, "
            f"or add a capable model to experts.{role} in pipeline.yaml"
        )


class ProviderError(PopError):
    """A failure inside one of our own providers (``claude-code``); ``error_type`` is matched against
    :data:`TRANSIENT_ERRORS` like a litellm exception's class name."""

    def __init__(self, error_type: str, message: str, *, transient: bool = False) -> None:
        self.error_type = error_type
        self.transient = transient
        super().__init__(message)


class MockScriptError(PopError):
    """The scripted ``mock/`` model has no answer for a call."""


# Exit codes of `pop`: how a followed job ended (run, resume, approve, batch), then the errors'.
EXIT_DONE = 0
EXIT_FAILED = 1  # the job failed or was cancelled; a batch with a failed, rejected or stalled seed
EXIT_ERROR = 2  # every PopError (see ERROR_CODES), and argparse's usage errors
EXIT_WAITING = 3  # the job stopped at a gate: `pop approve` / `pop reject`
EXIT_INFRA = 4  # `pop test`: a provider failed (429, timeout, connection, key), not the pipeline
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_CLOSED_PIPE = 141  # its reader went away (`pop logs ... | head`; 128 + SIGPIPE)

# The one table from an error to an HTTP status (the server) and an exit code (the CLI); the first
# matching class wins, so subclasses come before their bases. README.md shows it (a test compares).
ERROR_CODES: tuple[tuple[type[Exception], int, int], ...] = (
    (JobNotFound, 404, EXIT_ERROR),
    (JobFileNotFound, 404, EXIT_ERROR),
    (ScheduleNotFound, 404, EXIT_ERROR),
    (SchedulesFileError, 422, EXIT_ERROR),
    (PipelineNotFound, 404, EXIT_ERROR),
    (ExperimentNotFound, 404, EXIT_ERROR),
    (SeedTooLarge, 413, EXIT_ERROR),
    (SeedError, 400, EXIT_ERROR),
    (RequestError, 400, EXIT_ERROR),
    (PipelineError, 422, EXIT_ERROR),
    (UnreadableStatus, 500, EXIT_ERROR),
    (JobStateError, 409, EXIT_ERROR),
    (ExecutorError, 503, EXIT_ERROR),
    (ConfigError, 500, EXIT_ERROR),
    (PopError, 400, EXIT_ERROR),
)


def http_status(exc: BaseException) -> int:
    return next((status for kind, status, _ in ERROR_CODES if isinstance(exc, kind)), 500)


def exit_code(exc: BaseException) -> int:
    return next((code for kind, _, code in ERROR_CODES if isinstance(exc, kind)), EXIT_FAILED)
