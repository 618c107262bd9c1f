"""Where a runner's kernels print below Python: a pipe whose reader masks secrets on the way out.

A stage kernel's own standard output and error (file descriptors 1 and 2) receive what Python's
``sys.stdout`` does not carry: ``os.write``, a subprocess's output, C code's ``printf``, ipykernel's echo
of all of those (it copies them to the notebook *and* to the original descriptors), and whatever is
given ``sys.stdout.fileno()``. Those descriptors used to be the runner's own (``runner.log``), so a key a
stage's subprocess printed was masked in the notebook and the stage log but written to ``runner.log``
as it was. Now every kernel of a runner prints into one pipe, read by a thread that writes it on to the
runner's standard error through :class:`~pop_nb.redaction.RedactingWriter` (the one redaction rule).
"""

from __future__ import annotations

import codecs
import contextlib
import os
import threading
from typing import TextIO

from pop_nb.redaction import RedactingWriter

READ_SIZE = 1 << 16
CLOSE_WAIT_S = 1.0  # for what kernels printed last; a process the stage detached may keep it open


class KernelOutput:
    """The pipe kernels print into (:attr:`fd`, for their descriptors 1 and 2) and the thread that
    writes what comes out of it, masked, to ``target`` (a descriptor of ours: our standard error)."""

    def __init__(self, target: int = 2) -> None:
        read_end, self.fd = os.pipe()  # neither inherited: a kernel is given the write end explicitly
        try:
            out = os.fdopen(os.dup(target), "w", encoding="utf-8", errors="replace")
        except OSError:  # started with no stderr at all: what kernels print goes nowhere, as it would
            out = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (closed by the thread)
        self._thread = threading.Thread(
            target=self._copy, args=(read_end, out), daemon=True, name="pop-kernel-output"
        )
        self._thread.start()
        self._closed = False

    @staticmethod
    def _copy(read_end: int, out: TextIO) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        writer: RedactingWriter | None = RedactingWriter(out)
        try:
            while chunk := os.read(read_end, READ_SIZE):
                if writer is None:
                    continue  # still read: a full pipe would block every kernel that prints
                try:
                    writer.write(decoder.decode(chunk))
                    writer.flush()
                except (OSError, ValueError):  # our stderr is gone: nothing to write to
                    writer = None
            if writer is not None:
                writer.write(decoder.decode(b"", final=True))
                writer.close()  # what was held back as the possible start of a key was not one
        except (OSError, ValueError):
            pass
        finally:
            os.close(read_end)
            with contextlib.suppress(OSError, ValueError):
                out.close()

    def close(self) -> None:
        """Once the kernels are gone: let the thread write what they printed last, and end."""
        if self._closed:
            return
        self._closed = True
        os.close(self.fd)
        self._thread.join(CLOSE_WAIT_S)
