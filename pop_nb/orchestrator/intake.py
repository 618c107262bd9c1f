"""Taking seeds from ``pending/``: claim, validate, and either create the job or reject the seed.

A seed is claimed by renaming it into this daemon's claim folder (``.orchestrator/claims/<daemon>/``):
a rename succeeds for exactly one daemon, so two daemons on one folder never take the same seed. What
was claimed by a daemon that died is handed back to ``pending/`` (or dropped, if its job exists).
Nothing is deleted: a bad seed is moved, byte for byte, to ``rejected/<id>/seed.json`` next to a
``rejection.json`` that says why.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pop_nb.config import PopSettings
from pop_nb.errors import PipelineError, PipelineNotFound, PopError, SeedError
from pop_nb.models.ids import JOB_ID_RE
from pop_nb.models.seed import MAX_SEED_BYTES, check_seed_size, loads_seed, parse_seed, shown_name
from pop_nb.models.status import now_iso
from pop_nb.safejson import nesting_over
from pop_nb.store import layout
from pop_nb.store.atomic import atomic_write_json
from pop_nb.store.jobs import JobStore
from pop_nb.store.pending import SEED_SUFFIX, scan_pending

SETTLE_S = 2.0  # how long a seed that is not yet whole JSON may still be being written


@dataclass(frozen=True)
class Outcome:
    """What became of one pending file: a job id, a rejection (reason), or nothing yet (skipped)."""

    name: str
    job_id: str | None = None
    rejected: str | None = None  # the rejected/<id> folder name
    reason: str | None = None


class Unavailable(Exception):
    """The data folder, not the seed, failed (it cannot be written: a full disk, a mount gone): the seed
    goes back to ``pending/`` to be taken again, and ``error`` is raised to the daemon."""

    def __init__(self, error: OSError) -> None:
        self.error = error
        super().__init__(str(error))


class Rejected(Exception):
    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


class Intake:
    def __init__(self, settings: PopSettings, claim_dir: Path) -> None:
        self.settings = settings
        self.store = JobStore(settings.data)
        self.pending_dir = self.store.dir("pending")
        self.claim_dir = claim_dir

    def pending(self) -> list[Path]:
        """Seeds waiting in ``pending/`` (regular files named ``*-seed.json``), oldest first."""
        return [self.pending_dir / name for name in scan_pending(self.pending_dir)[0]]

    def strays(self) -> list[str]:
        """Names in ``pending/`` that are not seeds (``notes.txt``, ``j3-seed.json.part``, a folder, a
        symlink): left where they are, for whoever put them there. Hidden files (a writer's temporaries,
        ``.name.XXXX.tmp``) are neither seeds nor strays."""
        return scan_pending(self.pending_dir)[1]

    def take(self, path: Path) -> Outcome | None:
        """Claim and process one pending file; ``None`` if it is still being written or was taken."""
        if self._still_writing(path):
            return None
        self.claim_dir.mkdir(parents=True, exist_ok=True)
        claimed = self.claim_dir / path.name
        try:
            os.rename(path, claimed)
        except FileNotFoundError:
            return None  # another daemon was faster
        try:
            job_id = self._create_job(path.name, claimed)
        except Rejected as why:
            return self._reject(path.name, claimed, why)
        except Unavailable as trouble:
            os.rename(claimed, path)  # not the seed's fault: it waits in pending/ for the folder to work
            raise trouble.error from None
        except Exception as exc:  # a bug of ours, a disk error: the seed is kept, the daemon goes on
            message = f"pop-nb could not process this seed ({type(exc).__name__}: {exc}); drop it again"
            return self._reject(path.name, claimed, Rejected("internal_error", message))
        claimed.unlink(missing_ok=True)
        return Outcome(path.name, job_id=job_id)

    def _still_writing(self, path: Path) -> bool:
        """A recent file that is not yet whole JSON is probably being written: leave it a moment."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        if time.time() - st.st_mtime > SETTLE_S or st.st_size > MAX_SEED_BYTES:
            return False
        try:
            raw = path.read_bytes()
        except OSError:  # unreadable: judged now
            return False
        if nesting_over(raw):  # too deep to parse: judged now
            return False
        try:
            json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return True
        return False

    def _create_job(self, name: str, claimed: Path) -> str:
        shown = shown_name(name)
        job_id = name[: -len(SEED_SUFFIX)]
        if not JOB_ID_RE.fullmatch(job_id):
            raise Rejected(
                "bad_id",
                f'job id "{shown_name(job_id)[:80]}" (from "{shown[:100]}") is not allowed: use 1-128 '
                "characters from A-Z a-z 0-9 _ -, starting with a letter or digit",
            )
        from pop_nb.service import create_job

        try:
            check_seed_size(claimed.stat().st_size, shown)  # before reading a file of any size
            raw = claimed.read_bytes()  # read once: what is judged is what is kept
            seed = parse_seed(loads_seed(raw, shown), shown)
        except SeedError as exc:
            raise Rejected(exc.reason, str(exc)) from None
        existing = self.store.find(job_id)
        if existing is not None:
            if existing.place == "current" and existing.seed_file.read_bytes() == raw:
                return job_id  # our own claim, interrupted after the job was made: finish it
            raise Rejected(
                "duplicate_id", f"a job {job_id!r} already exists in {existing.place}/; use a new id"
            )
        try:
            create_job(self.settings, seed, job_id, where=shown, seed_bytes=raw)
        except PipelineNotFound as exc:
            raise Rejected("unknown_pipeline", str(exc)) from None
        except PipelineError as exc:
            raise Rejected("invalid_pipeline", str(exc)) from None
        except SeedError as exc:
            raise Rejected(exc.reason, str(exc)) from None
        except PopError as exc:
            raise Rejected("create_failed", str(exc)) from None
        except OSError as exc:
            raise Unavailable(exc) from None
        return job_id

    def _reject(self, name: str, claimed: Path, why: Rejected) -> Outcome:
        base = name[: -len(SEED_SUFFIX)] if name.endswith(SEED_SUFFIX) else name
        if not JOB_ID_RE.fullmatch(base):  # never a path from an untrusted name
            base = "seed-" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        rejected = self.store.dir("rejected")
        folder, n = rejected / base, 1
        while folder.exists():
            n += 1
            folder = rejected / f"{base}-{n}"
        folder.mkdir()
        os.rename(claimed, folder / layout.SEED)
        atomic_write_json(
            folder / "rejection.json",
            {
                "reason": why.reason,
                "message": why.message,
                "rejected_at": now_iso(),
                "file": shown_name(name)[:300],
            },
        )
        return Outcome(name, rejected=folder.name, reason=why.reason)

    def recover_claims(self, claims_root: Path, alive: set[str]) -> int:
        """Hand back what dead daemons had claimed; returns how many seeds went back to ``pending/``."""
        back = 0
        if not claims_root.is_dir():
            return 0
        for owner in claims_root.iterdir():
            if not owner.is_dir() or owner.name in alive:
                continue
            for claimed in owner.iterdir():
                job_id = claimed.name[: -len(SEED_SUFFIX)] if claimed.name.endswith(SEED_SUFFIX) else ""
                folder = self.store.find(job_id) if JOB_ID_RE.fullmatch(job_id) else None
                if folder is not None and folder.seed_file.read_bytes() == claimed.read_bytes():
                    claimed.unlink()  # the job was made; only the cleanup was lost
                    continue
                os.rename(claimed, self.pending_dir / claimed.name)
                back += 1
            owner.rmdir()
        return back
