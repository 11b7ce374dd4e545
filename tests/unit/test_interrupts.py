"""A signal whose ``KeyboardInterrupt`` is swallowed before the job's guard is still acted on."""

from __future__ import annotations

import signal

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
