"""A bus of job events for Server-Sent Events: it follows the ``events.jsonl`` of every open job and
numbers what it sees, so a client that reconnects with ``Last-Event-ID`` gets exactly what it missed.

Only jobs in ``current/`` can change, so a pass stats those files alone (a job that ends is read to the
end in its new place once). Ids are ``<epoch>-<n>``: the epoch is this server's start, so an id from
before a restart, or one older than the buffer, gets a ``reset`` event (refetch ``/pop/api/jobs``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pop_nb.redaction import redact_bytes
from pop_nb.store import layout
from pop_nb.store.jobs import JobFolder
from pop_nb.store.listing import job_entries

BUFFER = 10_000


@dataclass(frozen=True)
class BusEvent:
    id: str
    name: str  # the SSE event name: job | task | stage | llm | reset | heartbeat
    data: dict[str, Any]

    def encode(self) -> bytes:
        body = redact_bytes(json.dumps(self.data, separators=(",", ":"), default=str).encode(), compact=True)
        return f"id: {self.id}\nevent: {self.name}\ndata: ".encode() + body + b"\n\n"


class EventBus:
    def __init__(self, data_dir: Path, poll_s: float = 0.05) -> None:
        self.data_dir = data_dir
        self.poll_s = poll_s
        self.epoch = f"{int(time.time() * 1000):x}"
        self._seq = 0
        self._buffer: deque[BusEvent] = deque(maxlen=BUFFER)
        self._offsets: dict[str, tuple[Path, int]] = {}  # job id -> (events.jsonl, bytes read)
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._prime()

    # -- following the files ------------------------------------------------------------------
    def _prime(self) -> None:
        """Start at the end of every open job's log: history is what ``/pop/api/jobs`` is for."""
        for job_dir in self._open_jobs():
            log = job_dir / layout.EVENTS
            self._offsets[job_dir.name] = (log, log.stat().st_size if log.exists() else 0)

    def _open_jobs(self) -> list[Path]:
        return [Path(entry.path) for entry in job_entries(self.data_dir / "current")]

    def start(self) -> None:
        """Follow the files from now on (on the running loop; idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        """Stop following the files and end every stream, so that no handler is left suspended in one
        when the server's loop closes (its generator would be finalized later, anywhere)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        async with self._changed:
            self._changed.notify_all()

    async def _follow(self) -> None:
        # The files are read in a thread: the server's loop is every Lab user's, and a scan of current/
        # with a status read per active job is milliseconds (more on a slow disk). Events are numbered
        # and buffered back on the loop, which is the only place the buffer changes.
        while True:
            try:
                found = await asyncio.to_thread(self._read_fresh)
            except OSError:  # a folder moving under us: the next pass catches up
                found = []
            if found:
                for name, data in found:
                    self._publish(name, data)
                async with self._changed:
                    self._changed.notify_all()
            await asyncio.sleep(self.poll_s)

    def poll(self) -> list[BusEvent]:
        """Read what every open job (and every job that just ended) appended; returns the new events
        (published here: for callers on the loop's thread, or with no loop)."""
        return [self._publish(name, data) for name, data in self._read_fresh()]

    def _read_fresh(self) -> list[tuple[str, dict[str, Any]]]:
        """The new events of every open job (and every job that just ended), as (SSE name, data);
        touches only the offsets, so it can run off the loop (one call at a time)."""
        fresh: list[tuple[str, dict[str, Any]]] = []
        open_now = {p.name: p for p in self._open_jobs()}
        for job_id, job_dir in open_now.items():
            log = job_dir / layout.EVENTS
            known = self._offsets.get(job_id)
            offset = known[1] if known is not None and known[0] == log else _run_start(log)
            fresh += self._read(job_id, log, offset)
        for job_id in [j for j in self._offsets if j not in open_now]:  # ended, or resumed elsewhere
            log, offset = self._offsets.pop(job_id)
            for place in ("complete", "failed"):
                moved = JobFolder(self.data_dir / place / job_id).events_file
                if moved.exists():
                    fresh += self._read(job_id, moved, offset)
                    self._offsets.pop(job_id, None)
                    break
        return fresh

    def _read(self, job_id: str, log: Path, offset: int) -> list[tuple[str, dict[str, Any]]]:
        try:
            with log.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        whole = chunk[: chunk.rfind(b"\n") + 1]  # never half a line
        self._offsets[job_id] = (log, offset + len(whole))
        rows = []
        for line in whole.splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
        job = _job(log.parent) if rows else None  # the status once per read, not once per line
        return [(str(row.get("kind") or "job"), {"event": row, "job": job}) for row in rows]

    def _publish(self, name: str, data: dict[str, Any]) -> BusEvent:
        self._seq += 1
        event = BusEvent(f"{self.epoch}-{self._seq}", name, data)
        self._buffer.append(event)
        return event

    # -- serving --------------------------------------------------------------------------------
    def since(self, last_id: str | None) -> list[BusEvent] | None:
        """Events after ``last_id``; ``None`` if they can no longer be given (restart, too old)."""
        if last_id is None:
            return []
        epoch, _, seq = last_id.partition("-")
        if epoch != self.epoch or not seq.isdigit():
            return None
        n = int(seq)
        if self._buffer and n + 1 < _seq(self._buffer[0]):
            return None
        return [e for e in self._buffer if _seq(e) > n]

    async def stream(self, last_id: str | None, heartbeat_s: float = 15.0) -> AsyncIterator[BusEvent]:
        """What the client missed, then each new event as it comes; a heartbeat when nothing does."""
        missed = self.since(last_id)
        if missed is None:
            yield self._reset("events were missed; reload the job list")
            cursor = self._seq
        else:
            cursor = int(last_id.partition("-")[2]) if last_id else self._seq
        while not self._closed:
            fresh = [e for e in self._buffer if _seq(e) > cursor]
            if fresh and _seq(fresh[0]) > cursor + 1:  # the buffer moved past this (slow) client
                yield self._reset("this client fell behind; reload the job list")
            if not fresh:
                async with self._changed:
                    try:
                        await asyncio.wait_for(self._changed.wait(), heartbeat_s)
                    except TimeoutError:
                        yield BusEvent(f"{self.epoch}-{cursor}", "heartbeat", {"ts": time.time()})
                continue
            for event in fresh:  # published while we yield are picked up by the next round
                yield event
                cursor = _seq(event)

    def _reset(self, reason: str) -> BusEvent:
        return BusEvent(f"{self.epoch}-{self._seq}", "reset", {"reason": reason})


def _seq(event: BusEvent) -> int:
    return int(event.id.rpartition("-")[2])


def _run_start(log: Path) -> int:
    """Where the job's latest run begins in its log (its ``created`` or ``resumed`` line): a job seen in
    ``current/`` for the first time is new, or back from a resume with its history behind it."""
    try:
        data = log.read_bytes()
    except FileNotFoundError:
        return 0
    start, offset = 0, 0
    for line in data.splitlines(keepends=True):
        if b'"kind":"job"' in line and (b'"status":"created"' in line or b'"status":"resumed"' in line):
            start = offset
        offset += len(line)
    return start


def _job(job_dir: Path) -> dict[str, Any] | None:
    """The job's summary as it is now, for the panel to show without another request."""
    from pop_nb.service import summary

    try:
        return summary(JobFolder(job_dir)).model_dump(mode="json")
    except (OSError, ValueError):
        return None
