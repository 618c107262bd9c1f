"""Run one job: schedule its tasks over the DAG, record every state change, finish with a folder move."""

from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from pop_nb.config import PopSettings
from pop_nb.errors import ConditionError, TaskFailed
from pop_nb.execution.failures import suggest_fix
from pop_nb.execution.heartbeat import Heartbeat
from pop_nb.execution.kernels import FreshKernelProvider, KernelProvider, close_thread_loop
from pop_nb.execution.lifecycle import StageHooks, TaskRun
from pop_nb.execution.routes import SKIP_CONDITION, SKIP_UPSTREAM, Routes
from pop_nb.execution.task_setup import input_values, stage_context, task_config
from pop_nb.models import lifecycle
from pop_nb.models.records import Event
from pop_nb.models.seed import Seed
from pop_nb.models.status import ErrorInfo, JobStatus, StageRun, TaskStatus, now_iso
from pop_nb.models.trace import StageTrace
from pop_nb.notify import announce
from pop_nb.pipeline.conditions import Condition
from pop_nb.pipeline.load import Pipeline
from pop_nb.pipeline.task_notebook import load_task_notebook
from pop_nb.store.jobs import JobFolder, JobStore
from pop_nb.store.products import write_products
from pop_nb.store.usage import UsageTally
from pop_nb.tracing.otlp import Shipper, capture_content, export_target
from pop_nb.tracing.recorder import JobTracer


class JobRunner:
    """Runs the job in ``folder`` (which must be in ``current/``) to the end, in this process."""

    def __init__(
        self,
        settings: PopSettings,
        folder: JobFolder,
        pipeline: Pipeline,
        provider: KernelProvider | None = None,
    ) -> None:
        self.settings = settings
        self.store = JobStore(settings.data)
        self.job = folder
        self.pipeline = pipeline
        self.seed: Seed = folder.read_seed()
        self.provider = provider or FreshKernelProvider(
            settings.kernel_startup_timeout_s,
            start=settings.kernel_start,
            preload=settings.kernel_preload,
            server_idle_s=settings.kernel_server_idle_s,
        )
        self._lock = threading.RLock()
        self.status: JobStatus = folder.read_status()
        self.cancelled = threading.Event()
        self._ended = threading.Event()
        self.routes = Routes(pipeline, self.status)
        self._stop = False  # a task failed with on_failure: fail; start nothing new
        self._gated = False  # a gated task is done and not approved: start nothing new
        self._usage = UsageTally(folder.usage_file, folder.job_id)
        self._stage_counts: dict[str, int] = {}
        self.tracer = JobTracer(folder.path, pipeline.slug, capture_content(settings.otel))
        target = export_target(settings.otel)
        self.shipper = Shipper(folder.path, target) if target is not None else None

    # -- public -----------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop: no new stage starts, running kernels are killed, the job ends ``cancelled``."""
        self.cancelled.set()
        self.provider.shutdown_all(now=True)

    def run(self) -> JobStatus:
        with self._lock:
            st = self.status
            st.state, st.error, st.ended_at = "running", None, None
            st.started_at = st.started_at or now_iso()
            dispatch = self.job.read_dispatch()
            st.executor = dispatch.executor if dispatch else "local"
            st.host, st.worker = os.uname().nodename, os.environ.get("POP_WORKER")
            for name in self.pipeline.spec.tasks:
                st.tasks.setdefault(name, TaskStatus())
            self.tracer.begin(st)
            for name, task in st.tasks.items():
                if task.state == "running":  # interrupted by a crash: run it again
                    task.state = "pending"
                    self.tracer.interrupted(name, task)
            self._save()
        if self.shipper is not None:
            self.shipper.start()
        Heartbeat(self.job, self._lock, self._ended, self.cancelled, self.cancel).start()
        self._event("job", "started")
        try:
            self._schedule()
        finally:
            self.provider.shutdown_all()
        return self._finish()

    # -- scheduling ---------------------------------------------------------------------------------
    def _schedule(self) -> None:
        futures: dict[Future[Any], str] = {}
        with ThreadPoolExecutor(
            max_workers=self.settings.max_parallel_tasks, thread_name_prefix="pop-task"
        ) as pool:
            while True:
                if not self._stop and not self._gated and not self.cancelled.is_set():
                    for name in self.routes.ready():
                        if self._admit(name):
                            futures[pool.submit(self._run_task, name)] = name
                if not futures:
                    break
                self._warm_kernels(set(futures.values()))
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for fut in done:
                    name = futures.pop(fut)
                    if fut.result():
                        self._route(name, self.pipeline.task(name).on_success, "succeeded")
                    else:
                        self._after_failure(name)

    def _warm_kernels(self, running: set[str]) -> None:
        """Keep kernels started ahead for the stages that could start next: the next stage of each
        running task that has more than one, and the first of each task that only waits for running
        ones (up to ``max_parallel_tasks`` in all). A running task's current stage has its kernel
        already (or is taking the one being started), so a job of one-stage tasks starts no spare."""
        with self._lock:
            tasks = self.status.tasks
            soon = [
                name
                for name, task in tasks.items()
                if task.state == "pending"
                and name not in running
                and all(
                    need in running or self.routes.settled(need) for need in self.pipeline.task(name).needs
                )
            ]
        first = next((name for name in tasks if name in running or name in soon), None)
        if first is None:
            return
        cwd = str(self._kernel_dir(first))
        wanted = sum(1 for name in running if self._stage_count(name) > 1) + len(soon)
        self.provider.prestart(cwd, min(wanted, self.settings.max_parallel_tasks))

    def _stage_count(self, task: str) -> int:
        """How many stages the task's notebook has cells for (a one-stage task needs no kernel after)."""
        if task not in self._stage_counts:
            try:
                notebook = load_task_notebook(self.pipeline.notebook_path(task))
                self._stage_counts[task] = len(notebook.stages_with_cells())
            except Exception:  # unreadable: the task itself will fail and say why
                self._stage_counts[task] = 0
        return self._stage_counts[task]

    def _kernel_dir(self, task: str) -> Path:
        """Where the task's stage kernels start: its notebook's folder in the project, as in JupyterLab
        (else the job's snapshot of it, when the project folder is gone)."""
        home = self.pipeline.notebook_home(task)
        return home.parent if home.parent.is_dir() else self.pipeline.notebook_path(task).parent

    def _admit(self, name: str) -> bool:
        """Decide whether ``name`` runs; record skips and condition failures. True: submit it."""
        spec = self.pipeline.task(name)
        for need in spec.needs:
            need_state = self.status.tasks[need]
            condition_skipped = need_state.state == "skipped" and need_state.skip_kind == SKIP_CONDITION
            if self.routes.provider_of(need) is None and not condition_skipped:
                self._skip(name, SKIP_UPSTREAM, f"upstream task {need!r} did not succeed")
                return False
        if spec.condition:
            namespace = {
                "inputs": input_values(self.job, self.routes, name),
                "seed": self.seed.data,
                "config": task_config(self.pipeline, self.seed, name),
            }
            try:
                passed = Condition(spec.condition).evaluate(namespace)
            except ConditionError as exc:
                self._fail_before_start(name, "ConditionError", str(exc))
                return False
            if not passed:
                if spec.on_false not in ("skip", "fail"):
                    self._skip(name, SKIP_CONDITION, f"condition is false: {spec.condition}")
                    self._route(name, spec.on_false, "condition is false")
                elif spec.on_false == "skip":
                    self._skip(name, SKIP_CONDITION, f"condition is false: {spec.condition}")
                else:
                    self._fail_before_start(name, "ConditionFalse", f"condition is false: {spec.condition}")
                return False
        with self._lock:
            task = self.status.tasks[name]
            task.state, task.started_at, task.ended_at, task.error = "running", now_iso(), None, None
            task.skip_reason = task.skip_kind = None
            self.tracer.task_started(name, task)
            self.status.current_task = name
            self._save()
        self._event("task", "started", task=name)
        return True

    def _route(self, name: str, target: str | None, why: str) -> None:
        """Let ``target`` run: ``name`` routed to it (on_success, on_false)."""
        if target is None:
            return
        with self._lock:
            self.routes.trigger(target)
        self._event("task", "routed", task=target, message=f"from {name}: {why}")

    # -- one task ------------------------------------------------------------------------------------
    def _run_task(self, name: str) -> bool:
        try:
            return self._run_task_here(name)
        finally:
            close_thread_loop()  # this pool thread's kernels are all released

    def _run_task_here(self, name: str) -> bool:
        spec = self.pipeline.task(name)
        hooks = StageHooks(
            started=self._stage_started,
            finished=self._stage_finished,
            retried=self._stage_retried,
            refined=self._refined,
        )
        try:
            notebook = load_task_notebook(self.pipeline.notebook_path(name))
            home = self.pipeline.notebook_home(name)
            if self._kernel_dir(name) == home.parent:
                notebook.path = home
            run = TaskRun(
                job=self.job,
                name=name,
                spec=spec,
                notebook=notebook,
                context=stage_context(
                    self.settings, self.pipeline, self.seed, self.job, self.routes, name, self._selected
                ),
                hooks=hooks,
                provider=self.provider,
                autosave_s=self.settings.notebook_autosave_s,
                startup_timeout_s=self.settings.kernel_startup_timeout_s,
                should_stop=self.cancelled.is_set,
                previous={k: r.model_copy() for k, r in self.status.tasks[name].stages.items()},
            )
            with self._lock:
                task = self.status.tasks[name]
                task.attempts += 1
                task.stages_planned = len(notebook.stages_with_cells(loop=False))
            run.run()
        except TaskFailed as failure:
            if self.cancelled.is_set():
                failure = TaskFailed(
                    name, failure.stage, "Cancelled", "the job was cancelled", failure.notebook
                )
            evidence = failure.evidence
            error = ErrorInfo(
                task=name,
                stage=failure.stage,
                type=failure.error_type,
                message=failure.message,
                notebook=failure.notebook,
                cell_index=evidence.cell_index if evidence else None,
                exec_count=evidence.exec_count if evidence else None,
                cell_source=evidence.source if evidence else None,
                traceback=list(evidence.traceback) if evidence else [],
            )
            source = f"{self.pipeline.spec.tasks[name].notebook} of pipeline {self.pipeline.slug}"
            error.fix = suggest_fix(
                error, self.job.job_id, self.seed.data, bool(self.pipeline.spec.seed_schema), source
            )
            self._task_failed(name, error)
            return False
        except Exception as exc:  # a bug of ours or an unreadable notebook: still recorded, never lost
            if self.cancelled.is_set():  # killing kernels mid-stage surfaces as assorted errors
                self._task_failed(
                    name, ErrorInfo(task=name, type="Cancelled", message="the job was cancelled")
                )
            else:
                self._task_failed(name, ErrorInfo(task=name, type=type(exc).__name__, message=str(exc)))
            return False
        with self._lock:
            task = self.status.tasks[name]
            task.state, task.ended_at = "done", now_iso()
            gated = spec.gate and task.gate != "approved"
            if gated:
                task.gate = "waiting"
                self._gated = True
            self._add_usage(name)
            self.tracer.task_ended(name, task)
            self._save()
        self._event("task", "done", task=name)
        if gated:
            self._event(
                "task", "waiting", task=name, message=f"gate: `pop approve {self.job.job_id}` to go on"
            )
        return True

    def _selected(self, task: str, role: str, choice: Any) -> None:
        rejected = "".join(f"; skipped {m}: {why}" for m, why in choice.rejected.items())
        self._event(
            "llm", "selected", task=task, message=f"{role} -> {choice.model} ({choice.reason}){rejected}"
        )

    # -- status bookkeeping (all under the lock; the status file is rewritten atomically) ---------
    def _save(self) -> None:
        self.job.write_status(self.status)

    def _event(self, kind: Any, status: Any, **fields: Any) -> None:
        self.job.append_event(Event(job=self.job.job_id, kind=kind, status=status, pid=os.getpid(), **fields))

    def _stage_started(self, task: str, key: str, run: StageRun) -> StageTrace | None:
        with self._lock:
            trace = self.tracer.stage_started(self.status.tasks[task], run)
            self.status.tasks[task].stages[key] = run
            self.status.current_task, self.status.current_stage = task, key
            self._save()
        self._stage_event("started", task, run)
        return trace

    def _stage_finished(self, task: str, key: str, run: StageRun, failure: TaskFailed | None) -> None:
        with self._lock:
            self.status.tasks[task].stages[key] = run
            self._add_usage(task)
            self._save()
            error = (failure.error_type, failure.message) if failure is not None else (None, None)
            self.tracer.stage_ended(task, run, *error)
        self._stage_event(run.state, task, run, notebook=run.notebook, duration_ms=run.duration_ms)

    def _stage_retried(self, task: str, run: StageRun, failure: TaskFailed) -> None:
        message = f"{failure.error_type}: {failure.message}"
        self.tracer.stage_ended(task, run, failure.error_type, failure.message)
        self._stage_event("retried", task, run, notebook=run.notebook, message=message)

    def _stage_event(self, status: Any, task: str, run: StageRun, **fields: Any) -> None:
        self._event(
            "stage",
            status,
            task=task,
            stage=run.stage,
            refinement=run.refinement,
            attempt=run.attempt,
            **fields,
        )

    def _refined(self, task: str, refinement: int) -> None:
        with self._lock:
            self.status.tasks[task].refinements = refinement
            self._save()

    def _add_usage(self, task: str) -> None:
        self._usage.refresh()
        self.status.tasks[task].usage = self._usage.of(task)

    def _skip(self, name: str, kind: str, reason: str) -> None:
        with self._lock:
            task = self.status.tasks[name]
            task.state, task.skip_kind, task.skip_reason, task.ended_at = "skipped", kind, reason, now_iso()
            self.tracer.task_ended(name, task)
            self._save()
        self._event("task", "skipped", task=name, message=reason)

    def _after_failure(self, name: str) -> None:
        """``name`` failed: its fallback may run; with ``on_failure: fail`` nothing new starts."""
        with self._lock:
            self._stop = self.routes.after_failure(name) or self._stop

    def _fail_before_start(self, name: str, kind: str, message: str) -> None:
        self._task_failed(name, ErrorInfo(task=name, type=kind, message=message))
        self._after_failure(name)

    def _task_failed(self, name: str, error: ErrorInfo) -> None:
        where = f"task {name}" + (f", stage {error.stage}" if error.stage else "")
        cell = f" in cell In [{error.exec_count}]" if error.exec_count is not None else ""
        report = [f"{now_iso()} {where} failed{cell}: {error.type}: {error.message}", *error.traceback]
        if error.fix:
            report.append(f"fix: {error.fix}")
        print("\n".join(report), flush=True)  # the runner's output is runner.log
        with self._lock:
            task = self.status.tasks[name]
            task.state, task.ended_at, task.error = "failed", now_iso(), error
            self._add_usage(name)
            self.tracer.task_ended(name, task)
            self._save()
        self._event(
            "task",
            "failed",
            task=name,
            stage=error.stage,
            notebook=error.notebook,
            message=f"{error.type}: {error.message}",
        )

    # -- the end ------------------------------------------------------------------------------------
    def _finish(self) -> JobStatus:
        with self._lock:
            self._ended.set()  # no heartbeat after this: the folder is about to move
            st = self.status
            if self._gated and not self.cancelled.is_set() and self.routes.job_failure() is None:
                st.state, st.current_task, st.current_stage = "waiting", None, None
                self._save()
                self.job.runner_file.unlink(missing_ok=True)
                self._event("job", "waiting", message="a gate waits for `pop approve` or `pop reject`")
                announce(self.job.path, st)
                self._ship_rest()
                return st
            for name, task in st.tasks.items():
                if task.state != "pending":
                    continue
                unneeded = self.routes.never_reached(name)
                if unneeded is not None:
                    self._skip(name, *unneeded)
                elif not self.cancelled.is_set():
                    self._skip(name, SKIP_UPSTREAM, "not started: the job stopped after a failure")
            failure = self.routes.job_failure()
            if self.cancelled.is_set():
                lifecycle.cancel(st, failure)
            elif failure is not None:
                lifecycle.fail(st, failure)
            else:
                try:
                    write_products(self.job, self.pipeline.spec.products, self.routes.provider_of)
                    st.state = "done"
                except Exception as exc:
                    lifecycle.fail(st, ErrorInfo(type="ProductError", message=str(exc)))
            st.ended_at = st.ended_at or now_iso()
            self.tracer.job_ended(st)
            self.job = self.store.close(self.job, st)
            self.tracer.job_dir = self.job.path
        self._ship_rest()
        return st

    def _ship_rest(self) -> None:
        """Send the spans not sent yet (the job's own last among them), from where the job is now."""
        if self.shipper is not None:
            self.shipper.finish(self.job.path)
