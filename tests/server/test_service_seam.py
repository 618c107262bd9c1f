"""``PopExtension.service`` puts another module of job functions behind the same API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.server.test_api import call


@pytest.fixture
def jp_server_config() -> dict[str, object]:
    return {
        "ServerApp": {"jpserver_extensions": {"pop_nb": True}},
        "PopExtension": {"service": "tests.server.other_service"},
    }


@pytest.fixture
def jp_root_dir(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    return root


async def test_the_api_answers_from_the_configured_service(project: Project, jp_fetch: Any) -> None:
    project.pipeline("tiny", {"a": {}})
    code, pipelines = await call(jp_fetch, "GET", "pop/api/pipelines")
    assert code == 200 and [p["slug"] for p in pipelines] == ["team/tiny"]
    assert (await call(jp_fetch, "GET", "pop/api/jobs"))[0] == 200  # the rest is pop-nb's own
