"""``PopExtension``: the jupyter_server extension app that serves ``/pop/api``."""

from __future__ import annotations

import importlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Int, Unicode

from pop_nb.config import find_root, load_settings
from pop_nb.server.events import EventBus
from pop_nb.server.handlers import handlers


class PopExtension(ExtensionApp):
    name = "pop_nb"
    heartbeat_s = Float(15.0, help="Seconds between heartbeats on a quiet event stream.").tag(config=True)
    poll_s = Float(0.05, help="Seconds between looks at the open jobs' event logs.").tag(config=True)
    service = Unicode(
        "pop_nb.service",
        help="The module of job functions the API calls (list_jobs, get_job, start_job, ...): another "
        "implementation of them can be put in its place.",
    ).tag(config=True)
    threads = Int(8, help="Threads that run the API's requests (never the server's event loop).").tag(
        config=True
    )

    def initialize_settings(self) -> None:
        # The project this server serves: POP_ROOT, else the nearest folder at or above the server's root
        # that has pipelines/ or pop.toml (the rule pop_nb uses everywhere).
        assert self.serverapp is not None  # set before extensions initialise
        root = None if os.environ.get("POP_ROOT") else find_root(Path(self.serverapp.root_dir))
        settings = load_settings(root)
        bus = EventBus(settings.data, poll_s=self.poll_s)  # follows the files once a client listens
        service = importlib.import_module(self.service)
        pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="pop-api")
        self.settings.update(
            pop_settings=settings,
            pop_bus=bus,
            pop_heartbeat_s=self.heartbeat_s,
            pop_pool=pool,
            pop_service=service,
        )
        self.log.info(f"pop-nb: serving {settings.root} (jobs in {settings.data})")

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())

    async def stop_extension(self) -> None:
        bus = self.settings.get("pop_bus")
        if bus is not None:
            await bus.stop()
        pool = self.settings.get("pop_pool")
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
