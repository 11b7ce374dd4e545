"""A signal whose ``KeyboardInterrupt`` is swallowed before the job's guard is still acted on."""

from __future__ import annotations

import os
import signal
import time

import pytest

from squall import interrupts
from squall.interrupts import SignalGuard, note_signal


@pytest.fixture(autouse=True)
def no_noted_signal(monkeypatch):
    monkeypatch.setattr(interrupts, "_noted", None)


def test_a_signal_noted_before_the_guard_is_received_by_it():
    try:
        raise KeyboardInterrupt  # what the CLI's handler raises ...
    except KeyboardInterrupt:
        note_signal(signal.SIGTERM)  # ... and notes; here a library swallows the exception
    with SignalGuard() as guard:
        assert guard.received == "SIGTERM"
    note_signal(signal.SIGINT)
    with SignalGuard() as guard:
        assert guard.received == "SIGTERM"  # the first signal is the one reported


def test_without_a_noted_signal_the_guard_starts_clean_and_restores_the_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with SignalGuard() as guard:
        assert guard.received is None
        assert signal.getsignal(signal.SIGTERM) != before
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_thread_starts_whole_when_a_signal_lands_in_its_start(monkeypatch):
    """Python's ``Thread.start`` cut by a signal forgets the thread it started, which then dies with a
    traceback on stderr; under the guard a thread's start defers the signal to its end."""
    import threading

    from squall.errors import Interrupted

    start_new_thread = threading._start_new_thread

    def start_then_signal(*args):
        started = start_new_thread(*args)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs here, inside Thread.start
        return started

    monkeypatch.setattr(threading, "_start_new_thread", start_then_signal)
    finish = threading.Event()
    thread = threading.Thread(target=finish.wait)
    with SignalGuard():
        with pytest.raises(Interrupted):
            thread.start()
        assert thread.is_alive() and thread in threading.enumerate()
    finish.set()
    thread.join()
    assert threading.Thread.start is interrupts._thread_start  # put back with the handlers
