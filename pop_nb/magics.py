"""``%pop``: ``%load_ext pop_nb``, then

- ``%pop run <slug> [--data {...}] [--id ID] [--no-wait]``: run a pipeline; the cell shows it live;
- ``%pop status [ID]``, ``%pop costs [--by model]``: what the CLI prints;
- ``%pop dashboard``: the dashboard.

``--data`` takes JSON or a Python literal (IPython may already have turned ``{...}`` into one).
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from typing import Any

USAGE = (
    "usage: %pop run <slug> [--data {...}] [--id ID] [--no-wait] | status [ID] | costs [--by B] | dashboard"
)
_DATA = re.compile(r"--data\s+(\{.*\}|\[.*\])", re.DOTALL)


def parse_data(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ValueError(f"--data is neither JSON nor a Python literal: {text[:200]}") from None


def pop_magic(line: str) -> Any:
    """The ``%pop`` line magic (also callable directly)."""
    data: Any = {}
    match = _DATA.search(line)
    if match:
        data = parse_data(match.group(1))
        line = line[: match.start()] + line[match.end() :]
    args = shlex.split(line)
    if not args:
        print(USAGE)
        return None
    command, rest = args[0], args[1:]
    if command == "run":
        import pop_nb

        if not rest:
            print(USAGE)
            return None
        slug, wait, job_id = rest[0], "--no-wait" not in rest, None
        if "--id" in rest:
            job_id = rest[rest.index("--id") + 1]
        if wait and not _shown():  # a terminal: progress lines and the outcome, as `pop run` prints them
            from pop_nb.cli.follow import follow_job

            job = pop_nb.run(slug, data, job_id=job_id, wait=False)
            follow_job(job, quiet=True)
            return job
        job = pop_nb.run(slug, data, job_id=job_id, wait=wait)
        if wait:
            return None  # its live widget is already in the cell
        return job
    if command in ("status", "costs"):
        from pop_nb.cli import main

        main([command, *rest])
        return None
    if command == "dashboard":
        import pop_nb

        return pop_nb.dashboard()
    print(USAGE)
    return None


def _shown() -> bool:
    """True when ``pop_nb.run`` shows the live widget (in a notebook, not a terminal)."""
    from pop_nb.jobs import _in_notebook

    return _in_notebook()


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magic_function(pop_magic, magic_kind="line", magic_name="pop")
