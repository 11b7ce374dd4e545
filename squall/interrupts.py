"""SIGINT, SIGTERM and SIGHUP in the controller: where they may stop it, and where they wait.

A closed terminal (SIGHUP) stops a job as SIGTERM does — its finished
outputs collected, ``down`` run, the journal told — except in a detached
controller (``DETACHED_ENV``) or one started with SIGHUP ignored (``nohup``),
which go on as if nothing happened.

A signal normally raises ``Interrupted`` wherever the main thread is. Two
kinds of code must not be cut at an arbitrary point:

- *transfers* (``uninterrupted()``): a file copy or an SFTP read stopped
  mid-packet leaves a broken session and a half-written file, so the signal
  is remembered and acted on when the transfer is done — between files;
- *clean-up* (``shield()``): ``down`` always runs to its end; the signal is
  remembered and reported after.

One guard is installed per controller (``SignalGuard`` as a context
manager); sites reach it through the module-level ``uninterrupted()`` without
knowing about it, and outside a guard ``uninterrupted()`` changes nothing.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager, nullcontext
from typing import ContextManager, Iterator

from squall.errors import Interrupted

DETACHED_ENV = "SQUALL_DETACHED"  # set by ``squall.controllers`` for the controllers it starts in the background
_current: "SignalGuard | None" = None
_noted: str | None = None  # a signal that came before any guard


def stop_signals() -> tuple[signal.Signals, ...]:
    """The signals that stop a job: SIGHUP too, unless it is ignored (``nohup``, ``ignore_hangup_if_detached``)."""
    hangup = signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN
    return (signal.SIGINT, signal.SIGTERM, *((signal.SIGHUP,) if hangup else ()))


def ignore_hangup_if_detached() -> None:
    """A detached controller goes on when it gets SIGHUP (called before ``stop_signals``)."""
    if os.environ.get(DETACHED_ENV) == "1":
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


def note_signal(signum: int) -> None:
    """Remember a signal that came before a guard: its ``KeyboardInterrupt`` may be swallowed on its way
    (a library's ``except BaseException``, a finaliser), and the guard must still act on it."""
    global _noted
    _noted = _noted or signal.Signals(signum).name


class SignalGuard:
    """Turns SIGINT/SIGTERM/SIGHUP into ``Interrupted``, except inside a transfer or a shield."""

    def __init__(self) -> None:
        self.received: str | None = None  # the first signal's name: the job was interrupted
        self._pending = False  # a signal arrived inside a transfer and was not yet acted on
        self._deferring = 0
        self._shielded = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "SignalGuard":
        """Installs the handlers, and ``Thread.start`` with signals deferred (see ``_start_uninterrupted``);
        ``received`` already holds a signal noted before (see ``note_signal``)."""
        global _current
        if threading.current_thread() is threading.main_thread():
            for signum in stop_signals():
                self._previous[signum] = signal.signal(signum, self._handle)
            threading.Thread.start = _start_uninterrupted
            _current = self
            self.received = _noted
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _current
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if _current is self:
            threading.Thread.start = _thread_start
            _current = None

    def _handle(self, signum: int, frame: object) -> None:
        self.received = self.received or signal.Signals(signum).name
        if self._shielded:
            return
        if self._deferring:
            self._pending = True
            return
        raise Interrupted(signal.Signals(signum).name)

    @contextmanager
    def shield(self) -> Iterator[None]:
        """Signals are only recorded from here on (used for ``down``, which must finish)."""
        self._shielded = True
        yield

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """A signal inside is acted on when the block ends (never inside it)."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        if not self._deferring and self._pending and not self._shielded:
            self._pending = False
            raise Interrupted(self.received or "SIGINT")


_thread_start = threading.Thread.start


def _start_uninterrupted(thread: threading.Thread) -> None:
    """``Thread.start`` with signals deferred to its end. Cut by one between starting the thread and
    returning, CPython forgets the thread it just started, which then dies with a traceback on stderr
    (a thread pool's worker in staging, paramiko's transport: seen in the fault matrix)."""
    with uninterrupted():
        _thread_start(thread)


def uninterrupted() -> ContextManager[None]:
    """One step a signal must not cut (a file transfer; starting a process and recording it)."""
    guard = _current
    if guard is None or threading.current_thread() is not threading.main_thread():
        return nullcontext()
    return guard.deferred()
