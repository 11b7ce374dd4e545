"""A part of a site that stopped answering (a host, or the scheduler): a passing outage proves nothing about
the tasks, so executors note since when and ask again, and give up only once the tasks could no longer run."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Silence:
    """A host that stopped answering: since when (monotonic, and the wall clock for people), why, how long
    its tasks could still run (``limit`` seconds), and when to ask it again."""

    since: float
    since_wall: float
    why: str
    limit: float
    asked: int = 1
    next_ask: float = 0.0

    def shown(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self.since_wall))

    def over(self) -> bool:
        """Silent for longer than its tasks could run: none of them is running any more."""
        return time.monotonic() - self.since >= self.limit
