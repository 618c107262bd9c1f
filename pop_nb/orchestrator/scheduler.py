"""The daemon's schedules: at each wake, the slots that came are decided and their seeds dropped.

Files, under ``<data>/schedules/<name>/``:
  state.json           when a daemon first saw the schedule (nothing before it is owed), and a pause
  slots/<slot>.json    how each slot was decided (:class:`SlotRecord`), created exclusively: the first
                       daemon to create it decides the slot, any other daemon leaves it alone
  slots/<slot>.released  a queued slot given its job (created exclusively too)

A wake costs a comparison per schedule until one is due: each keeps its next slot in memory, and the
definitions are read again only when their files change (looked at every few seconds).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pop_nb.config import PopSettings
from pop_nb.errors import SchedulesFileError, SeedError
from pop_nb.models.schedule import ScheduleState, SlotRecord
from pop_nb.pipeline.schedules import (
    PROJECT_FILE,
    Definition,
    definitions,
    job_id,
    key_time,
    slot_key,
    slots_after,
    slots_before,
)
from pop_nb.store.atomic import atomic_create_bytes, atomic_write_json, read_json
from pop_nb.store.jobs import JobStore
from pop_nb.store.pending import SEED_SUFFIX, submit_seed

MAX_SLOTS = 1000  # slots looked at after a gap; beyond, only the latest (catch_up + 1) are
LATE_S = 60.0  # a slot seen later than this after its time was missed (a daemon was down), not on time
RELOAD_S = 5.0  # how often the definition files are looked at for a change


def schedules_dir(data: Path) -> Path:
    return data / "schedules"


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Entry:
    definition: Definition
    after: datetime  # every slot up to here is decided
    next_due: datetime | None  # the first slot after ``after``; None: never (broken)
    queued: list[str] = field(default_factory=list)  # slot keys queued and not yet released, oldest first
    last_job: str | None = None


class Scheduler:
    """Decides the slots of a project's schedules. Several may run on one data folder (one per daemon):
    each slot is decided by exactly one."""

    def __init__(self, settings: PopSettings, by: str, say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.by = by
        self.say = say
        self.home = schedules_dir(settings.data)
        self.store = JobStore(settings.data)
        self.entries: dict[str, _Entry] = {}
        self._stamps: tuple[tuple[str, float], ...] | None = None
        self._looked = float("-inf")
        self._told: set[str] = set()  # problems said once each

    # -- the wake ------------------------------------------------------------------------------------
    def wake(self, now: datetime | None = None) -> list[SlotRecord]:
        """Decide every slot that came by ``now``; the decisions this daemon took."""
        now = now or now_utc()
        self._reload(now)
        decided: list[SlotRecord] = []
        for entry in self.entries.values():
            if entry.queued:
                self._release(entry)
            if entry.next_due is None or entry.next_due > now:
                continue
            decided += self._due(entry, now)
        return decided

    def _due(self, entry: _Entry, now: datetime) -> list[SlotRecord]:
        definition, spec = entry.definition, entry.definition.spec
        slots = slots_after(definition, entry.after, now, limit=MAX_SLOTS + 1)
        gap = str(len(slots) - 1)
        if len(slots) > MAX_SLOTS:  # down for long: only the latest matter
            slots, gap = slots_before(definition, now, spec.catch_up + 1), f"over {MAX_SLOTS}"
        entry.after = max(entry.after, now)
        entry.next_due = _first(slots_after(definition, entry.after, limit=1))
        state = self._state(definition.name, now)
        if not slots or (state.paused if state.paused is not None else spec.paused):
            return []
        on_time = slots[-1] if (now - slots[-1]).total_seconds() <= LATE_S else None
        missed = slots[:-1] if on_time else slots
        owed = missed[max(len(missed) - spec.catch_up, 0) :] if spec.catch_up else []
        lost = missed[: len(missed) - len(owed)]
        decided: list[SlotRecord | None] = []
        if lost:  # one record for the gap, on its last slot
            count = gap if len(lost) == len(missed) and gap.startswith("over") else str(len(lost))
            since = lost[0].isoformat()
            why = f"{count} slot(s) from {since} missed: no daemon ran then (catch_up {spec.catch_up})"
            decided.append(self._claim(entry, lost[-1], "missed", why=why))
        busy = self._unfinished(entry) or bool(entry.queued)
        started_now = False  # a slot of this wake started: the owed ones after it queue behind it
        for slot in [*owed, *([on_time] if on_time else [])]:
            if busy and spec.overlap == "skip" and not started_now:
                record = self._claim(entry, slot, "skipped", why=f"overlap: {entry.last_job} has not ended")
            elif busy:  # queued behind the running job (catch-up runs are owed: one after another)
                record = self._claim(entry, slot, "queued", job=job_id(definition.name, slot))
                if record is not None:
                    entry.queued.append(slot_key(slot))
            else:
                record = self._claim(entry, slot, "started", job=job_id(definition.name, slot))
                if record is not None:
                    self._drop(entry, slot)
                busy = started_now = True  # by us, or by the daemon that claimed it first
            decided.append(record)
        return [r for r in decided if r is not None]

    def _claim(
        self, entry: _Entry, slot: datetime, action: str, *, job: str | None = None, why: str | None = None
    ) -> SlotRecord | None:
        """Decide ``slot`` as ``action`` unless another daemon decided it first (then learn its job)."""
        definition = entry.definition
        assert definition.zone is not None
        record = SlotRecord(
            schedule=definition.name,
            pipeline=definition.pipeline,
            slot=slot.isoformat(),
            local=slot.astimezone(definition.zone).isoformat(),
            action=action,  # type: ignore[arg-type]
            job=job,
            why=why,
            at=now_utc().isoformat(timespec="milliseconds"),
            by=self.by,
        )
        file = self._slot_file(definition.name, slot_key(slot))
        file.parent.mkdir(parents=True, exist_ok=True)
        if atomic_create_bytes(file, (record.model_dump_json(indent=2) + "\n").encode("utf-8")):
            return record
        theirs = _read_record(file)
        if theirs is not None and theirs.job and theirs.action == "started":
            entry.last_job = theirs.job
        elif theirs is not None and theirs.action == "queued" and slot_key(slot) not in entry.queued:
            entry.queued.append(slot_key(slot))
        return None

    def _drop(self, entry: _Entry, slot: datetime) -> bool:
        """The slot's seed into pending/, as ``<name>-<slot>``; the daemon takes it like any other."""
        definition = entry.definition
        assert definition.seed is not None and definition.zone is not None
        ident = job_id(definition.name, slot)
        local = slot.astimezone(definition.zone).strftime("%Y-%m-%d %H:%M %Z")
        seed = {**definition.seed, "name": definition.seed.get("name") or f"{definition.name} {local}"}
        entry.last_job = ident
        try:
            submit_seed(self.settings, seed, ident)
        except SeedError as exc:  # already waiting there: whoever put it started it
            self._tell(f"{definition.name}: {exc}")
            return True
        self.say(f"schedule {definition.name}: slot {local} -> job {ident}")
        return True

    def _release(self, entry: _Entry) -> None:
        """Start the oldest queued slot once the schedule's last job has ended."""
        if self._unfinished(entry):
            return
        key = entry.queued.pop(0)
        marker = self._slot_file(entry.definition.name, key).with_suffix(".released")
        if atomic_create_bytes(marker, f"{self.by}\n".encode()):
            self._drop(entry, key_time(key))
        else:
            entry.last_job = job_id(entry.definition.name, key_time(key))

    def _unfinished(self, entry: _Entry) -> bool:
        """Whether the schedule's last job is waiting in pending/, being taken, or in current/ (not ended)."""
        ident = entry.last_job
        if ident is None:
            return False
        if (self.store.dir("pending") / f"{ident}{SEED_SUFFIX}").exists():
            return True
        claims = self.settings.data / ".orchestrator" / "claims"
        if claims.is_dir() and any((d / f"{ident}{SEED_SUFFIX}").exists() for d in claims.iterdir()):
            return True
        return (self.store.dir("current") / ident).is_dir()

    # -- definitions and state ---------------------------------------------------------------------------
    def _reload(self, now: datetime) -> None:
        clock = os.times().elapsed
        if clock - self._looked < RELOAD_S and self._stamps is not None:
            return
        self._looked = clock
        stamps = self._definition_stamps()
        if stamps == self._stamps:
            return
        self._stamps = stamps
        try:
            found = definitions(self.settings.root)
        except SchedulesFileError as exc:  # schedules.yaml unreadable: keep what was known, say why once
            self._tell(str(exc))
            return
        entries: dict[str, _Entry] = {}
        for definition in found:
            if definition.problem:  # never fires, and has no files (its name may be no safe folder name)
                self._tell(
                    f"schedule {definition.name} ({definition.source}) cannot run: {definition.problem}"
                )
                continue
            known = self.entries.get(definition.name)
            entries[definition.name] = self._entry(definition, now, known)
        self.entries = entries

    def _entry(self, definition: Definition, now: datetime, known: _Entry | None) -> _Entry:
        if known is not None:
            after, queued, last = known.after, known.queued, known.last_job
        else:
            state = self._state(definition.name, now)
            after, queued, last = _aware(state.since), [], None
            slots = self._slot_files(definition.name)
            for file in slots:
                record = _read_record(file)
                if record is None:
                    continue
                after = max(after, datetime.fromisoformat(record.slot))
                if record.action == "started":
                    last = record.job
                elif record.action == "queued":
                    if file.with_suffix(".released").exists():
                        last = record.job
                    else:
                        queued.append(file.stem)
        first = _first(slots_after(definition, after, limit=1))
        return _Entry(definition, after, first, queued, last)

    def _state(self, name: str, now: datetime) -> ScheduleState:
        """The schedule's state file, made the first time a daemon sees it."""
        file = self.home / name / "state.json"
        try:
            return ScheduleState.model_validate(read_json(file))
        except FileNotFoundError:
            state = ScheduleState(since=now.isoformat(timespec="seconds"))
            file.parent.mkdir(parents=True, exist_ok=True)
            if not atomic_create_bytes(file, (state.model_dump_json(indent=2) + "\n").encode("utf-8")):
                return ScheduleState.model_validate(read_json(file))
            return state
        except ValueError:  # torn or edited by hand: owed nothing from before now
            state = ScheduleState(since=now.isoformat(timespec="seconds"))
            atomic_write_json(file, state)
            return state

    def _definition_stamps(self) -> tuple[tuple[str, float], ...]:
        from pop_nb.pipeline.load import discover

        files = [*discover(self.settings.root).values(), self.settings.root / PROJECT_FILE]
        stamps = []
        for file in files:
            try:
                stamps.append((str(file), file.stat().st_mtime))
            except OSError:
                continue
        return tuple(sorted(stamps))

    def _slot_file(self, name: str, key: str) -> Path:
        return self.home / name / "slots" / f"{key}.json"

    def _slot_files(self, name: str) -> list[Path]:
        folder = self.home / name / "slots"
        return sorted(folder.glob("*.json")) if folder.is_dir() else []

    def _tell(self, message: str) -> None:
        if message not in self._told:
            self._told.add(message)
            self.say(message)


def _aware(since: str) -> datetime:
    moment = datetime.fromisoformat(since)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _first(slots: list[datetime]) -> datetime | None:
    return slots[0] if slots else None


def _read_record(file: Path) -> SlotRecord | None:
    try:
        return SlotRecord.model_validate(read_json(file))
    except (OSError, ValueError):
        return None


__all__ = ["LATE_S", "Scheduler", "schedules_dir"]
