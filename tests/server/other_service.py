"""Another implementation of the job functions, for ``PopExtension.service``: pop-nb's own, with the
pipelines listed under a prefix (what a deployment might do: add its own policy, keep the rest)."""

from __future__ import annotations

from typing import Any

from pop_nb.service import *  # noqa: F403  (the same functions: only what differs is written here)
from pop_nb.service import pipelines as _pipelines


def pipelines(settings: Any, detail: bool = True) -> list[Any]:
    found = _pipelines(settings, detail)
    for info in found:
        info.slug = f"team/{info.slug}"
    return found
