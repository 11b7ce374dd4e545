"""Standard streams that cannot stop a job: a reader that went away is not a reason to fail.

``squall job run SPEC | head -3``, a terminal closed under a running job, or
a CI step that closes stderr all leave the controller writing to nothing: the
write fails (EPIPE, EIO, EBADF), and an exception raised from a progress bar
would end the controller in the middle of ``launch``, its job orphaned. Here
such a write is dropped, the stream points at ``/dev/null`` from then on (so
Python's own flush at exit and any child that inherits it fail no more), and
the command carries on to its end and exits with the job's code.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import TextIO

GONE = (errno.EPIPE, errno.EIO, errno.EBADF, errno.ECONNRESET, errno.ENXIO)


class Unbreakable:
    """A text stream whose writes and flushes never raise because its reader has gone."""

    def __init__(self, stream: TextIO, fd: int):
        self._stream = stream
        self._fd = fd
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._stream.write(text)
            except OSError as exc:
                self._lost(exc)
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except OSError as exc:
                self._lost(exc)

    def isatty(self) -> bool:
        return not self.gone and self._stream.isatty()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def _lost(self, exc: OSError) -> None:
        if exc.errno not in GONE:
            raise exc
        self.gone = True
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, self._fd)  # what the stream still buffers is flushed into nothing, never raised
        finally:
            os.close(null)


def install() -> None:
    """Make fds 0-2 exist (a closed one is ``/dev/null``: the next file opened must never take its number)
    and wrap ``sys.stdout`` and ``sys.stderr``."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        if stream is None:  # Python found the fd closed at start-up
            stream = open(fd, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        if not isinstance(stream, Unbreakable):
            setattr(sys, name, Unbreakable(stream, fd))
