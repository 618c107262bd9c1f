"""A dotted path into JSON values (``classify.category``, ``tags.0``): what ``pop test`` checks and an
experiment's scorers read. The bottom of the house: it imports nothing of pop-nb's."""

from __future__ import annotations

from typing import Any

MISSING: Any = object()
"""What :func:`lookup` gives when nothing is at the path (``None`` may be a value there)."""


def lookup(value: Any, path: str) -> Any:
    """The value at ``path``: object keys, and list indexes (``-1`` the last), part by part."""
    node = value
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node
