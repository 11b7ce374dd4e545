"""A real store and the real program functions, with the engine stood in by ``RecordingEngine``."""

from __future__ import annotations

import pytest

from squall.infra.bank import Banks
from squall.infra.driver import StackName
from squall.infra.orgs import Orgs
from tests.infra.engine_double import RecordingEngine

ZEPHY = StackName("zephy", "org", "main")
ACME = StackName("acme", "org", "main")


def silent(_message: str) -> None:
    return None


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine() -> RecordingEngine:
    return RecordingEngine()


@pytest.fixture
def orgs(store, engine) -> Orgs:
    return Orgs(store, engine)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def banks(store, orgs, clock) -> Banks:
    return Banks(store, orgs, probe=lambda address: address == "127.0.0.1", clock=clock)
