"""Keys live in the environment only; anything we write or serve passes through one rule first.

A secret is the value of an environment variable whose name ends in KEY, TOKEN, SECRET or PASSWORD
(``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``HF_TOKEN``, ...), the password inside a URL held by
any variable (``POP_BROKER_URL=redis://:pw@host``), or a header value of the OTLP exporter's
(``OTEL_EXPORTER_OTLP_HEADERS``, which carries a tracing backend's key), at least 8 characters long.

Where the rule is applied: every file write of :mod:`pop_nb.store.atomic` (:func:`redact_bytes`: status,
events, usage, outputs, flags, products, artifacts, seeds, ledger), every stage notebook
(:func:`redact_notebook`) and log (:class:`RedactingWriter`), what stage kernels print below Python
(:mod:`pop_nb.execution.kernel_output`, a :class:`RedactingWriter` too), and every HTTP answer and SSE
event of the server (:func:`redact_bytes` again). JSON is redacted value by value, so it stays JSON
whatever the secret's characters; bytes that are not UTF-8 (a binary artifact) are written as given.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_HEADERS = re.compile(r"^OTEL_EXPORTER_OTLP(_TRACES|_METRICS|_LOGS)?_HEADERS$", re.IGNORECASE)
_MIN_LENGTH = 8
MASK = "[REDACTED]"


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def secret_values() -> list[str]:
    """Values of environment variables whose names say they are secrets, passwords in URLs, and the
    values of OTLP exporter headers (``OTEL_EXPORTER_OTLP_HEADERS=Authorization=Basic ...``), longest
    first."""
    values = {v for k, v in os.environ.items() if is_secret_name(k) and len(v) >= _MIN_LENGTH}
    values |= {p for v in os.environ.values() if (p := url_password(v)) and len(p) >= _MIN_LENGTH}
    values |= {h for k, v in os.environ.items() if _HEADERS.match(k) for h in header_values(v)}
    return sorted(values, key=len, reverse=True)


def header_values(value: str) -> set[str]:
    """The values of ``key=value,key=value`` (URL-encoded, as OTLP exporters read them), each as written
    and decoded, with what follows a scheme word (``Basic xyz`` -> ``xyz`` too)."""
    from urllib.parse import unquote

    found: set[str] = set()
    for pair in value.split(","):
        _, _, raw = pair.partition("=")
        for form in {raw.strip(), unquote(raw).strip()}:
            found |= {f for f in (form, form.split(" ", 1)[-1]) if len(f) >= _MIN_LENGTH}
    return found


def url_password(value: str) -> str | None:
    """The password in ``scheme://user:password@host...``, if ``value`` is such a URL."""
    if "://" not in value or "@" not in value:
        return None
    from urllib.parse import urlsplit

    try:
        return urlsplit(value).password
    except ValueError:
        return None


def mask(text: str, values: list[str]) -> str:
    """``text`` with each of ``values`` (longest first) replaced by ``[REDACTED]``."""
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact(text: str) -> str:
    """``text`` with every configured secret value replaced by ``[REDACTED]``."""
    return mask(text, secret_values())


def redact_tree(node: Any, values: list[str] | None = None) -> Any:
    """Redact every string inside a JSON-like tree (a notebook), in place where it can; returns it."""
    values = secret_values() if values is None else values
    if not values:
        return node
    if isinstance(node, str):
        return mask(node, values)
    if isinstance(node, dict):
        for key in list(node):
            node[key] = redact_tree(node[key], values)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            node[i] = redact_tree(item, values)
    return node


def _masked_copy(node: Any, values: list[str]) -> Any:
    if isinstance(node, str):
        return mask(node, values)
    if isinstance(node, dict):
        return {mask(str(k), values): _masked_copy(v, values) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_masked_copy(item, values) for item in node]
    if isinstance(node, int | float) and not isinstance(node, bool) and mask(str(node), values) != str(node):
        return MASK  # a secret that is all digits, written as a number
    return node


def _forms(values: list[str]) -> list[str]:
    """How each secret can appear in what we write: as itself, and as a JSON string spells it (a quote,
    a backslash or a non-ASCII character is escaped there); longest first."""
    forms = set(values)
    for value in values:
        forms.add(json.dumps(value, ensure_ascii=True)[1:-1])
        forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    return sorted(forms, key=len, reverse=True)


def redact_bytes(data: bytes, *, compact: bool = False) -> bytes:
    """``data`` as it may be written. Unchanged when it holds no secret (the common case: one scan).
    Else JSON is masked value by value and written out again (``compact``: on one line, for JSON
    lines; else indented by 2), other UTF-8 text is masked as text, and bytes that are not UTF-8
    (a binary artifact) are left as they are."""
    values = secret_values()
    if not values:
        return data
    forms = _forms(values)
    if not any(form.encode("utf-8", "surrogateescape") in data for form in forms):
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    from pop_nb.safejson import loads

    try:
        value = loads(text)
    except ValueError:
        return mask(text, forms).encode("utf-8")
    masked = _masked_copy(value, values)
    out = json.dumps(masked, indent=None if compact else 2, ensure_ascii=False)
    return (out + "\n" if text.endswith("\n") else out).encode("utf-8")


def redact_notebook(nb: Any, values: list[str] | None = None) -> Any:
    """Redact a notebook in place, including a secret printed in pieces: a cell's stream outputs of one
    name (``stdout``, ``stderr``) are read joined, as JupyterLab shows them, and where the join holds a
    secret they are merged into one output (as nbclient's ``coalesce_streams`` would) before masking."""
    values = secret_values() if values is None else values
    if not values:
        return nb
    for cell in nb.get("cells", []):
        outputs = cell.get("outputs")
        if not outputs:
            continue
        for name in {o.get("name") for o in outputs if o.get("output_type") == "stream"}:
            streams = [o for o in outputs if o.get("output_type") == "stream" and o.get("name") == name]
            joined = "".join(_text(o.get("text", "")) for o in streams)
            if len(streams) > 1 and mask(joined, values) != joined:
                first = streams[0]
                first["text"] = joined
                cell["outputs"] = outputs = [
                    o for o in outputs if o is first or not any(o is s for s in streams)
                ]
    return redact_tree(nb, values)


def _text(text: str | list[str]) -> str:
    return text if isinstance(text, str) else "".join(text)


class RedactingWriter:
    """A text stream that redacts what is written to it (a stage's log file), across writes: a tail that
    could be the start of a secret is held back until the next write shows whether it is one, so a key
    printed in two pieces (with a flush between) is still caught. :meth:`close` writes what is held."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._values = secret_values()
        self._held = ""

    def write(self, text: str) -> int:
        masked = mask(self._held + text, self._values)
        keep = _secret_prefix_at_end(masked, self._values)
        self._held = masked[len(masked) - keep :] if keep else ""
        self._stream.write(masked[: len(masked) - keep])
        return len(text)

    def flush(self) -> None:
        self._stream.flush()  # what is held stays held: the rest of a secret may come next

    def close(self) -> None:
        """Write what was held back (it was not a whole secret), and flush."""
        self._stream.write(self._held)
        self._held = ""
        self._stream.flush()


@contextlib.contextmanager
def masked_output() -> Iterator[None]:
    """``sys.stdout`` and ``sys.stderr`` through the rule while inside (a runner's: its ``runner.log``),
    each a :class:`RedactingWriter`; what they held back is written on the way out."""
    saved = sys.stdout, sys.stderr
    out, err = _MaskedStream(sys.stdout), _MaskedStream(sys.stderr)
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        for stream in (out, err):
            with contextlib.suppress(OSError, ValueError):
                stream.close()


class _MaskedStream(RedactingWriter):
    """A :class:`RedactingWriter` standing in for ``sys.stdout``/``sys.stderr``: whatever else a stream is
    asked (``fileno``, ``isatty``, ``encoding``) is the wrapped one's."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _secret_prefix_at_end(text: str, values: list[str]) -> int:
    """Length of the longest end of ``text`` that is the beginning (not the whole) of a secret."""
    longest = 0
    for value in values:
        for size in range(min(len(value) - 1, len(text)), longest, -1):
            if text.endswith(value[:size]):
                longest = size
                break
    return longest


def load_dotenv_file(root: Path) -> None:
    """Load ``<root>/.env`` into the environment (never overriding what is already set), so the
    runner's kernels and litellm find keys kept there."""
    path = root / ".env"
    if path.is_file():
        from dotenv import load_dotenv

        load_dotenv(path, override=False)
