"""REST handlers of ``/pop/api``. Each asks :mod:`pop_nb.service` and writes the model it returns as
JSON; errors become HTTP statuses in one place (:meth:`PopHandler.answer`, from ``errors.ERROR_CODES``).
Every route is behind Jupyter's authentication (``@web.authenticated``) and authorization
(``@authorized``, resource ``pop``); POSTs also need the XSRF token (Jupyter checks it for cookie
sessions)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel
from tornado import web
from tornado.iostream import StreamClosedError

from pop_nb import service
from pop_nb.config import PopSettings
from pop_nb.errors import PopError, http_status
from pop_nb.models.api import JobDetail
from pop_nb.models.seed import JOB_ID_RE

ID = r"(?P<job_id>[A-Za-z0-9][A-Za-z0-9_-]{0,127})"
SLUG = r"[^/]{1,200}"  # checked by the seed model: a bad slug is a 400 that says why


class PopHandler(ExtensionHandlerMixin, APIHandler):
    auth_resource = "pop"

    @property
    def pop_settings(self) -> PopSettings:
        return self.settings["pop_settings"]  # type: ignore[no-any-return]

    def answer(self, produce: Callable[[], Any]) -> None:
        """Write what ``produce()`` returns as JSON, or its :class:`PopError` as a status and a message."""
        try:
            value = produce()
        except PopError as exc:
            self.set_status(http_status(exc))
            self.finish(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
            return
        if isinstance(value, BaseModel):
            body: Any = value.model_dump(mode="json")
        elif isinstance(value, list):
            body = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
        else:
            body = value
        self.finish(json.dumps(body))

    def body(self) -> dict[str, Any]:
        if not self.request.body:
            return {}
        try:
            value = json.loads(self.request.body)
        except (ValueError, RecursionError):  # not JSON, or nested past what the parser can follow
            raise web.HTTPError(400, "the request body is not JSON (or nests too deeply)") from None
        if not isinstance(value, dict):
            raise web.HTTPError(400, "the request body must be a JSON object")
        return value

    def int_arg(self, name: str, default: int) -> int:
        raw = self.get_argument(name, None)
        try:
            return default if raw is None else int(raw)
        except ValueError:
            raise web.HTTPError(400, f"{name} must be an integer") from None


class PipelinesHandler(PopHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.answer(lambda: service.pipelines(self.pop_settings))


class JobsHandler(PopHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.answer(
            lambda: service.list_jobs(
                self.pop_settings,
                state=self.get_argument("state", None),
                pipeline=self.get_argument("pipeline", None),
                search=self.get_argument("search", None),
                offset=self.int_arg("offset", 0),
                limit=self.int_arg("limit", 50),
            )
        )

    @web.authenticated
    @authorized
    def post(self) -> None:
        """Submit: ``{"pipeline": slug, "data": {...}}`` or ``{"pipeline": slug, "seed": {...}}``,
        optional ``"id"``; the job starts at once (201)."""
        body = self.body()
        pipeline = body.get("pipeline")
        if not isinstance(pipeline, str):
            raise web.HTTPError(400, 'say which pipeline: {"pipeline": "<slug>", "data": {...}}')
        job_id = body.get("id")
        if job_id is not None and (not isinstance(job_id, str) or not JOB_ID_RE.fullmatch(job_id)):
            raise web.HTTPError(400, "id: 1-128 of A-Z a-z 0-9 _ -, starting with a letter or digit")
        seed, data = body.get("seed"), body.get("data")
        if not isinstance(seed, dict | None) or not isinstance(data, dict | None):
            raise web.HTTPError(400, "seed and data must be JSON objects")
        self.set_status(201)
        self.answer(lambda: service.start_job(self.pop_settings, pipeline, data, seed=seed, job_id=job_id))


class JobHandler(PopHandler):
    @web.authenticated
    @authorized
    def get(self, job_id: str) -> None:
        def detail() -> JobDetail:
            job = service.get_job(self.pop_settings, job_id)
            root = Path(self.settings.get("server_root_dir") or os.getcwd()).expanduser()
            job.lab_dir = lab_path(root, Path(job.path))
            return job

        self.answer(detail)


class CheckHandler(PopHandler):
    """``POST /pop/api/pipelines/<slug>/check`` {seed}: would this seed be accepted? 200, or the 4xx a
    submit would get, with the message naming each field."""

    @web.authenticated
    @authorized
    def post(self, slug: str) -> None:
        seed = self.body().get("seed", {})
        if not isinstance(seed, dict):
            raise web.HTTPError(400, "seed must be a JSON object")
        self.answer(lambda: service.check_seed(self.pop_settings, slug, seed))


class ActionHandler(PopHandler):
    """``POST /pop/api/jobs/<id>/<action>``: resume {from_task?, budget_usd?}, cancel, approve,
    reject {reason?}."""

    @web.authenticated
    @authorized
    def post(self, job_id: str, action: str) -> None:
        body, s = self.body(), self.pop_settings
        for key, kinds in (("from_task", str), ("reason", str), ("budget_usd", (int, float))):
            if body.get(key) is not None and (
                not isinstance(body[key], kinds) or isinstance(body[key], bool)
            ):
                raise web.HTTPError(400, f"{key} has the wrong type")
        actions: dict[str, Callable[[], Any]] = {
            "resume": lambda: service.resume_job(s, job_id, body.get("from_task"), body.get("budget_usd")),
            "cancel": lambda: service.cancel(s, job_id),
            "approve": lambda: service.approve(s, job_id),
            "reject": lambda: service.reject(s, job_id, body.get("reason")),
        }
        self.answer(actions[action])


class CostsHandler(PopHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        from pop_nb.analytics import GROUPINGS

        by = self.get_argument("by", "pipeline")
        if by not in GROUPINGS:
            raise web.HTTPError(400, f"by must be one of {', '.join(GROUPINGS)}")
        self.answer(lambda: service.costs(self.pop_settings, by))


class EventsHandler(PopHandler):
    """``GET /pop/api/events``: Server-Sent Events. Each event's ``data`` is ``{"event": <events.jsonl
    row>, "job": <JobSummary>}``; ``Last-Event-ID`` (header, or ``?last_event_id=``) resumes."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        last = self.request.headers.get("Last-Event-ID") or self.get_argument("last_event_id", None)
        bus = self.settings["pop_bus"]
        bus.start()
        try:
            self.write(b"retry: 2000\n\n")
            await self.flush()
            async for event in bus.stream(last, heartbeat_s=self.settings.get("pop_heartbeat_s", 15.0)):
                self.write(event.encode())
                await self.flush()
        except StreamClosedError:  # the client went away
            return


def lab_path(root: Path, path: Path) -> str | None:
    """``path`` as JupyterLab names it (relative to the server's root, ``/``-separated), or None when the
    server cannot serve it (outside its root)."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def handlers() -> list[tuple[str, type[PopHandler]]]:
    return [
        (r"/pop/api/pipelines", PipelinesHandler),
        (rf"/pop/api/pipelines/(?P<slug>{SLUG})/check", CheckHandler),
        (r"/pop/api/jobs", JobsHandler),
        (rf"/pop/api/jobs/{ID}", JobHandler),
        (rf"/pop/api/jobs/{ID}/(?P<action>resume|cancel|approve|reject)", ActionHandler),
        (r"/pop/api/costs", CostsHandler),
        (r"/pop/api/events", EventsHandler),
    ]
