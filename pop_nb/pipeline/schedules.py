"""A project's schedules (``schedules:`` of each pipeline.yaml, and ``schedules.yaml`` at the root), what
is wrong with each, and their slots.

Slots come from the cron expression read in the schedule's time zone, one per wall-clock time: when a
daylight-saving change repeats an hour, a time already passed in it does not fire again; when it skips
an hour, a time inside the gap fires once, at the end of the gap (the cron library's rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from pop_nb.errors import SchedulesFileError
from pop_nb.models.schedule import SCHEDULE_NAME, ProjectScheduleSpec, ScheduleSpec

PROJECT_FILE = "schedules.yaml"


@dataclass
class Definition:
    """A schedule as its file says, with what is wrong with it (then it never fires)."""

    name: str
    pipeline: str
    spec: ScheduleSpec
    source: Path  # the file that defines it
    base: Path  # the folder its seed file is relative to
    problems: list[str] = field(default_factory=list)
    seed: dict[str, Any] | None = None  # the seed each slot gets, with its pipeline
    zone: ZoneInfo | None = None

    @property
    def problem(self) -> str | None:
        return "; ".join(self.problems) or None


def definitions(root: Path) -> list[Definition]:
    """Every schedule of the project (each pipeline's, then schedules.yaml's), checked; a schedule whose
    name is taken twice is kept once, the second a problem of the first. Raises
    :class:`SchedulesFileError` when schedules.yaml is no YAML mapping."""
    from pop_nb.pipeline.load import discover, load_yaml

    found: list[Definition] = []
    for slug, file in sorted(discover(root).items()):
        try:
            doc = load_yaml(file)
        except Exception:  # a broken pipeline.yaml says so in `pop compile`; it has no schedules here
            continue
        entries = doc.get("schedules") if isinstance(doc, dict) else None
        for name, entry in (entries or {}).items() if isinstance(entries, dict) else ():
            found.append(_definition(str(name), slug, entry, file, file.parent, ScheduleSpec))
    project = root / PROJECT_FILE
    if project.is_file():
        try:
            doc = load_yaml(project)
        except Exception as exc:
            raise SchedulesFileError(project, f"not valid YAML ({exc})") from None
        if doc is not None and not isinstance(doc, dict):
            raise SchedulesFileError(project, f"holds a {type(doc).__name__}, not a mapping")
        for name, entry in (doc or {}).items():
            slug = str(entry.get("pipeline", "")) if isinstance(entry, dict) else ""
            found.append(_definition(str(name), slug, entry, project, root, ProjectScheduleSpec))
    seen: dict[str, Definition] = {}
    for definition in found:
        first = seen.setdefault(definition.name, definition)
        if first is not definition:
            first.problems.append(f"the name is also used in {definition.source}: rename one of them")
    known = set(discover(root))
    for definition in seen.values():
        if definition.pipeline not in known and not definition.problems:
            definition.problems.append(f"no pipeline named {definition.pipeline!r}")
    return list(seen.values())


def _definition(
    name: str, slug: str, entry: Any, source: Path, base: Path, model: type[ScheduleSpec]
) -> Definition:
    try:
        spec = model.model_validate(entry)
    except ValidationError as exc:
        wrong = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
        spec = ScheduleSpec(cron="", seed={})
        return Definition(name, slug, spec, source, base, [f"invalid entry ({wrong})"])
    definition = Definition(name, slug, spec, source, base)
    definition.problems = check(definition)
    return definition


def check(definition: Definition) -> list[str]:
    """What is wrong with the schedule's name, cron expression, time zone and seed (its shape; the
    pipeline's seed_schema is checked by `pop compile`)."""
    from croniter import croniter

    from pop_nb.errors import PopError
    from pop_nb.models.seed import MAX_SEED_BYTES, loads_seed, parse_seed

    problems = []
    spec = definition.spec
    if not re.fullmatch(SCHEDULE_NAME, definition.name):
        problems.append("a schedule's name uses a-z, 0-9 and - (at most 64), starting with a letter or digit")
    if not croniter.is_valid(spec.cron) or len(spec.cron.split()) not in (5, 6):
        problems.append(
            f"cron {spec.cron!r} is not a cron expression: write 5 fields (minute hour day month weekday), "
            "e.g. '0 6 * * 1-5', or 6 with seconds last"
        )
    try:
        definition.zone = ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            f"unknown time zone {spec.timezone!r}: use an IANA name such as 'Europe/London' or 'UTC'"
        )
    if not problems and not slots_after(definition, datetime.now(UTC), limit=1):
        problems.append(
            f"cron {spec.cron!r} matches no date (e.g. the 31st of February): it would never fire"
        )
    seed: Any = spec.seed
    where = "its inline seed"
    try:
        if isinstance(seed, str):
            where = f"seed file {seed}"
            with (definition.base / seed).open("rb") as fh:
                seed = loads_seed(fh.read(MAX_SEED_BYTES + 1), where)  # one byte over: never /dev/zero
        if isinstance(seed, dict):
            seed = {**seed, "pipeline": seed.get("pipeline", definition.pipeline)}
        parsed = parse_seed(seed, where, definition.pipeline)  # one naming another pipeline is refused
        definition.seed = parsed.model_dump(mode="json", exclude_none=True)
    except FileNotFoundError:
        problems.append(f"seed file {spec.seed!r} does not exist (relative to {definition.base})")
    except OSError as exc:  # a folder, no permission
        problems.append(f"{where} cannot be read: {exc.strerror or exc}")
    except PopError as exc:  # SeedError (the one seed rule: JSON, size, depth, shape) names the fix
        problems.append(str(exc))
    return problems


def slot_key(slot: datetime) -> str:
    """A slot's name: its UTC time, ``YYYYMMDDTHHMMSSZ`` (sorted by name is sorted by time)."""
    return slot.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def key_time(key: str) -> datetime:
    return datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def job_id(name: str, slot: datetime) -> str:
    return f"{name}-{slot_key(slot)}"


def slots_after(
    definition: Definition, after: datetime, until: datetime | None = None, limit: int = 1000
) -> list[datetime]:
    """The schedule's slots after ``after`` (up to ``until``, at most ``limit``), each a UTC time, one per
    wall-clock time of its zone."""
    from croniter import CroniterBadDateError, croniter

    zone = definition.zone
    if zone is None or definition.problems:
        return []
    local_after = after.astimezone(zone)
    last_wall = local_after.replace(tzinfo=None)
    found: list[datetime] = []
    it = croniter(definition.spec.cron, local_after)
    for _ in range(limit * 4):  # a repeated hour can give skipped candidates; never loop for ever
        try:
            candidate: datetime = it.get_next(datetime)
        except CroniterBadDateError:  # no date matches ("0 0 31 2 *"): `check` says so
            break
        if until is not None and candidate > until:
            break
        wall = candidate.replace(tzinfo=None)
        if wall <= last_wall:  # the hour a clock change repeats: this time has passed once already
            continue
        last_wall = wall
        found.append(candidate.astimezone(UTC))
        if len(found) >= limit:
            break
    return found


def slots_before(definition: Definition, until: datetime, count: int) -> list[datetime]:
    """The latest ``count`` slots at or before ``until``, oldest first (after a long gap)."""
    from croniter import CroniterBadDateError, croniter

    zone = definition.zone
    if zone is None or definition.problems or count <= 0:
        return []
    it = croniter(definition.spec.cron, until.astimezone(zone) + timedelta(seconds=1))
    found: list[datetime] = []
    walls: set[datetime] = set()
    for _ in range(count * 4):
        try:
            candidate: datetime = it.get_prev(datetime)
        except CroniterBadDateError:
            break
        wall = candidate.replace(tzinfo=None)
        if wall in walls:
            continue
        walls.add(wall)
        found.append(candidate.astimezone(UTC))
        if len(found) >= count:
            break
    return found[::-1]


__all__ = [
    "PROJECT_FILE",
    "Definition",
    "definitions",
    "job_id",
    "key_time",
    "slot_key",
    "slots_after",
    "slots_before",
]
