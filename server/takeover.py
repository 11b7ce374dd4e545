"""Jobs nobody drives any more, taken over by this server.

A job is orphaned when it is unfinished and its controller is gone: the process died, or its machine did.
With a shared PostgreSQL store the controller's lock lives in its database session, which PostgreSQL ends
when the process dies, or, for a dead machine, when TCP keep-alives give up (about a minute: see
``squall.database``). Every server looks for orphans now and then and starts a controller (``job attach``)
for each; when several servers find the same job at once, its controller lock lets exactly one of them
drive it and the others' attach is refused and exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Callable, ContextManager

from squall.controllers import spawn_controller
from squall.errors import HomeUnusable
from squall.store import Store

INTERVAL = 10.0  # seconds between looks
log = logging.getLogger("squall.server.takeover")
FIRST_START_GRACE = 60.0  # a job still in its plan this long after submission lost its first controller


def orphans(store: Store, now: float | None = None) -> list[str]:
    """Unfinished jobs (``pending``/``running``) no live controller drives; ``incomplete`` ones wait for a
    person (their outputs could not be written where asked) and are left to ``job attach``."""
    now = time.time() if now is None else now
    return [job.id for job in store.unfinished_jobs()
            if not (job.phase == "plan" and now - job.updated_at < FIRST_START_GRACE)
            and not store.locks.controller_alive(job.id)]


def take_over(store: Store, home, options: tuple[str, ...]) -> list[str]:
    """Start a controller for each orphan; the ids it started."""
    started = orphans(store)
    for job_id in started:
        job = store.job(job_id)
        store.record(job_id, job.phase if job else "plan", "taken-over",
                     by=f"pid {os.getpid()} on {socket.gethostname()}")
        spawn_controller(home, job_id, options)
    return started


async def keep_taking_over(open_store: Callable[[], ContextManager[Store]], home, options: tuple[str, ...],
                           interval: float = INTERVAL) -> None:
    def look() -> list[str]:
        with open_store() as store:
            return take_over(store, home, options)

    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(look)
        except HomeUnusable as exc:  # the store did not answer: look again next time, never stop looking
            log.warning("taking over unfinished jobs paused: %s", exc.message)
