"""A job's files as JupyterLab reads them: found by job id, wherever the job is now.

A job's folder moves (``current/`` -> ``complete/`` or ``failed/``, and back on resume), so Lab never
names a job's file by its folder: it asks for ``<job id>/<path in the job>`` (the ``pop-job:`` drive of
the extension) and this module finds the folder at each read. What it answers is the shape of Jupyter's
Contents API, read-only: a notebook's cells come marked trusted (pop-nb wrote them) and not editable,
and nothing is ever written into the job (no checkpoints). :func:`copy_notebook` makes the copy a user
may edit and run (``scratch/<job id>/`` at the project root; run by hand, it replays on a scratch copy
of the job, as any stage notebook does: :mod:`pop_nb.task`).
"""

from __future__ import annotations

import base64
import mimetypes
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pop_nb.config import PopSettings
from pop_nb.errors import JobFileNotFound, RequestError
from pop_nb.models.api import CopyMade, JobFile, LogChunk, StageSnapshot
from pop_nb.safejson import loads
from pop_nb.store import layout
from pop_nb.store.atomic import atomic_create_bytes
from pop_nb.store.jobs import JobFolder, JobStore
from pop_nb.store.paths import path_problem

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Larger files are refused (with the path to open them by) rather than read into the server's memory."""

SCRATCH = "scratch"
"""Where :func:`copy_notebook` puts copies, under the project root (visible in Lab's file browser)."""


def _located(settings: PopSettings, job_id: str, path: str) -> tuple[JobFolder, Path]:
    """The job's folder now and ``path`` in it (which must exist and stay inside it)."""
    if path:
        problem = path_problem(path)
        if problem is not None:
            raise RequestError(f"file {path!r} of job {job_id} {problem}; name a file inside the job folder")
    store = JobStore(settings.data)
    for _ in range(3):  # the job may move between finding its folder and reading in it: look again
        folder = store.get(job_id)
        root = folder.path.resolve()
        file = (folder.path / path).resolve() if path else root
        if file.exists():
            if not file.is_relative_to(root):
                raise RequestError(f"file {path!r} of job {job_id} leads outside the job folder (a symlink)")
            return folder, file
        if folder.path.is_dir():  # the folder is there; the file is not
            break
    raise JobFileNotFound(job_id, path, folder.path)


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _model(job_id: str, rel: str, file: Path, content: bool) -> JobFile:
    stat = file.stat()
    name = file.name if rel else job_id
    common: dict[str, Any] = {
        "name": name,
        "path": f"{job_id}/{rel}" if rel else job_id,
        "created": _stamp(stat.st_ctime),
        "last_modified": _stamp(stat.st_mtime),
        "size": None if file.is_dir() else stat.st_size,
    }
    if file.is_dir():
        entries = None
        if content:
            entries = [
                _model(job_id, f"{rel}/{child.name}" if rel else child.name, child, False)
                for child in sorted(file.iterdir())
                if not child.name.startswith(".") and (child.is_file() or child.is_dir())
            ]
        return JobFile(type="directory", format="json" if content else None, content=entries, **common)
    if stat.st_size > MAX_FILE_BYTES:
        raise RequestError(
            f"file {rel!r} of job {job_id} is {stat.st_size} bytes, over the {MAX_FILE_BYTES}-byte limit "
            f"for reading it in Lab; open it from disk: {file}"
        )
    if file.suffix == ".ipynb":
        body = _record_notebook(file) if content else None
        return JobFile(type="notebook", format="json" if content else None, content=body, **common)
    mimetype = mimetypes.guess_type(file.name)[0] or "text/plain"
    if not content:
        return JobFile(type="file", mimetype=mimetype, **common)
    raw = file.read_bytes()
    try:
        return JobFile(type="file", format="text", mimetype=mimetype, content=raw.decode("utf-8"), **common)
    except UnicodeDecodeError:
        binary = mimetype if not mimetype.startswith("text/") else "application/octet-stream"
        encoded = base64.b64encode(raw).decode("ascii")
        return JobFile(type="file", format="base64", mimetype=binary, content=encoded, **common)


def _record_notebook(file: Path) -> dict[str, Any]:
    """The executed notebook as a record: every cell trusted (pop-nb wrote its outputs) and locked."""
    notebook = loads(file.read_bytes())
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise RequestError(f"{file} is not a notebook (no cells list); open it as text from disk")
    for cell in notebook["cells"]:
        if isinstance(cell, dict):
            metadata = cell.setdefault("metadata", {})
            if isinstance(metadata, dict):
                metadata.update(editable=False, deletable=False)
                if cell.get("cell_type") == "code":
                    metadata["trusted"] = True
    return notebook


def job_file(settings: PopSettings, job_id: str, path: str, content: bool = True) -> JobFile:
    """``path`` (relative to the job's folder; empty: the folder) of job ``job_id``, wherever the job is
    now, as a read-only Contents model."""
    _, file = _located(settings, job_id, path)
    return _model(job_id, path.strip("/"), file, content)


def job_file_bytes(settings: PopSettings, job_id: str, path: str) -> tuple[bytes, str]:
    """The bytes of one file of the job, and its media type (what a download or an image link gets)."""
    _, file = _located(settings, job_id, path)
    if not file.is_file():
        raise RequestError(f"{path!r} of job {job_id} is a folder; name a file in it")
    if file.stat().st_size > MAX_FILE_BYTES:
        raise RequestError(
            f"file {path!r} of job {job_id} is over {MAX_FILE_BYTES} bytes; open it from disk: {file}"
        )
    mimetype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return _masked(file, file.read_bytes()), mimetype


def _masked(file: Path, data: bytes) -> bytes:
    """A job file's bytes as pop-nb serves them: text (by its suffix or media type) through the
    redaction rule, as every answer is; other bytes as they are."""
    from pop_nb.redaction import redact_bytes

    kind = mimetypes.guess_type(file.name)[0] or ""
    text = file.suffix in TEXT_SUFFIXES or kind.startswith("text/") or kind == "image/svg+xml"
    return redact_bytes(data) if text else data


def copy_notebook(settings: PopSettings, job_id: str, path: str) -> CopyMade:
    """A copy of one of the job's notebooks to edit and run: ``scratch/<job id>/<task>-<file>`` at the
    project root (``-2``, ``-3``, ... when that exists: an earlier copy keeps its edits). Signed with the
    user's Jupyter notary when nbformat can, so Lab opens it trusted too."""
    folder, file = _located(settings, job_id, path)
    if file.suffix != ".ipynb" or not file.is_file():
        raise RequestError(f"{path!r} of job {job_id} is not a notebook; only notebooks are copied to run")
    if file.stat().st_size > MAX_FILE_BYTES:
        raise RequestError(
            f"{path!r} of job {job_id} is over {MAX_FILE_BYTES} bytes; copy it from disk: {file}"
        )
    notebook = loads(file.read_bytes())
    text = _signed(notebook) if isinstance(notebook, dict) else file.read_text(encoding="utf-8")
    parts = Path(path).parts
    stem = f"{parts[1]}-{file.stem}" if len(parts) > 2 and parts[0] == "tasks" else file.stem
    target_dir = settings.root / SCRATCH / job_id
    target_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        target = target_dir / (f"{stem}.ipynb" if n == 1 else f"{stem}-{n}.ipynb")
        if atomic_create_bytes(target, text.encode("utf-8")):
            return CopyMade(job=job_id, source=folder.rel(file), path=str(target))
    raise RequestError(f"{target_dir} holds 999 copies of {file.name}; delete some")


def _signed(notebook: dict[str, Any]) -> str:
    """The notebook as text, signed for the user's Jupyter (unsigned if nbformat cannot sign here)."""
    import json

    try:
        import nbformat
        from nbformat.sign import NotebookNotary

        node = nbformat.from_dict(notebook)
        NotebookNotary().sign(node)
        return str(nbformat.writes(node))
    except Exception:  # no notary database, a read-only Jupyter data dir: the copy opens untrusted
        return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


TEXT_SUFFIXES = frozenset(
    {".json", ".jsonl", ".ipynb", ".log", ".md", ".txt", ".csv", ".yaml", ".yml", ".py"}
)


def zip_job(settings: PopSettings, job_id: str, into: IO[bytes]) -> int:
    """The job's folder as one zip (``<id>/...``) written into ``into``: every file but hidden ones and
    the runner's lock, text masked by the redaction rule as everything pop-nb serves. Returns the count."""
    import zipfile

    folder = JobStore(settings.data).get(job_id)
    count = 0
    with zipfile.ZipFile(into, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.path.rglob("*")):
            rel = path.relative_to(folder.path)
            if not path.is_file() or path.is_symlink() or any(p.startswith(".") for p in rel.parts):
                continue
            if rel.name == "runner.lock":
                continue
            try:
                data = path.read_bytes()
            except OSError:  # gone since the listing (a running job): left out
                continue
            archive.writestr(f"{job_id}/{rel.as_posix()}", _masked(path, data))
            count += 1
    return count


MAX_LOG_CHUNK = 256 * 1024
"""At most this much of a log per read; a first read of a longer log starts this far from its end."""


def _stage_run(
    settings: PopSettings, job_id: str, task: str, stage: str, refinement: int
) -> tuple[JobFolder, str]:
    """The job's folder and the state of one of its stage runs (``pending`` if it has not started)."""
    from pop_nb.models.pipeline import STAGES
    from pop_nb.store.jobs import run_suffix

    folder = JobStore(settings.data).get(job_id)
    if stage not in STAGES:
        raise RequestError(f"{stage!r} is not a stage; the stages are {', '.join(STAGES)}")
    status = folder.read_status()
    if task not in status.tasks:
        raise RequestError(f"job {job_id} has no task {task!r} (its tasks: {', '.join(status.tasks)})")
    run = status.tasks[task].stages.get(f"{stage}{run_suffix(refinement)}")
    return folder, run.state if run is not None else "pending"


def stage_log(
    settings: PopSettings, job_id: str, task: str, stage: str, refinement: int = 0, offset: int = 0
) -> LogChunk:
    """A stage's log from byte ``offset``: what its cells printed so far, whole lines while it runs."""
    folder, state = _stage_run(settings, job_id, task, stage, refinement)
    log = folder.stage_log(task, stage, refinement)
    start, data, size = max(offset, 0), b"", 0
    try:
        with log.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            start = max(min(start, size), size - MAX_LOG_CHUNK)
            fh.seek(start)
            data = fh.read(MAX_LOG_CHUNK)
    except FileNotFoundError:
        pass
    if state == "running" and b"\n" in data:
        data = data[: data.rfind(b"\n") + 1]  # a line still being written comes whole next time
    elif state == "running":
        data = b""
    return LogChunk(
        task=task,
        stage=stage,
        refinement=refinement,
        state=state,
        text=data.decode("utf-8", errors="replace"),
        offset=start + len(data),
        size=size,
        skipped=max(0, start - max(offset, 0)),
    )


def snapshot_stage(
    settings: PopSettings, job_id: str, task: str, stage: str, refinement: int = 0, wait_s: float = 3.0
) -> StageSnapshot:
    """Ask a running stage to write its notebook as it stands (it does at its next cell or output) and
    wait up to ``wait_s`` for it. A stage that is not running answers with its notebook as it is."""
    folder, state = _stage_run(settings, job_id, task, stage, refinement)
    notebook = folder.stage_notebook(task, stage, refinement)
    rel = folder.rel(notebook)
    if state != "running":
        return StageSnapshot(notebook=rel, saved=notebook.exists())
    before = notebook.stat().st_mtime_ns if notebook.exists() else None
    notebook.with_name(layout.save_request(notebook.name)).touch()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if notebook.exists() and notebook.stat().st_mtime_ns != before:
            return StageSnapshot(notebook=rel, saved=True)
        time.sleep(0.05)
    return StageSnapshot(
        notebook=rel,
        saved=notebook.exists(),
        message="the running cell has printed nothing since; the notebook is written when it prints or "
        "ends" + ("" if notebook.exists() else " (nothing has been written yet)"),
    )
