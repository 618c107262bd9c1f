"""What the job functions read: jobs (listed from a warm index), one job in detail, the overview, the
pipelines with their seed forms, costs. Nothing here changes a job."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.config import PopSettings
from pop_nb.errors import PopError
from pop_nb.models import lifecycle
from pop_nb.models.api import (
    Explanation,
    JobDetail,
    JobPage,
    JobSummary,
    Overview,
    PipelineInfo,
    StageView,
)
from pop_nb.models.lifecycle import Activity
from pop_nb.models.seed import MAX_SEED_DEPTH, json_depth
from pop_nb.models.status import JobStatus, StatusHead, Totals
from pop_nb.safejson import loads
from pop_nb.service.runs import job_runs
from pop_nb.store.job_index import NEWEST, TOTALS, Entry, JobIndex, newest_first
from pop_nb.store.jobs import ARCHIVE, PLACES, JobFolder, JobStore

if TYPE_CHECKING:
    from pop_nb.pipeline.load import Pipeline

MAX_PAGE = 500


def activity(folder: JobFolder, status: JobStatus | StatusHead) -> Activity:
    """What the job is doing now (:func:`pop_nb.models.lifecycle.activity`), its runner looked for only
    where it matters: in ``current/``, not waiting."""
    has_runner = folder.place == "current" and status.state != "waiting" and folder.has_runner()
    return lifecycle.activity(folder.place, status.state, has_runner)


def summary(folder: JobFolder, status: JobStatus | StatusHead | None = None) -> JobSummary:
    status = status or folder.read_status()
    return JobSummary.of(status, folder.place, activity(folder, status))


_indexes: dict[tuple[Path, bool], JobIndex] = {}


def index_of(settings: PopSettings, archived: bool = False) -> JobIndex:
    """The process's :class:`JobIndex` of a data folder's live jobs, or of its ``archive/`` (kept between
    calls: that is what makes it warm)."""
    key = (settings.data, archived)
    if key not in _indexes:
        _indexes[key] = JobIndex(settings.data, (ARCHIVE,) if archived else PLACES)
    return _indexes[key]


def _seconds(entry: Entry) -> float:
    """How long it ran (started to ended; -1 when it has not both)."""
    from datetime import datetime

    if not (entry.started_at and entry.ended_at):
        return -1.0
    try:
        return (
            datetime.fromisoformat(entry.ended_at) - datetime.fromisoformat(entry.started_at)
        ).total_seconds()
    except ValueError:
        return -1.0


SORTS: dict[str, Any] = {
    "created": newest_first,
    "started": lambda e: e.started_at,
    "ended": lambda e: e.ended_at,
    "duration": _seconds,
    "cost": lambda e: e.totals[4],
    "state": lambda e: (e.state, e.created_at),
    "name": lambda e: (e.name or e.job_id).lower(),
    "pipeline": lambda e: (e.pipeline, e.created_at),
}
"""What a list sorts on (``sort=<key>`` ascending, ``sort=-<key>`` descending)."""


def list_jobs(
    settings: PopSettings,
    *,
    state: str | None = None,
    pipeline: str | None = None,
    search: str | None = None,
    offset: int = 0,
    limit: int = 50,
    sort: str = "-created",
    archived: bool = False,
) -> JobPage:
    """Jobs filtered by state, pipeline and a substring of the id or name, sorted (newest first unless
    ``sort`` says otherwise), one page; ``archived``: the archived ones instead of the live ones."""
    if limit < 1 or limit > MAX_PAGE or offset < 0:
        raise PopError(
            f"paging: limit must be 1-{MAX_PAGE} and offset >= 0 (got limit={limit}, offset={offset})"
        )
    key = SORTS.get(sort.lstrip("-"))
    if key is None:
        raise PopError(
            f"sort {sort!r}: sort on one of {', '.join(SORTS)} (a leading '-' for descending, e.g. -cost)"
        )
    needle = (search or "").lower()
    state, pipeline = state or None, pipeline or None  # an empty filter (``?state=``) is none
    if sort == "-created" and not (state or pipeline or needle) and offset + limit <= NEWEST:
        # the first pages of the default list: the index's newest jobs, no finished one parsed but those
        newest, total = index_of(settings, archived).newest(offset + limit)
        page = _summaries(settings, newest[offset:])
        return JobPage(jobs=page, total=total, offset=offset, limit=limit, data_dir=str(settings.data))

    def keep(job_id: str, name: str, its_state: str, its_pipeline: str) -> bool:
        return (
            (state is None or its_state == state)
            and (pipeline is None or its_pipeline == pipeline)
            and (not needle or needle in job_id.lower() or needle in name.lower())
        )

    index = index_of(settings, archived)
    chosen = index.matching(keep) if state or pipeline or needle else index.refresh()
    chosen.sort(key=key, reverse=sort.startswith("-"))
    page = _summaries(settings, chosen[offset : offset + limit])
    return JobPage(jobs=page, total=len(chosen), offset=offset, limit=limit, data_dir=str(settings.data))


_SUMMARIES: OrderedDict[tuple[str, int], JobSummary] = OrderedDict()
_SUMMARIES_LOCK = threading.Lock()
KEPT_SUMMARIES = 4096  # finished jobs' summaries kept, most recently shown: a few pages of every list


def _summaries(settings: PopSettings, entries: list[Entry]) -> list[JobSummary]:
    """The page's summaries. A finished job's is kept (by its status file's mtime), so paging back and
    forth parses nothing; a job in current/ is summed up afresh, its runner being looked for. A job that
    moved since it was listed is found where it is now; one that is gone is left out."""
    found = []
    for entry in entries:
        key = (entry.path, entry.stamp)
        with _SUMMARIES_LOCK:
            item = _SUMMARIES.get(key)
            if item is not None:
                _SUMMARIES.move_to_end(key)
        if item is None:
            try:
                item = summary(entry.folder, entry.head())
            except (OSError, ValueError):
                try:
                    item = summary(JobStore(settings.data).get(entry.job_id))
                except (PopError, OSError, ValueError):
                    continue
            if entry.raw is None:
                with _SUMMARIES_LOCK:
                    _SUMMARIES[key] = item
                    while len(_SUMMARIES) > KEPT_SUMMARIES:
                        _SUMMARIES.popitem(last=False)
        found.append(item)
    return found


def overview(settings: PopSettings, recent: int = 10) -> Overview:
    """``pop status`` without an id: running, queued, waiting, the ``recent`` latest failures, and how
    many are done (from the index's counts: no finished job's status is read)."""
    from pop_nb.store.pending import scan_pending

    groups: dict[str, list[JobSummary]] = {"running": [], "queued": [], "waiting": [], "failed": []}
    index = index_of(settings)
    for entry in index.entries("current"):
        item = summary(entry.folder, entry.head())
        groups["failed" if item.activity == "ended" else item.activity].append(item)
    for key in ("running", "queued", "waiting"):
        groups[key].sort(key=lambda s: s.created_at)
    failed = sorted(index.entries("failed"), key=lambda e: e.ended_at, reverse=True)
    failed_count = len(failed) + len(groups["failed"])
    groups["failed"] += _summaries(settings, failed[: max(0, recent - len(groups["failed"]))])
    groups["failed"].sort(key=lambda s: s.ended_at or "", reverse=True)
    done = index.counts("complete")
    totals = Totals(**dict(zip(TOTALS, done["totals"], strict=True)))
    return Overview(
        **groups,
        failed_count=failed_count,
        done=done["count"],
        done_totals=totals,
        latest_done=done["newest"],
        strays=scan_pending(settings.data / "pending")[1],
    )


def get_job(settings: PopSettings, job_id: str) -> JobDetail:
    """One job with its tasks, every stage run and its notebook, final outputs and products."""
    folder = JobStore(settings.data).get(job_id)
    status = folder.read_status()
    usage = folder.usage()  # read once: each stage's cost and each run's
    spent = _stage_spending(usage, status)
    stages = [
        StageView(
            task=name,
            key=key,
            stage=run.stage,
            refinement=run.refinement,
            attempt=run.attempt,
            state=run.state,
            started_at=run.started_at,
            duration_ms=run.duration_ms,
            notebook=run.notebook,
            path=str(folder.path / run.notebook) if run.notebook else None,
            calls=spent.get((name, key), Totals()).calls,
            cost_usd=spent.get((name, key), Totals()).cost_usd,
        )
        for name, task in status.tasks.items()
        for key, run in task.stages.items()
    ]
    stages.sort(key=lambda s: s.started_at or "")
    outputs = folder.final_outputs(status)
    products = _products(folder.products_dir)
    base = summary(folder, status)
    return JobDetail(
        **base.model_dump(),
        path=str(folder.path),
        tasks=status.tasks,
        stages=stages,
        outputs=outputs,
        products=products,
        runs=job_runs(folder, status, usage),
        seed=_seed_of(folder),
    )


def _stage_spending(usage: list[dict[str, Any]], status: JobStatus) -> dict[tuple[str, str], Totals]:
    """(task, stage key) -> what the stage's latest run used: its usage rows since it started."""
    from pop_nb.store.jobs import run_suffix
    from pop_nb.store.usage import add_row

    found: dict[tuple[str, str], Totals] = {}
    for row in usage:
        task, stage = row.get("task"), row.get("stage")
        run_key = f"{stage}{run_suffix(int(row.get('refinement') or 0))}"
        run = status.tasks[task].stages.get(run_key) if task in status.tasks else None
        if run is not None and run.started_at and str(row.get("ts") or "") >= run.started_at:
            add_row(found.setdefault((str(task), run_key), Totals()), row)
    return found


def _seed_of(folder: JobFolder) -> dict[str, Any]:
    try:
        return folder.read_seed().model_dump(mode="json", exclude_defaults=True)
    except (OSError, ValueError):  # a seed that no longer reads: the job view shows none
        return {}


def pipelines(settings: PopSettings, detail: bool = True) -> list[PipelineInfo]:
    """Every pipeline under the root, loaded (a broken one says why instead of hiding), with its seed
    schema and example seeds (what a seed form starts from), its architecture and saved explanation;
    ``detail=False``: slug, file, description and tasks only (no task notebook or seed file read)."""
    from pop_nb.pipeline.explain import saved
    from pop_nb.pipeline.load import discover, load_pipeline_file

    found = []
    for slug, file in sorted(discover(settings.root).items()):
        try:
            pipeline = load_pipeline_file(file, slug)
            info = PipelineInfo(
                slug=slug,
                file=str(file),
                description=pipeline.spec.description,
                tasks=list(pipeline.spec.tasks),
            )
            if detail:
                schema_file = pipeline.seed_schema_path()
                explained = saved(pipeline)
                info.seed_schema = _json_object(schema_file) if schema_file else None
                info.examples = _example_seeds(file.parent / "seeds")
                info.architecture = _architecture(pipeline)
                info.explanation = Explanation.model_validate(explained) if explained else None
            found.append(info)
        except PopError as exc:
            found.append(PipelineInfo(slug=slug, file=str(file), error=str(exc).splitlines()[0]))
    return found


def _architecture(pipeline: Pipeline) -> list[str]:
    """The architecture, or one line saying why not (a task notebook that does not load)."""
    from pop_nb.pipeline.explain import architecture

    try:
        return architecture(pipeline)
    except (OSError, ValueError, PopError) as exc:
        return [f"(no architecture: {str(exc).splitlines()[0]})"]


MAX_EXAMPLES = 20
MAX_EXAMPLE_BYTES = 256 * 1024


def _json_object(file: Path) -> dict[str, Any] | None:
    """A JSON object from a file, or None if it is missing, too big, not JSON or not an object."""
    try:
        if file.stat().st_size > MAX_EXAMPLE_BYTES:
            return None
        value = loads(file.read_bytes())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and json_depth(value) <= MAX_SEED_DEPTH else None


def _example_seeds(folder: Path) -> dict[str, dict[str, Any]]:
    examples: dict[str, dict[str, Any]] = {}
    for file in sorted(folder.glob("*.json"))[:MAX_EXAMPLES] if folder.is_dir() else []:
        seed = _json_object(file) if file.is_file() else None
        if seed is not None:
            examples[file.name] = seed
    return examples


def costs(settings: PopSettings, by: str = "pipeline") -> list[dict[str, Any]]:
    """``pop costs`` rows (JSON-ready; no pandas, so the CLI starts fast)."""
    from pop_nb.analytics.rollup import cost_rows

    return cost_rows(settings.data, by)


def _products(products_dir: Path) -> list[str]:
    """A job's product files, relative to ``products/``: not what Jupyter keeps beside a file opened in
    Lab (``.ipynb_checkpoints/``), nor any other hidden file."""
    if not products_dir.is_dir():
        return []
    found = (p.relative_to(products_dir) for p in products_dir.rglob("*") if p.is_file())
    return sorted(rel.as_posix() for rel in found if not any(part.startswith(".") for part in rel.parts))
