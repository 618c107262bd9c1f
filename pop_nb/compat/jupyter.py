"""nbclient's and jupyter_client's internals that the stage engine uses
(:mod:`pop_nb.execution.papermill_engine`, :mod:`pop_nb.execution.forkserver`), checked at import.

- ``KernelClient._async_is_alive``: whether the kernel still lives while we wait for its first reply
  (jupyter_client's public ``is_alive`` blocks the event loop);
- ``KernelClient._handle_kernel_info_reply``: what ``wait_for_ready`` does with the reply (the
  kernel's language info), done by our own faster readiness check;
- ``NotebookClient.async_start_new_kernel_client`` and ``_async_cleanup_kernel``: the client start we
  replace, and the clean-up it calls on failure;
- ``LocalProvisioner.launch_kernel`` and ``wait``: the provisioner hooks a forked kernel overrides;
- ``ConnectionFileMixin._make_url``: a kernel's address on a channel, for the socket that asks a stage's
  kernel to exit (:func:`pop_nb.execution.kernels.say_goodbye`).
"""

from __future__ import annotations

from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.connect import ConnectionFileMixin
from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from nbclient import NotebookClient

from pop_nb.compat import require

require("jupyter_client", ">=8,<9", AsyncKernelClient, "_async_is_alive", "_handle_kernel_info_reply")
require("nbclient", ">=0.10,<0.12", NotebookClient, "async_start_new_kernel_client", "_async_cleanup_kernel")
require("jupyter_client", ">=8,<9", LocalProvisioner, "launch_kernel", "wait", "connection_info")
require("jupyter_client", ">=8,<9", ConnectionFileMixin, "_make_url")


def channel_url(km: Any, channel: str) -> str:
    """The address of a kernel's ``channel`` (``shell``, ...), as its clients connect to it."""
    return str(km._make_url(channel))


async def kernel_alive(kc: Any) -> bool:
    return bool(await kc._async_is_alive())


def take_kernel_info(kc: Any, reply: dict[str, Any]) -> None:
    """Let the client read the kernel's ``kernel_info_reply`` as its own ready check would have."""
    kc._handle_kernel_info_reply(reply)
