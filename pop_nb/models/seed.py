"""Seeds (what a job runs on) and job ids (which are never trusted as paths)."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pop_nb.errors import SeedError
from pop_nb.models.pipeline import SLUG_PATTERN, LLMSettings

JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class Seed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(pattern=SLUG_PATTERN)
    name: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    llm: LLMSettings | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    budget_usd: float | None = Field(default=None, ge=0)


def check_job_id(job_id: str) -> str:
    """Return ``job_id`` if it is safe to use as a folder name, else raise :class:`SeedError`."""
    if not isinstance(job_id, str) or not JOB_ID_RE.fullmatch(job_id):
        shown = job_id if isinstance(job_id, str) and len(job_id) <= 80 else f"{str(job_id)[:80]}..."
        raise SeedError(
            "bad_id",
            f"job id {shown!r} is not allowed: use 1-128 characters from A-Z a-z 0-9 _ -, "
            "starting with a letter or digit",
        )
    return job_id


def new_job_id(slug: str) -> str:
    """A fresh, sortable id: ``<slug>-<yyyymmddThhmmss>-<6 hex>``."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return check_job_id(f"{slug}-{stamp}-{secrets.token_hex(3)}")
