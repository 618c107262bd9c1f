"""Webhooks: a job that fails, is cancelled, stops at a gate or (when asked) is done is posted as JSON to
the URLs its pipeline names (``notify:``) and to ``POP_NOTIFY_URL``.

The body (``version`` 1) is documented in docs/contract.md: ``type`` (``pop.job.failed`` ...), the job's
summary, and a one-line ``text`` (what Slack-style hooks show). It passes the one redaction rule. A URL
is a secret (a Slack hook's path is its key): it is expanded from the environment when sent
(``${VAR}``), and only its scheme and host are ever written.

Posting never touches the job: :func:`announce` hands the notice to a detached process
(``python -m pop_nb.notify``, the notice and URLs on its stdin, never in its arguments) and returns; that
process tries each URL up to four times with exponential backoff (honouring ``Retry-After``) and writes
one line per URL to ``<data>/notify.jsonl``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pop_nb.models.pipeline import DEFAULT_NOTICES
from pop_nb.models.status import JobStatus
from pop_nb.redaction import redact_bytes

VERSION = 1
ATTEMPTS = 4
TIMEOUT_S = 10.0
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def kind_of(status: JobStatus) -> str | None:
    """The notice a job's state makes: failed, cancelled, waiting, done (None: still going)."""
    return status.state if status.state in ("failed", "cancelled", "waiting", "done") else None


def text_of(status: JobStatus, kind: str) -> str:
    """One line a person reads in a chat channel."""
    job = f"job {status.job_id} ({status.pipeline})"
    if kind == "failed" and status.error is not None:
        where = "/".join(p for p in (status.error.task, status.error.stage) if p)
        return (
            f"pop-nb: {job} failed{' at ' + where if where else ''}: {status.error.type}: "
            + (status.error.message[:300])
        )
    if kind == "waiting":
        return f"pop-nb: {job} waits at a gate: `pop approve {status.job_id}` or `pop reject {status.job_id}`"
    if kind == "cancelled":
        return f"pop-nb: {job} was cancelled"
    return f"pop-nb: {job} is done ({status.totals.cost_text(4)})"


def notice(status: JobStatus, kind: str, place: str, path: Path) -> dict[str, Any]:
    """The JSON body posted (``version`` 1)."""
    error = (
        status.error.model_dump(include={"type", "message", "task", "stage", "notebook"})
        if status.error
        else None
    )
    return {
        "type": f"pop.job.{kind}",
        "version": VERSION,
        "sent_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "text": text_of(status, kind),
        "job": {
            "id": status.job_id,
            "pipeline": status.pipeline,
            "name": status.name,
            "state": status.state,
            "place": place,
            "path": str(path),
            "created_at": status.created_at,
            "ended_at": status.ended_at,
            "progress": status.progress,
            "cost_usd": status.totals.cost_usd,
            "cost": status.totals.cost_text(6),
            "error": error,
            "waiting_gates": [name for name, task in status.tasks.items() if task.gate == "waiting"],
        },
    }


def targets(job_dir: Path, kind: str) -> list[str]:
    """The URLs (still with their ``${VAR}``) to post ``kind`` to: the job's pipeline's ``notify:`` (its
    snapshot in the job folder) and ``POP_NOTIFY_URL`` (failed, cancelled, waiting; ``POP_NOTIFY_ON``,
    comma-separated, changes which)."""
    found: list[str] = []
    env_url = os.environ.get("POP_NOTIFY_URL", "").strip()
    env_on = [k.strip() for k in os.environ.get("POP_NOTIFY_ON", ",".join(DEFAULT_NOTICES)).split(",")]
    if env_url and kind in env_on:
        found.append(env_url)
    snapshot = job_dir / "pipeline.yaml"
    try:
        if b"notify" not in snapshot.read_bytes():  # the common case, without parsing YAML
            return found
        import yaml
        from pydantic import TypeAdapter

        from pop_nb.models.pipeline import NotifySpec, notify_entries

        doc = yaml.safe_load(snapshot.read_text(encoding="utf-8")) or {}
        hooks = TypeAdapter(list[NotifySpec]).validate_python(notify_entries(doc.get("notify")))
    except Exception:  # gone, or not loading: it was checked when the job started
        return found
    found += [hook.url for hook in hooks if kind in hook.on and hook.url not in found]
    return found


def announce(job_dir: Path, status: JobStatus) -> None:
    """Post the notice for where ``status`` has got to, if anyone asked for it; never raises, never waits."""
    try:
        kind = kind_of(status)
        urls = targets(job_dir, kind) if kind else []
        if not kind or not urls:
            return
        payload = {
            "data": str(job_dir.parent.parent),
            "urls": urls,
            "notice": notice(status, kind, job_dir.parent.name, job_dir),
        }
        child = subprocess.Popen(
            [sys.executable, "-m", "pop_nb.notify"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C or a killed runner does not take the post with it
        )
        assert child.stdin is not None
        child.stdin.write(json.dumps(payload).encode("utf-8"))
        child.stdin.close()
    except Exception as exc:  # a notice is never worth a job: say so and go on
        print(f"pop: could not start the webhook notice for job {status.job_id}: {exc}", file=sys.stderr)


def expand(url: str) -> str:
    """``url`` with each ``${VAR}`` taken from the environment (a ``KeyError`` names a missing one)."""
    return _VAR.sub(lambda m: os.environ[m.group(1)], url)


def shown(url: str) -> str:
    """What may be written about a URL: its scheme and host, never its user, path or query (keys)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a URL)"
    return f"{parts.scheme}://{host}{port}" if parts.scheme and host else "(not a URL)"


def deliver(url: str, body: bytes, base_s: float) -> dict[str, Any]:
    """POST ``body`` to ``url``: up to :data:`ATTEMPTS` tries, waiting ``base_s``, 2x, 4x between them (or
    what ``Retry-After`` asks, at most 30 s). A 4xx other than 408 and 429 is not tried again."""
    import urllib.error
    import urllib.request

    outcome: dict[str, Any] = {"ok": False, "status": None, "attempts": 0, "error": None}
    for attempt in range(1, ATTEMPTS + 1):
        outcome["attempts"] = attempt
        wait = base_s * 2 ** (attempt - 1)
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "pop-nb"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
                outcome.update(ok=True, status=answer.status, error=None)
                return outcome
        except urllib.error.HTTPError as exc:
            outcome.update(status=exc.code, error=f"HTTP {exc.code}")
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                return outcome
            after = exc.headers.get("Retry-After", "") if exc.headers else ""
            if after.isdigit():
                wait = min(float(after), 30.0)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            outcome.update(status=None, error=f"{type(exc).__name__}: {reason}")
        if attempt < ATTEMPTS:
            time.sleep(wait)
    return outcome


def _failed(error: str) -> dict[str, Any]:
    return {"ok": False, "status": None, "attempts": 0, "error": error}


def main() -> int:
    """The detached sender: the payload on stdin, one line per URL in ``<data>/notify.jsonl``."""
    from pop_nb.store.atomic import append_jsonl

    payload = json.loads(sys.stdin.buffer.read())
    notice_ = payload["notice"]
    body = redact_bytes(json.dumps(notice_).encode("utf-8"))
    base_s = float(os.environ.get("POP_NOTIFY_RETRY_S", "1"))
    log = Path(payload["data"]) / "notify.jsonl"
    for raw_url in payload["urls"]:
        url = raw_url
        try:
            url = expand(raw_url)
            if not url.startswith(("http://", "https://")):
                raise ValueError("not an http(s) URL")
            outcome = deliver(url, body, base_s)
        except KeyError as missing:
            outcome = _failed(f"the environment has no {missing.args[0]} (named in a notify URL)")
        except ValueError as exc:
            outcome = _failed(str(exc))
        row = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "job": notice_["job"]["id"],
            "type": notice_["type"],
            "target": shown(url),
            **outcome,
        }
        append_jsonl(log, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
