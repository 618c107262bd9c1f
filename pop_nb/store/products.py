"""Products: the files a job leaves in ``products/`` when it ends well.

``text``, ``json`` and ``csv`` take a value from a task's final output (``key`` picks a part of it);
``zip`` packs the files the task wrote (``files/artifacts/<task>/``) with a manifest of each file's
size and sha256, built the same way every time, so the same files make the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.models.pipeline import ProductSpec
from pop_nb.store.atomic import atomic_write_bytes, read_json
from pop_nb.store.paths import inside

if TYPE_CHECKING:
    from collections.abc import Callable

    from pop_nb.store.jobs import JobFolder

MANIFEST = "MANIFEST.json"
"""The manifest's name inside a zip product: ``{"files": [{"file", "size", "sha256"}]}``."""

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # zip's epoch: the bytes depend on the files only
_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class ProductError(ValueError):
    """A product that cannot be made from what its task left; the message names product, task and fix."""


def select(value: Any, spec: ProductSpec) -> Any:
    """The part of a task's output that ``spec.key`` (dotted) names."""
    for part in (spec.key or "").split("."):
        if not part:
            continue
        if not isinstance(value, dict) or part not in value:
            raise ProductError(
                f"product {spec.path}: task {spec.from_!r} output has no key {part!r} (of key {spec.key!r}); "
                "fix the product's key in pipeline.yaml or what the task outputs"
            )
        value = value[part]
    return value


def render(value: Any, spec: ProductSpec) -> bytes:
    """``value`` as the bytes of a text, json or csv product."""
    kind = spec.kind
    if kind == "json":
        return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if kind == "csv":
        return _csv(value, spec).encode("utf-8")
    if not isinstance(value, str):
        raise ProductError(
            f"product {spec.path}: format text needs a string, task {spec.from_!r} gave "
            f"{type(value).__name__}; name a text key (key: ...) or use format json"
        )
    return value.encode("utf-8")


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    # a cell a spreadsheet would run as a formula (model output is untrusted) is kept as text
    if isinstance(value, str) and value.startswith(_CSV_FORMULA):
        return "'" + value
    return value


def _csv(value: Any, spec: ProductSpec) -> str:
    """A list of objects (columns: their keys, first seen first) or a list of rows."""
    if not isinstance(value, list) or not all(isinstance(row, (dict, list)) for row in value):
        raise ProductError(
            f"product {spec.path}: format csv needs a list of objects or a list of rows, task "
            f"{spec.from_!r} gave {type(value).__name__}; point key at such a list"
        )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if value and all(isinstance(row, dict) for row in value):
        columns = list(dict.fromkeys(k for row in value for k in row))
        writer.writerow(columns)
        writer.writerows([_cell(row.get(c, "")) for c in columns] for row in value)
    elif all(isinstance(row, list) for row in value):
        writer.writerows([_cell(c) for c in row] for row in value)
    else:
        raise ProductError(f"product {spec.path}: rows of task {spec.from_!r} mix objects and lists; use one")
    return out.getvalue()


def task_files(folder: Path) -> list[tuple[str, Path]]:
    """The regular files under ``folder`` as (posix relative name, path), sorted; a symlink is refused
    (it could pack a file from anywhere on the machine)."""
    found: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            if (Path(root) / name).is_symlink():
                raise ProductError(
                    f"{Path(root) / name} is a symlink; a zip product packs regular files only"
                )
        for name in files:
            if name.startswith(".") and name.endswith(".tmp"):  # an atomic write that never finished
                continue
            path = Path(root) / name
            found.append((path.relative_to(folder).as_posix(), path))
    return sorted(found)


def pack(folder: Path, spec: ProductSpec) -> bytes:
    """The zip of the files under ``folder`` plus ``MANIFEST.json``."""
    files = task_files(folder) if folder.is_dir() else []
    if not files:
        raise ProductError(
            f"product {spec.path}: task {spec.from_!r} wrote no files (files/artifacts/{spec.from_}/ is "
            "empty); write them with pop.write_artifact(name, data)"
        )
    manifest: list[dict[str, Any]] = []
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in files:
            if name == MANIFEST:
                raise ProductError(
                    f"product {spec.path}: task {spec.from_!r} wrote {MANIFEST}, a name the zip keeps"
                )
            data = path.read_bytes()
            archive.writestr(_entry(name), data)
            manifest.append({"file": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        listing = json.dumps({"files": manifest}, indent=2, ensure_ascii=False) + "\n"
        archive.writestr(_entry(MANIFEST), listing)
    return out.getvalue()


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def write_products(
    job: JobFolder, products: list[ProductSpec], provider_of: Callable[[str], str | None]
) -> None:
    """Write each product of a finished job into ``products/``, from the final output (or the files) of
    the task that stands for its ``from`` (``provider_of``: itself, or its fallback)."""
    for product in products:
        source = provider_of(product.from_)
        if source is None:
            continue
        if product.kind == "zip":
            data = pack(job.artifacts_dir(source), product)
        else:
            data = render(select(read_json(job.final_output(source)), product), product)
        atomic_write_bytes(inside(job.products_dir, product.path, "product"), data)
