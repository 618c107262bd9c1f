"""``pop orchestrate``: watch ``pending/``, turn seeds into jobs, keep one runner per job, recover.

Every decision about a job is taken while holding its ``runner.lock``, and the lock is handed down to
the runner it starts; so however many daemons share a folder, a job has at most one runner, and a job
whose runner died is recovered once. Runners run in their own sessions and outlive the daemon; a
restarted daemon finds them by their locks and leaves them be.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

from pop_nb.config import PopSettings
from pop_nb.errors import ExecutorError, JobStateError
from pop_nb.models.records import Dispatch
from pop_nb.models.seed import shown_name
from pop_nb.orchestrator.current import QUEUED, RECOVER, RESEND, CurrentJobs, Place
from pop_nb.orchestrator.executors import Executor, JobHandle, get_executor, is_remote
from pop_nb.orchestrator.executors.base import resend
from pop_nb.orchestrator.intake import Intake
from pop_nb.orchestrator.scheduler import Scheduler
from pop_nb.store.jobs import JobFolder, JobStore
from pop_nb.store.locks import FileLock

FULL_LOOK_S = 15.0  # how often a wake looks at every queued job again (see Orchestrator._schedule)


class Orchestrator:
    def __init__(
        self,
        settings: PopSettings,
        *,
        poll_s: float = 1.0,
        watch: bool = True,
        once: bool = False,
        drain: bool = False,
        out: Any = None,
    ) -> None:
        self.settings = settings
        self.store = JobStore(settings.data)
        self.store.ensure_layout()
        self.poll_s = poll_s
        self.watch = watch
        self.once = once
        self.drain = drain
        self.out = out or sys.stdout
        self.home = settings.data / ".orchestrator"
        self.name = f"{os.uname().nodename}-{os.getpid()}-{secrets.token_hex(3)}"
        self.lock = FileLock(self.home / "daemons" / f"{self.name}.lock")
        self.intake = Intake(settings, self.home / "claims" / self.name)
        self.scheduler = Scheduler(settings, by=self.name, say=self._say)
        self.executor = get_executor(settings)
        self.spill = get_executor(settings, settings.spill_to) if settings.spill_to else None
        self.children: dict[str, JobHandle] = {}  # runners this daemon started on this machine
        self.complaints: set[str] = set()  # executor errors, reported once each
        self.others: dict[str, Executor] = {}  # executors of jobs dispatched by someone else
        self.claimed: set[str] = set()  # jobs this daemon made: started at once, no freshness wait
        self.strays: set[str] = set()  # files in pending/ that are not seeds, reported once each
        self.troubled: set[str] = set()  # seeds that raised before they could be claimed, reported once
        self.fault: str | None = None  # why the data folder cannot be used now, said once
        self.unfinished = 0  # jobs in current/ still to run or running (under any runner)
        self.current = CurrentJobs(self.store, settings, self.claimed)
        self._quiet: dict[str, Place] = {}  # queued jobs waiting for a slot: their place
        # jobs waiting at a remote executor's queue: when (time.monotonic) their lease is over; and the
        # soonest of those times
        self._resting: dict[str, float] = {}
        self._rested_at = float("inf")
        self._watched: set[str] = set()  # the other jobs in current/: looked at in every wake
        self._full_look_at = 0.0  # when a wake next looks at every job in current/
        self.wake = threading.Event()
        self.stopping = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------------
    def run(self) -> int:
        self.lock.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        self._signals()
        observer = self._observe() if self.watch else None
        where = (
            f"dispatching to {self.executor.name}"
            if self.executor.remote
            else f"max {self.settings.max_running_jobs} jobs here"
            + (f", the rest to {self.spill.name}" if self.spill else "")
        )
        self._say(f"orchestrating {self.settings.data} as {self.name} ({where})")
        try:
            if not self.once:
                self.executor.prepare()  # a runner waiting for the first seed: it starts in milliseconds
            self._recover_claims()
            while True:
                self._pass()
                if self.stopping.is_set():
                    if not self.drain or not self.children:
                        break
                elif self.once and self._idle():
                    break
                self.wake.wait(self.poll_s)
                self.wake.clear()
        finally:
            if observer is not None:
                observer.stop()
                observer.join(timeout=5)
            for executor in (self.executor, self.spill, *self.others.values()):
                if executor is not None:
                    executor.close()
            self.lock.release()
            self.lock.path.unlink(missing_ok=True)
            if self.intake.claim_dir.is_dir() and not any(self.intake.claim_dir.iterdir()):
                self.intake.claim_dir.rmdir()
        left = ", ".join(sorted(self.children)) or "none"
        self._say(f"stopped; runners still going on their own: {left}")
        return 0

    def _pass(self) -> None:
        """One look at everything. A data folder that cannot be read or written for a while (permissions
        changed, a network mount gone, a full disk) is said once, tried again every poll, and said again
        when it is back: a long-lived daemon outlives it."""
        try:
            if not self.stopping.is_set():
                self._keep_schedules()
                self._take_seeds()
            self._reap()
            if not self.stopping.is_set():
                self._schedule()
        except OSError as exc:
            trouble = f"{type(exc).__name__}: {exc}"
            if trouble != self.fault:
                self._say(
                    f"cannot use the data folder {self.settings.data} ({trouble}); trying again every "
                    f"{self.poll_s:g} s"
                )
                self.fault = trouble
            return
        if self.fault is not None:
            self._say(f"the data folder {self.settings.data} works again; going on")
            self.fault = None

    def _keep_schedules(self) -> None:
        """Drop the seeds of the schedules' slots that came (taken below, in the same pass). A bug of
        ours there is said once and never stops the daemon: the drop folder goes on."""
        try:
            self.scheduler.wake()
        except OSError:
            raise  # the data folder's trouble: said by _pass
        except Exception as exc:
            trouble = f"schedules: {type(exc).__name__}: {exc}"
            if trouble not in self.complaints:
                self.complaints.add(trouble)
                self._say(f"{trouble} (the daemon goes on without them until it is fixed)")

    def stop(self) -> None:
        """Stop taking seeds and starting jobs; with ``drain``, wait for this daemon's runners first."""
        self.stopping.set()
        self.wake.set()

    def _signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self._say(
                f"{signal.Signals(signum).name}: taking no more seeds" + (", draining" if self.drain else "")
            )
            self.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def _observe(self) -> Any:
        """Wake the loop as soon as a seed lands in pending/ or a job leaves current/ (a slot is free);
        polling still runs as a safety net (and is all there is where inotify is not)."""
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            return None
        wake = self.wake

        class Wake(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                wake.set()

        observer = Observer()
        for place in ("pending", "current"):
            observer.schedule(Wake(), str(self.store.dir(place)), recursive=False)
        observer.daemon = True
        try:
            observer.start()
        except OSError:  # no inotify here (a network file system, limits): poll only
            return None
        return observer

    # -- seeds --------------------------------------------------------------------------------------
    def _recover_claims(self) -> None:
        daemons = self.home / "daemons"
        alive = {self.name}
        for lock_file in daemons.glob("*.lock"):
            probe = FileLock(lock_file)
            if probe.acquire():  # nobody holds it: that daemon is gone
                probe.release()
                lock_file.unlink(missing_ok=True)
            else:
                alive.add(lock_file.stem)
        back = self.intake.recover_claims(self.home / "claims", alive)
        if back:
            self._say(f"handed {back} seed(s) claimed by a stopped daemon back to pending/")

    def _take_seeds(self) -> None:
        for path in self.intake.pending():
            if self.stopping.is_set():
                return
            try:
                outcome = self.intake.take(path)
            except OSError:  # the data folder failed, not this seed (handed back): see _pass
                raise
            except Exception as exc:  # whatever one file does, the daemon goes on with the others
                if path.name not in self.troubled:
                    self.troubled.add(path.name)
                    self._say(f"could not take {shown_name(path.name)!r}: {type(exc).__name__}: {exc}")
                continue
            if outcome is None:
                continue
            if outcome.job_id:
                self.claimed.add(outcome.job_id)
                self._say(f"accepted {outcome.name} -> current/{outcome.job_id}")
            else:
                self._say(
                    f"rejected {shown_name(outcome.name)!r} -> rejected/{outcome.rejected} ({outcome.reason})"
                )
        strays = set(self.intake.strays())
        for name in sorted(strays - self.strays):
            self._say(f"left alone in pending/: {name!r} is not a seed (seeds are named <id>-seed.json)")
        self.strays = strays

    # -- runners ------------------------------------------------------------------------------------
    def _reap(self) -> None:
        for job_id, handle in list(self.children.items()):
            if handle.ended():
                del self.children[job_id]
                self.claimed.discard(job_id)
                code = handle.process.returncode if handle.process else None
                # a forked runner is not our child: its exit code is not ours to read (-1)
                self._say(
                    f"runner of {job_id} exited" + (f" ({code})" if code is not None and code >= 0 else "")
                )

    def _schedule(self) -> None:
        """Start queued jobs (oldest first) and recover dead runners' jobs: up to the cap on this
        machine, the rest to the spill-over executor if there is one; everything, with a remote
        executor. A job handed to a remote executor is that executor's to run and to recover.

        A wake looks at every job in current/ but the queued ones it looked at before: those wait
        unlooked-at until a slot is free here (then the oldest are looked at until the slots are full);
        a job waiting at a remote executor's queue, until its lease is over. Every :data:`FULL_LOOK_S`
        all of them are looked at again. So a queue thousands deep, here or at the workers, costs a wake
        what an empty one does, not 30 us a job."""
        now, awake = time.time(), time.monotonic()
        full = now >= self._full_look_at
        if full:
            self._full_look_at = now + FULL_LOOK_S
        here = 0
        queue: list[tuple[Place, JobFolder, FileLock | None]] = []
        folders, changed = self.current.jobs()
        if changed:
            self._quiet = {job: quiet for job, quiet in self._quiet.items() if job in folders}
            self._resting = {job: until for job, until in self._resting.items() if job in folders}
        if full:
            self._quiet, self._resting = {}, {}
        if awake >= self._rested_at:  # a lease is over: look at those jobs again
            self._resting = {job: until for job, until in self._resting.items() if until > awake}
        if changed or full or awake >= self._rested_at:
            self._watched = folders.keys() - self._quiet.keys() - self._resting.keys()
            self._rested_at = min(self._resting.values(), default=float("inf"))
        self.unfinished = len(self._quiet) + len(self._resting)
        for job_id in list(self._watched):
            look = self.current.look(folders[job_id])
            if look is None:
                continue
            self.unfinished += look.open
            here += bool(look.runner)  # a runner has it here (ours, another daemon's, a `pop run`'s)
            if look.place is not None and look.lock is not None:
                queue.append((look.place, folders[job_id], look.lock))
            elif look.rest_s is not None and look.rest_s > 0:
                self._resting[job_id] = awake + look.rest_s
                self._rested_at = min(self._rested_at, awake + look.rest_s)
                self._watched.discard(job_id)
        if self._quiet and self._where(here) is not None:  # a slot is free: the oldest of them may start
            queue += [(place, folders[job_id], None) for job_id, place in self._quiet.items()]
        queue.sort(key=lambda item: item[0])
        for place, folder, held in queue:
            lock = held
            if lock is None:  # queued, not looked at in this wake: look now
                self._quiet.pop(folder.job_id, None)
                self._watched.add(folder.job_id)
                look = self.current.look(folder)
                if look is None:
                    continue
                here += bool(look.runner)
                if look.place is None or look.lock is None:
                    continue
                place, lock = look.place, look.lock
            dispatch = self.current.dispatch(folder.job_id)
            remote = dispatch.executor if dispatch is not None and is_remote(dispatch.executor) else None
            executor = self._named(remote) if remote else self._where(here)
            if executor is None or self.stopping.is_set():
                lock.release()
                if place[0] == QUEUED and not remote:
                    self._quiet[folder.job_id] = place  # it waits for a slot: not looked at till then
                    self._watched.discard(folder.job_id)
                continue
            if place[0] == RECOVER and not self._recover(folder):
                lock.release()
                continue
            if (
                self._start(executor, folder, lock, dispatch if place[0] == RESEND else None)
                and not executor.remote
            ):
                here += 1

    def _named(self, name: str) -> Executor | None:
        """The executor a job was dispatched to (made once); None if it cannot be had now."""
        for mine in (self.executor, self.spill):
            if mine is not None and mine.name == name:
                return mine
        if name not in self.others:
            try:
                self.others[name] = get_executor(self.settings, name)
            except ExecutorError as exc:
                if str(exc) not in self.complaints:
                    self.complaints.add(str(exc))
                    self._say(f"cannot reach executor {name}: {exc}")
                return None
        return self.others[name]

    def _where(self, here: int) -> Executor | None:
        """Where the next job goes, with ``here`` runners already on this machine; None: nowhere now."""
        if self.executor.remote or here < self.settings.max_running_jobs:
            return self.executor
        return self.spill

    def _recover(self, folder: JobFolder) -> bool:
        from pop_nb.service import recover

        if recover(self.store, folder, self.settings.max_recoveries):
            self._say(f"recovering {folder.job_id}: its runner died; going on from the interrupted stage")
            return True
        self._say(f"failed {folder.job_id}: its runner died more than {self.settings.max_recoveries} times")
        return False

    def _start(
        self, executor: Executor, folder: JobFolder, lock: FileLock, lost: Dispatch | None = None
    ) -> bool:
        """Hand the job (its lock taken) to ``executor``; ``lost``: the dispatch whose message no worker
        took within its lease, to send again."""
        try:
            handle = (
                resend(executor, folder, lock, lost) if lost else executor.submit(folder.job_id, lock=lock)
            )
        except (JobStateError, OSError) as exc:
            lock.release()
            self._say(f"could not start {folder.job_id}: {exc}")
            return False
        except ExecutorError as exc:  # a broker that does not answer: the job stays queued here
            lock.release()
            if str(exc) not in self.complaints:
                self.complaints.add(str(exc))
                self._say(f"could not dispatch {folder.job_id} to {executor.name}: {exc}")
            return False
        if handle.process is not None:
            self.children[folder.job_id] = handle
            self._say(f"started {folder.job_id} (runner pid {handle.process.pid})")
        else:
            self._say(f"dispatched {folder.job_id} to {executor.name} ({handle.ticket})")
        return True

    def _idle(self) -> bool:
        """Nothing left for ``--once``: no seed waiting, no job in current/ that is not done or gated."""
        if self.fault is not None:  # we cannot tell: look again
            return False
        return not self.children and not self.unfinished and not self.intake.pending()

    def _say(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} {message}", file=self.out, flush=True)
