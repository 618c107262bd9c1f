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


def schema_from_example(example: Any) -> dict[str, Any]:
    """The JSON Schema an example value implies: its types, every key of an object required, a list's
    items shaped like its first item. ``null`` in the example allows anything there."""
    if isinstance(example, bool):
        return {"type": "boolean"}
    if isinstance(example, int):
        return {"type": "integer"}
    if isinstance(example, float):
        return {"type": "number"}
    if isinstance(example, str):
        return {"type": "string"}
    if isinstance(example, list):
        return {"type": "array", "items": schema_from_example(example[0])} if example else {"type": "array"}
    if isinstance(example, dict):
        return {
            "type": "object",
            "properties": {str(k): schema_from_example(v) for k, v in example.items()},
            "required": [str(k) for k in example],
        }
    return {}
