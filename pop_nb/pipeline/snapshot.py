"""A job runs what it was created with: the definition and the files it names, copied into the job.

``<job>/pipeline.yaml`` is the definition's text; ``<job>/pipeline/`` holds each task's notebook
(``notebooks/<task>.ipynb``), output schema (``schemas/<task>.json``), the seed schema
(``seed_schema.json``) and a ``manifest.json`` of where they came from and their sha256. A queued job
therefore runs the notebooks as they were when it was submitted, however they are edited meanwhile;
``pop resume`` takes the current definition on purpose, writes a new snapshot and reports what changed.

What a notebook reads by relative path, personalities and mock scripts still come from the pipeline's
folder (a stage's kernel starts there), as they would for a notebook opened in JupyterLab.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pop_nb.errors import PipelineError
from pop_nb.models.pipeline import PipelineSpec
from pop_nb.pipeline.load import Pipeline, discover, load_pipeline, parse_spec
from pop_nb.store.atomic import atomic_write_bytes, atomic_write_json, read_json
from pop_nb.store.jobs import JobFolder

MANIFEST = "manifest.json"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_snapshot(folder: JobFolder, pipeline: Pipeline) -> dict[str, str]:
    """Copy the definition and its files into ``folder``; returns ``{name: sha256}``."""
    text = pipeline.text.encode("utf-8")
    atomic_write_bytes(folder.pipeline_file, text)
    hashes = {"pipeline.yaml": _digest(text)}
    for name, source in pipeline.named_files().items():
        data = source.read_bytes()
        atomic_write_bytes(folder.snapshot_dir / name, data, durable=False)
        hashes[name] = _digest(data)
    atomic_write_json(
        folder.snapshot_dir / MANIFEST,
        {"slug": pipeline.slug, "source": str(pipeline.file), "files": hashes},
    )
    return hashes


def snapshot_hashes(folder: JobFolder) -> dict[str, str]:
    """``{name: sha256}`` of the job's snapshot (empty for a job made before snapshots)."""
    try:
        return dict(read_json(folder.snapshot_dir / MANIFEST)["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def describe_changes(before: dict[str, str], after: dict[str, str]) -> str:
    """What differs between two snapshots, in words: ``changed: notebooks/research.ipynb; added: ...``."""
    if not before:
        return "no earlier snapshot to compare"
    parts = []
    for label, names in (
        ("changed", [n for n in after if n in before and before[n] != after[n]]),
        ("added", [n for n in after if n not in before]),
        ("removed", [n for n in before if n not in after]),
    ):
        if names:
            parts.append(f"{label}: {', '.join(sorted(names))}")
    return "; ".join(parts) or "definition and notebooks unchanged"


def snapshot_spec(folder: JobFolder) -> PipelineSpec:
    """The definition the job was created with (its ``pipeline.yaml``), parsed."""
    spec, problems = parse_spec(folder.pipeline_file, folder.pipeline_file.read_text(encoding="utf-8"))
    if spec is None:
        raise PipelineError(folder.job_id, problems)
    return spec


def job_pipeline(folder: JobFolder, root: Path, slug: str) -> Pipeline:
    """The pipeline as the job was created with it, placed where the pipeline lives now (its folder is
    where stage kernels start). A job made before snapshots runs the live definition."""
    if not (folder.snapshot_dir / MANIFEST).exists():
        return load_pipeline(root, slug)
    text = folder.pipeline_file.read_text(encoding="utf-8")
    spec, problems = parse_spec(folder.pipeline_file, text)
    if spec is None:
        raise PipelineError(slug, problems)
    source = read_json(folder.snapshot_dir / MANIFEST).get("source")
    home = discover(root).get(slug) or Path(source or folder.pipeline_file)
    files = {name: folder.snapshot_dir / name for name in snapshot_hashes(folder) if name != "pipeline.yaml"}
    return Pipeline(slug=slug, file=home.resolve(), text=text, spec=spec, files=files)
