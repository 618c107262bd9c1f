"""Schedules as the front ends show them: each with its next slots and its last outcomes, and a pause or
resume (written to its state file, which every daemon reads when a slot comes)."""

from __future__ import annotations

import getpass
import re
from datetime import datetime
from pathlib import Path

from pop_nb.config import PopSettings
from pop_nb.errors import ScheduleNotFound
from pop_nb.models.schedule import SCHEDULE_NAME, ScheduleState, ScheduleView, SlotRecord, SlotView
from pop_nb.orchestrator.scheduler import now_utc, schedules_dir
from pop_nb.pipeline.schedules import Definition, definitions, slots_after
from pop_nb.store.atomic import atomic_write_json, read_json
from pop_nb.store.jobs import JobStore
from pop_nb.store.pending import SEED_SUFFIX


def schedules(settings: PopSettings, *, upcoming: int = 3, history: int = 5) -> list[ScheduleView]:
    """Every schedule of the project, by name."""
    now = now_utc()
    return [_view(settings, d, now, upcoming, history) for d in sorted(definitions(settings.root), key=_name)]


def set_paused(settings: PopSettings, name: str, paused: bool, by: str | None = None) -> ScheduleView:
    """Pause or resume a schedule. A resume owes nothing from the pause: slots before it are not caught up."""
    found = {d.name: d for d in definitions(settings.root)}
    if name not in found or not re.fullmatch(SCHEDULE_NAME, name):  # never a path out of schedules/
        raise ScheduleNotFound(name, [n for n in found if re.fullmatch(SCHEDULE_NAME, n)])
    now = now_utc()
    file = schedules_dir(settings.data) / name / "state.json"
    state = _state(file) or ScheduleState(since=now.isoformat(timespec="seconds"))
    state.paused, state.changed_by, state.changed_at = (
        paused,
        by or getpass.getuser(),
        now.isoformat(timespec="seconds"),
    )
    if not paused:
        state.since = now.isoformat(timespec="seconds")
    atomic_write_json(file, state)
    return _view(settings, found[name], now, 3, 5)


def _name(definition: Definition) -> str:
    return definition.name


def _state(file: Path) -> ScheduleState | None:
    try:
        return ScheduleState.model_validate(read_json(file))
    except (OSError, ValueError):
        return None


def _view(
    settings: PopSettings, definition: Definition, now: datetime, upcoming: int, history: int
) -> ScheduleView:
    spec = definition.spec
    safe = re.fullmatch(SCHEDULE_NAME, definition.name) is not None
    home = schedules_dir(settings.data) / definition.name
    state = _state(home / "state.json") if safe else None
    paused = state.paused if state is not None and state.paused is not None else spec.paused
    zone = definition.zone
    upcoming_slots = slots_after(definition, now, limit=upcoming) if zone is not None and not paused else []
    try:
        source = definition.source.relative_to(settings.root).as_posix()
    except ValueError:
        source = str(definition.source)
    return ScheduleView(
        name=definition.name,
        pipeline=definition.pipeline,
        cron=spec.cron,
        timezone=spec.timezone,
        overlap=spec.overlap,
        catch_up=spec.catch_up,
        paused=paused,
        description=spec.description,
        source=source,
        problem=definition.problem,
        next=[s.astimezone(zone).isoformat() for s in upcoming_slots] if zone is not None else [],
        history=_history(settings, home, history) if safe else [],
    )


def _history(settings: PopSettings, home: Path, count: int) -> list[SlotView]:
    folder = home / "slots"
    files = sorted(folder.glob("*.json"), reverse=True)[:count] if folder.is_dir() else []
    store = JobStore(settings.data)
    views = []
    for file in files:
        try:
            record = SlotRecord.model_validate(read_json(file))
        except (OSError, ValueError):
            continue
        views.append(
            SlotView(
                slot=record.slot,
                local=record.local,
                action=record.action,
                job=record.job,
                state=_job_state(store, record.job) if record.job else None,
                why=record.why,
            )
        )
    return views


def _job_state(store: JobStore, job_id: str) -> str | None:
    """Where the slot's job is: its state, ``pending`` while its seed waits, ``rejected``, or None."""
    if (store.dir("pending") / f"{job_id}{SEED_SUFFIX}").exists():
        return "pending"
    folder = store.find(job_id)
    if folder is None:
        return None
    if folder.place == "rejected":
        return "rejected"
    try:
        return folder.read_status().state
    except Exception:  # unreadable for a moment (being written): say where it is
        return folder.place
