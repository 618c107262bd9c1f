"""litellm's internals pop-nb touches, checked when litellm is first imported (lazily: it takes
seconds): its logging thread pool, which a kernel fork server must stop before it forks."""

from __future__ import annotations

from typing import Any

from pop_nb.compat import require

TESTED = "==1.106.2"


def check(litellm: Any) -> None:
    from litellm.litellm_core_utils import thread_pool_executor

    require("litellm", TESTED, thread_pool_executor, "executor")
    require(
        "litellm", TESTED, thread_pool_executor.executor, "_max_workers", "_max_pending_tasks", "shutdown"
    )


def reset_logging_pool() -> None:
    """Stop litellm's logging thread pool and set it back to its unstarted state: it starts a thread
    again at the next call, in whichever process makes it (after a fork, in the child)."""
    from litellm.litellm_core_utils.thread_pool_executor import executor

    executor.shutdown(wait=True)
    type(executor).__init__(
        executor, max_workers=executor._max_workers, max_pending_tasks=executor._max_pending_tasks
    )
