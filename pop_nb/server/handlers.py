"""REST handlers of ``/pop/api``. Each asks the service (:mod:`pop_nb.service`, in a thread pool) and
writes the model it returns as JSON; errors become HTTP statuses in one place
(:meth:`PopHandler.write_error`, from ``errors.ERROR_CODES``), in one shape.
Every route is behind Jupyter's authentication (``@web.authenticated``) and authorization
(``@authorized``, resource ``pop``); POSTs also need the XSRF token (Jupyter checks it for cookie
sessions)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel
from tornado import web
from tornado.iostream import StreamClosedError

from pop_nb.config import PopSettings
from pop_nb.errors import PopError, RequestError, SeedTooLarge, http_status
from pop_nb.models.api import (
    ApproveJob,
    CheckSeed,
    CopyMade,
    CopyNotebook,
    JobDetail,
    NoBody,
    RejectJob,
    Request,
    ResumeJob,
    StageRef,
    StartJob,
)
from pop_nb.models.seed import MAX_SEED_BYTES, check_job_id
from pop_nb.redaction import redact_bytes
from pop_nb.safejson import loads

RequestModel = TypeVar("RequestModel", bound=Request)
ID = r"(?P<job_id>[A-Za-z0-9][A-Za-z0-9_-]{0,127})"
SLUG = r"[^/]{1,200}"  # checked by the seed model: a bad slug is a 400 that says why
NAME = r"(?P<name>[^/]{1,200})"  # an experiment's: checked by the service (a bad one is a 400 saying why)


MAX_BODY_BYTES = MAX_SEED_BYTES + 4096  # a seed and the envelope around it ({"pipeline", "id"})


@web.stream_request_body  # so a body too large is refused (413) before it is read into memory
class PopHandler(ExtensionHandlerMixin, APIHandler):
    """Every route of ``/pop/api``. Handlers raise :class:`PopError` (or Tornado's ``HTTPError`` for
    what Jupyter decides: 403, 404): :meth:`write_error` turns every failure into one JSON shape,
    ``{"error": <name>, "message": <text>}``, with the status from ``errors.ERROR_CODES``. The service
    runs in the extension's thread pool, never on the loop that every Lab user's requests share."""

    auth_resource = "pop"

    @property
    def pop_settings(self) -> PopSettings:
        return self.settings["pop_settings"]  # type: ignore[no-any-return]

    @property
    def service(self) -> ModuleType:
        """The job functions the API calls: :mod:`pop_nb.service`, or the module ``PopExtension.service``
        names (the same functions, another implementation)."""
        return self.settings["pop_service"]  # type: ignore[no-any-return]

    async def prepare(self) -> None:  # type: ignore[override]  # as APIHandler's own
        await super().prepare()
        self._chunks: list[bytes] = []
        self._received = 0
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise SeedTooLarge("the request body", int(length), MAX_BODY_BYTES)

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received <= MAX_BODY_BYTES:  # past it (a chunked body), nothing more is kept
            self._chunks.append(chunk)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, PopError):
            self.set_status(http_status(exc))
            name, message = type(exc).__name__, str(exc)
        elif isinstance(exc, web.HTTPError):
            name = _HTTP_NAMES.get(status_code, "HTTPError")
            template = exc.log_message or self._reason
            message = template % exc.args if exc.args and exc.log_message else template
        else:  # a bug of ours: the traceback goes to the server's log, not to the client
            name, message = "InternalError", "pop-nb failed on this request; the server log has the details"
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(redact_bytes(json.dumps({"error": name, "message": message}).encode()))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, PopError):  # an answer, not a fault of the server
            return
        super().log_exception(typ, value, tb)

    async def answer(self, produce: Callable[[], Any]) -> None:
        """Write what ``produce()`` returns as JSON (secrets masked). ``produce``, and turning what it
        returns into bytes, run in the extension's thread pool; a :class:`PopError` it raises becomes
        the error answer (:meth:`write_error`)."""

        def work() -> bytes:
            value = produce()
            if isinstance(value, BaseModel):
                body: Any = value.model_dump(mode="json")
            elif isinstance(value, list):
                body = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
            else:
                body = value
            return redact_bytes(json.dumps(body).encode())

        loop = asyncio.get_running_loop()
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(await loop.run_in_executor(self.settings["pop_pool"], work))

    def body(self, model: type[RequestModel]) -> RequestModel:
        """The request's JSON body as ``model`` (the contract's request bodies, ``models.api``)."""
        from pydantic import ValidationError

        if self._received > MAX_BODY_BYTES:
            raise SeedTooLarge("the request body", self._received, MAX_BODY_BYTES)
        raw = b"".join(self._chunks)
        try:
            value = loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError):  # not JSON, or nested past what the parser can follow
            raise RequestError("the request body is not JSON (or nests too deeply)") from None
        if not isinstance(value, dict):
            raise RequestError("the request body must be a JSON object")
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise RequestError(f"the request body: {problems}") from None

    def lab(self, path: Path) -> str | None:
        """``path`` as JupyterLab names it (None: outside what the server serves)."""
        return lab_path(Path(self.settings.get("server_root_dir") or os.getcwd()).expanduser(), path)

    def int_arg(self, name: str, default: int) -> int:
        raw = self.get_argument(name, None)
        try:
            return default if raw is None else int(raw)
        except ValueError:
            raise RequestError(f"{name} must be an integer") from None


_HTTP_NAMES = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed"}


class NotFoundHandler(PopHandler):
    """Any other path under ``/pop/api``: a 404 in the API's shape, not Jupyter's HTML page."""

    @web.authenticated
    @authorized
    def prepare_not_found(self, *_: Any) -> None:
        raise web.HTTPError(404, "no such pop-nb API route: %s", self.request.path)

    get = post = put = delete = patch = prepare_not_found


class PipelinesHandler(PopHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.answer(lambda: self.service.pipelines(self.pop_settings))


class JobsHandler(PopHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.answer(
            lambda: self.service.list_jobs(
                self.pop_settings,
                state=self.get_argument("state", None),
                pipeline=self.get_argument("pipeline", None),
                search=self.get_argument("search", None),
                offset=self.int_arg("offset", 0),
                limit=self.int_arg("limit", 50),
                sort=self.get_argument("sort", "-created"),
                archived=self.get_argument("archived", "0") == "1",
            )
        )

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Submit: ``{"pipeline": slug, "data": {...}}`` or ``{"pipeline": slug, "seed": {...}}``,
        optional ``"id"``; the job starts at once (201)."""
        start = self.body(StartJob)
        if start.id is not None:
            check_job_id(start.id)
        self.set_status(201)
        await self.answer(
            lambda: self.service.start_job(
                self.pop_settings, start.pipeline, start.data, seed=start.seed, job_id=start.id
            )
        )


class JobHandler(PopHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        def detail() -> JobDetail:
            job: JobDetail = self.service.get_job(self.pop_settings, job_id)
            job.lab_dir = self.lab(Path(job.path))
            return job

        await self.answer(detail)

    @web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        """An ended (or archived) job removed for good."""
        await self.answer(lambda: self.service.delete(self.pop_settings, job_id))


class CheckHandler(PopHandler):
    """``POST /pop/api/pipelines/<slug>/check`` {seed}: would this seed be accepted? 200, or the 4xx a
    submit would get, with the message naming each field."""

    @web.authenticated
    @authorized
    async def post(self, slug: str) -> None:
        seed = self.body(CheckSeed).seed
        await self.answer(lambda: self.service.check_seed(self.pop_settings, slug, seed))


class ActionHandler(PopHandler):
    """``POST /pop/api/jobs/<id>/<action>``: resume {from_task?, budget_usd?}, cancel, approve
    {outputs?}, reject {reason?}, archive, restore."""

    @web.authenticated
    @authorized
    async def post(self, job_id: str, action: str) -> None:
        s = self.pop_settings
        if action == "resume":
            resume = self.body(ResumeJob)
            await self.answer(lambda: self.service.resume_job(s, job_id, resume.from_task, resume.budget_usd))
        elif action == "reject":
            reason = self.body(RejectJob).reason
            await self.answer(lambda: self.service.reject(s, job_id, reason))
        elif action in ("archive", "restore"):
            self.body(NoBody)
            act = self.service.archive if action == "archive" else self.service.restore
            await self.answer(lambda: act(s, job_id))
        elif action == "approve":
            outputs = self.body(ApproveJob).outputs
            user = self.current_user
            by = getattr(user, "display_name", None) or getattr(user, "username", None) or None
            await self.answer(lambda: self.service.approve(s, job_id, outputs, by=by))
        else:
            self.body(NoBody)  # cancel: answered at once; the job's end comes as an event
            await self.answer(lambda: self.service.cancel(s, job_id, wait=False))


class JobFileHandler(PopHandler):
    """``GET /pop/api/jobs/<id>/file?path=&content=0|1``: a file of the job as a Contents model (Lab's
    ``pop-job:`` drive); ``raw=1``: its bytes (a download, an image a Markdown product links)."""

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        from pop_nb.service import records

        path = self.get_argument("path", "")
        if self.get_argument("raw", "0") == "1":
            loop = asyncio.get_running_loop()
            work = lambda: records.job_file_bytes(self.pop_settings, job_id, path)  # noqa: E731
            data, mimetype = await loop.run_in_executor(self.settings["pop_pool"], work)  # masked there
            self.set_header("Content-Disposition", "inline")
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Content-Security-Policy", "sandbox; default-src 'none'")
            self.finish(data, set_content_type=mimetype)
            return
        content = self.get_argument("content", "1") != "0"
        await self.answer(lambda: records.job_file(self.pop_settings, job_id, path, content))


class ZipHandler(PopHandler):
    """``GET /pop/api/jobs/<id>/zip``: the job's folder as one zip (built in the pool, sent in chunks)."""

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        import tempfile

        from pop_nb.service import records

        loop = asyncio.get_running_loop()
        pool = self.settings["pop_pool"]
        with tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024) as spool:
            await loop.run_in_executor(pool, lambda: records.zip_job(self.pop_settings, job_id, spool))
            spool.seek(0)
            self.set_header("Content-Type", "application/zip")  # sent with the first chunk
            self.set_header("Content-Disposition", f'attachment; filename="{job_id}.zip"')
            while chunk := await loop.run_in_executor(pool, spool.read, 1 << 16):
                self.write(chunk)
                await self.flush()
        self.finish(set_content_type="application/zip")


class LogHandler(PopHandler):
    """``GET /pop/api/jobs/<id>/log?task=&stage=&refinement=&offset=``: a stage's log from ``offset`` (a
    job view follows a running stage by asking again from the offset it was given)."""

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        from pop_nb.service import records

        task, stage = self.get_argument("task", ""), self.get_argument("stage", "")
        refinement, offset = self.int_arg("refinement", 0), self.int_arg("offset", 0)
        await self.answer(
            lambda: records.stage_log(self.pop_settings, job_id, task, stage, refinement, offset)
        )


class SchedulesHandler(PopHandler):
    """``GET /pop/api/schedules``: every schedule, its next slots and its last outcomes."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from pop_nb.service import schedules

        await self.answer(lambda: schedules.schedules(self.pop_settings))


class ScheduleActionHandler(PopHandler):
    """``POST /pop/api/schedules/<name>/pause|resume``: the schedule as it is then."""

    @web.authenticated
    @authorized
    async def post(self, name: str, action: str) -> None:
        from pop_nb.service import schedules

        self.body(NoBody)
        user = self.current_user
        by = getattr(user, "display_name", None) or getattr(user, "username", None) or None
        paused = action == "pause"
        await self.answer(lambda: schedules.set_paused(self.pop_settings, name, paused, by=by))


class TraceHandler(PopHandler):
    """``GET /pop/api/jobs/<id>/trace``: the job's spans as trees, one per run (``pop trace``)."""

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        from pop_nb.service.traces import job_trace

        await self.answer(lambda: job_trace(self.pop_settings, job_id))


class SnapshotHandler(PopHandler):
    """``POST /pop/api/jobs/<id>/snapshot`` {task, stage, refinement?}: the running stage writes its
    notebook as it stands (waited for up to 3 s, in the pool)."""

    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        from pop_nb.service import records

        ref = self.body(StageRef)
        await self.answer(
            lambda: records.snapshot_stage(self.pop_settings, job_id, ref.task, ref.stage, ref.refinement)
        )


class CopyHandler(PopHandler):
    """``POST /pop/api/jobs/<id>/copy`` {path}: an editable copy of one of its notebooks (201)."""

    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        from pop_nb.service import records

        path = self.body(CopyNotebook).path

        def copy() -> CopyMade:
            made: CopyMade = records.copy_notebook(self.pop_settings, job_id, path)
            made.lab_path = self.lab(Path(made.path))
            return made

        self.set_status(201)
        await self.answer(copy)


class CostsHandler(PopHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        from pop_nb.analytics import GROUPINGS

        by = self.get_argument("by", "pipeline")
        if by not in GROUPINGS:
            raise RequestError(f"by must be one of {', '.join(GROUPINGS)}")
        await self.answer(lambda: self.service.costs(self.pop_settings, by))


class ExperimentsHandler(PopHandler):
    """``GET /pop/api/experiments``: every experiment with each variant's progress."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from pop_nb.service import experiments

        def listed() -> list[Any]:
            found = experiments.experiments(self.pop_settings)
            for each in found:
                each.lab_file = self.lab(self.pop_settings.root / each.file)
            return found

        await self.answer(listed)


class ExperimentHandler(PopHandler):
    """``GET /pop/api/experiments/<name>``: the comparison, graded with what is kept."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        await self.answer(lambda: _experiment(self, name, ask=False))


class ScoreHandler(PopHandler):
    """``POST /pop/api/experiments/<name>/score``: the comparison after asking for the grades not kept
    (a judge's calls are paid for)."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        self.body(NoBody)
        await self.answer(lambda: _experiment(self, name, ask=True))


def _experiment(handler: PopHandler, name: str, *, ask: bool) -> Any:
    from pop_nb.service import experiments

    settings = handler.pop_settings
    found = experiments.experiment(settings, name, ask=ask)
    found.info.lab_file = handler.lab(settings.root / found.info.file)
    found.lab_data = handler.lab(settings.data)
    return found


class ExperimentItemHandler(PopHandler):
    """``GET /pop/api/experiments/<name>/item?id=K&repeat=R``: one item under every variant."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        from pop_nb.service import experiments

        ident = self.get_argument("id", None)
        if not ident:
            raise RequestError("id: the item's id (its dataset line's id) is needed")
        repeat = self.int_arg("repeat", 0)

        def found() -> Any:
            view = experiments.item(self.pop_settings, name, ident, repeat)
            view.lab_data = self.lab(self.pop_settings.data)
            return view

        await self.answer(found)


class OpenAPIHandler(PopHandler):
    """``GET /pop/api/openapi.json``: the REST contract, written from the models (``server.openapi``)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from pop_nb.server.openapi import document

        await self.answer(document)


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
        stream = bus.stream(last, heartbeat_s=self.settings.get("pop_heartbeat_s", 15.0))
        try:
            self.write(b"retry: 2000\n\n")
            await self.flush()
            async for event in stream:
                self.write(event.encode())
                await self.flush()
        except StreamClosedError:  # the client went away
            return
        finally:
            await stream.aclose()  # here and now, not whenever the garbage collector gets to it


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
        (rf"/pop/api/jobs/{ID}/(?P<action>resume|cancel|approve|reject|archive|restore)", ActionHandler),
        (rf"/pop/api/jobs/{ID}/file", JobFileHandler),
        (rf"/pop/api/jobs/{ID}/copy", CopyHandler),
        (rf"/pop/api/jobs/{ID}/log", LogHandler),
        (rf"/pop/api/jobs/{ID}/trace", TraceHandler),
        (rf"/pop/api/jobs/{ID}/zip", ZipHandler),
        (rf"/pop/api/jobs/{ID}/snapshot", SnapshotHandler),
        (r"/pop/api/costs", CostsHandler),
        (r"/pop/api/schedules", SchedulesHandler),
        (rf"/pop/api/schedules/{NAME}/(?P<action>pause|resume)", ScheduleActionHandler),
        (r"/pop/api/experiments", ExperimentsHandler),
        (rf"/pop/api/experiments/{NAME}", ExperimentHandler),
        (rf"/pop/api/experiments/{NAME}/score", ScoreHandler),
        (rf"/pop/api/experiments/{NAME}/item", ExperimentItemHandler),
        (r"/pop/api/events", EventsHandler),
        (r"/pop/api/openapi.json", OpenAPIHandler),
        (r"/pop/api(/.*)?", NotFoundHandler),
    ]
