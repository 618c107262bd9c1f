"""The REST contract of ``/pop/api`` as an OpenAPI 3.1 document, written from the pydantic models the
handlers answer with (``pop_nb.models.api``): served at ``/pop/api/openapi.json`` and committed as
``openapi.json`` beside this module, where a test fails when the models change and it was not written
again (``python -m pop_nb.server.openapi``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pop_nb.errors import ERROR_CODES
from pop_nb.models import api
from pop_nb.models.schedule import ScheduleView
from pop_nb.models.trace import JobTrace

COMMITTED = Path(__file__).with_name("openapi.json")
JOB = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}

# (method, path, summary, path parameters, query parameters, request model, answer model, list of it?, status)
ROUTES: list[tuple[str, str, str, list[dict[str, Any]], list[str], type[BaseModel] | None, Any, int]] = [
    (
        "get",
        "/pop/api/pipelines",
        "Every pipeline, a broken one with why",
        [],
        [],
        None,
        [api.PipelineInfo],
        200,
    ),
    (
        "post",
        "/pop/api/pipelines/{slug}/check",
        "Would this seed be accepted?",
        [SLUG],
        [],
        api.CheckSeed,
        None,
        200,
    ),
    (
        "get",
        "/pop/api/jobs",
        "A page of jobs, newest first",
        [],
        ["state", "pipeline", "search", "offset", "limit", "sort", "archived"],
        None,
        api.JobPage,
        200,
    ),
    ("post", "/pop/api/jobs", "Check a seed and start its job", [], [], api.StartJob, api.JobSummary, 201),
    (
        "get",
        "/pop/api/jobs/{job_id}",
        "One job with its tasks, stage runs, outputs and products",
        [JOB],
        [],
        None,
        api.JobDetail,
        200,
    ),
    (
        "post",
        "/pop/api/jobs/{job_id}/resume",
        "Run it again, keeping upstream work",
        [JOB],
        [],
        api.ResumeJob,
        api.JobSummary,
        200,
    ),
    ("post", "/pop/api/jobs/{job_id}/cancel", "Stop it", [JOB], [], None, api.JobSummary, 200),
    (
        "post",
        "/pop/api/jobs/{job_id}/approve",
        "Let it go on past its gate (outputs: the approver's edit of a waiting task's output)",
        [JOB],
        [],
        api.ApproveJob,
        api.JobSummary,
        200,
    ),
    (
        "post",
        "/pop/api/jobs/{job_id}/reject",
        "End it at its gate",
        [JOB],
        [],
        api.RejectJob,
        api.JobSummary,
        200,
    ),
    (
        "get",
        "/pop/api/jobs/{job_id}/file",
        "A file of the job, read-only, wherever its folder is now (raw=1: the bytes)",
        [JOB],
        ["path", "content", "raw"],
        None,
        api.JobFile,
        200,
    ),
    (
        "post",
        "/pop/api/jobs/{job_id}/copy",
        "Copy one of its notebooks to scratch/ to edit and run",
        [JOB],
        [],
        api.CopyNotebook,
        api.CopyMade,
        201,
    ),
    (
        "get",
        "/pop/api/jobs/{job_id}/log",
        "A stage's log from a byte offset (follow a running stage by asking again)",
        [JOB],
        ["task", "stage", "refinement", "offset"],
        None,
        api.LogChunk,
        200,
    ),
    (
        "get",
        "/pop/api/schedules",
        "Every schedule: its next slots and its last outcomes",
        [],
        [],
        None,
        [ScheduleView],
        200,
    ),
    (
        "post",
        "/pop/api/schedules/{name}/pause",
        "Stop a schedule firing",
        [NAME],
        [],
        None,
        ScheduleView,
        200,
    ),
    (
        "post",
        "/pop/api/schedules/{name}/resume",
        "Let a paused schedule fire again (slots during the pause are not caught up)",
        [NAME],
        [],
        None,
        ScheduleView,
        200,
    ),
    (
        "get",
        "/pop/api/jobs/{job_id}/trace",
        "Its spans as trees, one per run: job > task > stage > LLM request, with tokens and cost",
        [JOB],
        [],
        None,
        JobTrace,
        200,
    ),
    (
        "post",
        "/pop/api/jobs/{job_id}/snapshot",
        "Have a running stage write its notebook as it stands",
        [JOB],
        [],
        api.StageRef,
        api.StageSnapshot,
        200,
    ),
    (
        "post",
        "/pop/api/jobs/{job_id}/archive",
        "Move an ended job out of the way",
        [JOB],
        [],
        None,
        api.JobSummary,
        200,
    ),
    ("post", "/pop/api/jobs/{job_id}/restore", "An archived job back", [JOB], [], None, api.JobSummary, 200),
    (
        "delete",
        "/pop/api/jobs/{job_id}",
        "Remove an ended job for good",
        [JOB],
        [],
        None,
        api.JobDeleted,
        200,
    ),
    ("get", "/pop/api/jobs/{job_id}/zip", "The job's folder as one zip", [JOB], [], None, None, 200),
    ("get", "/pop/api/costs", "pop costs as rows", [], ["by"], None, None, 200),
    (
        "get",
        "/pop/api/experiments",
        "Every experiment, each variant with its progress",
        [],
        [],
        None,
        [api.ExperimentInfo],
        200,
    ),
    (
        "get",
        "/pop/api/experiments/{name}",
        "The variants compared, graded with what is kept",
        [NAME],
        [],
        None,
        api.ExperimentDetail,
        200,
    ),
    (
        "post",
        "/pop/api/experiments/{name}/score",
        "Ask for the grades not kept (a judge is paid), then compare",
        [NAME],
        [],
        None,
        api.ExperimentDetail,
        200,
    ),
    (
        "get",
        "/pop/api/experiments/{name}/item",
        "One item under every variant, with its diffs against the baseline",
        [NAME],
        ["id", "repeat"],
        None,
        api.ExperimentItem,
        200,
    ),
    ("get", "/pop/api/openapi.json", "This document", [], [], None, None, 200),
]


def document() -> dict[str, Any]:
    """The OpenAPI document: paths from :data:`ROUTES`, schemas from the models."""
    from pydantic.json_schema import models_json_schema

    found: set[type[BaseModel]] = {api.ErrorBody}
    for route in ROUTES:
        for model in (route[5], _model(route[6])):
            if model is not None:
                found.add(model)
    models = sorted(found, key=lambda m: m.__name__)
    _, schemas = models_json_schema(
        [(m, "validation" if m in _requests() else "serialization") for m in models],
        ref_template="#/components/schemas/{model}",
    )
    statuses = sorted({status for _, status, _ in ERROR_CODES} | {403, 404})
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, params, query, request, answer, status in ROUTES:
        operation: dict[str, Any] = {
            "summary": summary,
            "parameters": params + [{"name": q, "in": "query", "schema": {"type": "string"}} for q in query],
            "responses": {
                str(status): {"description": "OK", "content": {"application/json": {"schema": _ref(answer)}}},
                **{
                    str(code): {
                        "description": "error",
                        "content": {"application/json": {"schema": _ref(api.ErrorBody)}},
                    }
                    for code in statuses
                },
            },
        }
        if request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(request)}},
            }
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pop-nb",
            "version": "1",
            "description": "The /pop/api of the pop-nb Jupyter server extension.",
        },
        "paths": paths,
        "components": {"schemas": schemas["$defs"]},
    }


def _requests() -> set[type[BaseModel]]:
    return {route[5] for route in ROUTES if route[5] is not None}


def _model(answer: Any) -> type[BaseModel] | None:
    inner = answer[0] if isinstance(answer, list) else answer
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def _ref(answer: Any) -> dict[str, Any]:
    model = _model(answer)
    if model is None:
        return {"type": "object"}
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"type": "array", "items": ref} if isinstance(answer, list) else ref


def text() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    COMMITTED.write_text(text())
    print(f"wrote {COMMITTED}")
