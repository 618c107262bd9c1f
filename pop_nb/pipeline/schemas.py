"""JSON Schema checks that say where: a task's ``output_schema``, a pipeline's ``seed_schema``."""

from __future__ import annotations

from typing import Any


def schema_errors(schema: dict[str, Any], value: Any, label: str = "output_schema") -> list[str]:
    """JSON Schema violations of ``value``, each as ``<label>: <where>: <what>`` (``where`` like
    ``$.findings[0].source``)."""
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    found = []
    for err in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        found.append(f"{label}: {where}: {err.message}")
    return found
