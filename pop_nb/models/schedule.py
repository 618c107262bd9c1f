"""Schedules: ``schedules:`` in a pipeline.yaml, or a project's ``schedules.yaml``, kept by the daemon.

Each slot a schedule's cron expression gives (in its time zone) is decided once, by whichever daemon
claims it first: a file ``<data>/schedules/<name>/slots/<slot>.json`` (a :class:`SlotRecord`), created
exclusively. A slot that runs makes the job ``<name>-<slot as UTC, YYYYMMDDTHHMMSSZ>``, so the drop
folder's rule (one job per id) keeps it run once too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from pop_nb.models.base import Model

SCHEDULE_NAME = r"^[a-z0-9][a-z0-9-]{0,63}$"
SlotAction = Literal["started", "queued", "skipped", "missed"]


class ScheduleSpec(Model):
    """One schedule, as written under ``schedules:`` (the pipeline is the one it is written in)."""

    model_config = ConfigDict(extra="forbid")

    cron: str = Field(
        description="When: a cron expression (minute hour day month weekday; a sixth field is seconds)."
    )
    timezone: str = Field(default="UTC", description="The IANA time zone the expression is read in.")
    seed: str | dict[str, Any] = Field(
        description="The seed of each run: inline {data, name?, llm?, config?, tasks?}, or a seed file "
        "(relative to the pipeline's folder; to the project for schedules.yaml)."
    )
    overlap: Literal["skip", "queue"] = Field(
        default="skip",
        description="When a slot comes while the schedule's last job has not ended: skip the slot, or "
        "queue it to start when that job ends.",
    )
    catch_up: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="Slots missed while no daemon ran, run when one is back: at most this many, the "
        "latest (0: none).",
    )
    paused: bool = Field(default=False, description="Declared paused (`pop schedules resume` overrides).")
    description: str = ""


class ProjectScheduleSpec(ScheduleSpec):
    """An entry of a project's ``schedules.yaml``: the same, naming its pipeline."""

    pipeline: str


class SlotRecord(Model):
    """``slots/<slot>.json``: how one slot was decided."""

    schedule: str
    pipeline: str
    slot: str = Field(description="The slot's time, UTC ISO.")
    local: str = Field(description="The slot's time in the schedule's time zone, ISO with its offset.")
    action: SlotAction
    job: str | None = Field(default=None, description="The job it made or will make (started, queued).")
    why: str | None = Field(default=None, description="Why it was skipped or missed.")
    at: str = Field(description="When it was decided.")
    by: str = Field(description="The daemon that decided it.")


class ScheduleState(Model):
    """``<data>/schedules/<name>/state.json``: when a daemon first saw the schedule (no slot before it
    is owed), and a pause or resume by `pop schedules`, over the definition's ``paused``."""

    since: str
    paused: bool | None = None
    changed_by: str | None = None
    changed_at: str | None = None


class SlotView(Model):
    slot: str
    local: str
    action: SlotAction
    job: str | None = None
    state: str | None = Field(default=None, description="The job's state now (null: none, or not found).")
    why: str | None = None


class ScheduleView(Model):
    """``pop schedules``, ``GET /pop/api/schedules``: a schedule, its next slots and its last outcomes."""

    name: str
    pipeline: str
    cron: str
    timezone: str
    overlap: Literal["skip", "queue"]
    catch_up: int
    paused: bool
    description: str = ""
    source: str = Field(description="The file it is defined in, relative to the project.")
    problem: str | None = Field(default=None, description="Why it cannot run (then it has no next slots).")
    next: list[str] = Field(default_factory=list, description="The next slots, ISO in its time zone.")
    history: list[SlotView] = Field(
        default_factory=list, description="The latest slots decided, newest first."
    )


__all__ = [
    "SCHEDULE_NAME",
    "ProjectScheduleSpec",
    "ScheduleSpec",
    "ScheduleState",
    "ScheduleView",
    "SlotAction",
    "SlotRecord",
    "SlotView",
]
