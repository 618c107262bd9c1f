"""Which of a job's tasks may run next: the pipeline's ``needs`` and routes (``on_failure`` fallbacks,
``on_success`` and ``on_false`` targets) read against the tasks' states. The job runner asks; it owns
the states and the lock."""

from __future__ import annotations

from pop_nb.models.status import ErrorInfo, JobStatus
from pop_nb.pipeline.load import Pipeline

SKIP_CONDITION = "condition"
SKIP_UPSTREAM = "upstream"
SKIP_UNUSED_FALLBACK = "unused_fallback"
SKIP_NOT_ROUTED = "not_routed"


class Routes:
    def __init__(self, pipeline: Pipeline, status: JobStatus) -> None:
        self.pipeline = pipeline
        self.status = status
        tasks = pipeline.spec.tasks.values()
        self.fallbacks = {spec.on_failure for spec in tasks if spec.on_failure not in ("fail", "continue")}
        # tasks that run only when a route of another task leads to them: fallbacks (on_failure) and
        # the targets of on_success and of on_false
        self.routed = self.fallbacks | {
            target
            for spec in tasks
            for target in (spec.on_success, spec.on_false)
            if target is not None and target not in ("skip", "fail")
        }
        # routed tasks a route has led to (a fallback that failed in an earlier run was led to then)
        self.triggered = {
            name for name, task in status.tasks.items() if task.state == "failed" and name in self.fallbacks
        }

    def trigger(self, target: str) -> None:
        self.triggered.add(target)

    def ready(self) -> list[str]:
        """Pending tasks whose needs have all settled, in the pipeline's order (routed ones once led to)."""
        tasks = self.status.tasks
        return [
            name
            for name in self.pipeline.topological_order()
            if tasks[name].state == "pending"
            and (name not in self.routed or name in self.triggered)
            and all(self.settled(need) for need in self.pipeline.task(name).needs)
        ]

    def settled(self, name: str) -> bool:
        """Nothing more will come of ``name``: done, skipped, or failed (and its fallback, if any, ended)."""
        state = self.status.tasks[name].state
        if state in ("done", "skipped"):
            return True
        if state == "failed":
            fallback = self.pipeline.task(name).on_failure
            if fallback in self.fallbacks:
                return self.status.tasks[fallback].state in ("done", "failed", "skipped")
            return True
        return False

    def provider_of(self, name: str) -> str | None:
        """The task whose final output stands for ``name`` (itself, or its fallback), or None."""
        state = self.status.tasks[name]
        if state.state == "done":
            return name
        if state.state == "failed":
            fallback = self.pipeline.task(name).on_failure
            if fallback in self.fallbacks and self.status.tasks[fallback].state == "done":
                return fallback
        return None

    def ancestors(self, name: str) -> set[str]:
        found: set[str] = set()
        todo = list(self.pipeline.task(name).needs)
        while todo:
            up = todo.pop()
            if up not in found:
                found.add(up)
                todo += self.pipeline.task(up).needs
        return found

    def after_failure(self, name: str) -> bool:
        """``name`` failed: lead to its fallback, if it has one. True if the job must stop scheduling
        (``on_failure: fail``)."""
        policy = self.pipeline.task(name).on_failure
        if policy == "continue":
            return False
        if policy in self.fallbacks:
            self.trigger(policy)
            self.status.tasks[policy].fallback_for = name
            return False
        return True

    def never_reached(self, name: str) -> tuple[str, str] | None:
        """Why a task still pending at the end was not needed (a fallback, a route not taken), as
        ``(skip kind, reason)``; None if it was needed and did not run."""
        if name in self.fallbacks and name not in self.triggered:
            return SKIP_UNUSED_FALLBACK, "fallback task, not needed"
        if name in self.routed and name not in self.triggered:
            return SKIP_NOT_ROUTED, "no on_success or on_false route led here"
        return None

    def job_failure(self) -> ErrorInfo | None:
        """The first failure the job cannot absorb (``continue`` and a successful fallback absorb)."""
        for name in self.pipeline.topological_order():
            task = self.status.tasks[name]
            if task.state != "failed" or task.error is None:
                continue
            policy = self.pipeline.task(name).on_failure
            if policy == "continue" or (policy in self.fallbacks and self.provider_of(name) is not None):
                continue
            return task.error
        return None
