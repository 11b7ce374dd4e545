"""Live events as server-sent events: every journal entry of a job — each lifecycle transition, each task's
state, the cost once settled — as it is written; one stream per job (``/jobs/{id}/events``) and one per
organisation (``/events``).

An event's id is the journal's sequence number, so a client that reconnects
with ``Last-Event-ID`` (or ``?after=``) misses nothing: what was written
meanwhile is read back first. One reader (``EventHub``) follows the journal
for the whole server and hands each new entry to the streams that want it, so
the store is read once per interval whatever the number of clients.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, AsyncIterator, Callable, ContextManager

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from squall.errors import HomeUnusable, InvalidInput
from squall.server.auth import principal
from squall.server.envelope import ERRORS
from squall.server.hidden_paths import HiddenPaths
from squall.server.jobs import job_of
from squall.store import Store, where
from squall.tokens import Principal

OpenStore = Callable[[], ContextManager[Store]]  # the app's: this thread's store

INTERVAL = 0.25  # seconds between reads of the journal
RETRY_AFTER = 2.0  # seconds before reading again a store that did not answer
log = logging.getLogger("squall.server.events")
KEEPALIVE = 15.0  # seconds of silence before a comment line keeps proxies from closing the stream
ENDS = {("down", "kept")}  # a job whose outputs wait for ``attach``; phase ``done`` ends every other

router = APIRouter(prefix="/api/v1", tags=["events"], responses=ERRORS)
SSE = {200: {"content": {"text/event-stream": {}}, "description": "server-sent events; id = journal sequence"}}


@dataclass(frozen=True)
class Event:
    seq: int
    at: float
    job: str
    org: str
    user: str
    phase: str
    event: str
    detail: dict

    @cached_property
    def sse(self) -> str:
        """The event as a server-sent event, written once for every stream that sends it."""
        data = {"job": self.job, "phase": self.phase, "event": self.event, "at": self.at, "detail": self.detail}
        return f"id: {self.seq}\nevent: {self.phase}.{self.event}\ndata: {json.dumps(data, default=str)}\n\n"

    @property
    def ends_job(self) -> bool:
        return self.phase == "done" or (self.phase, self.event) in ENDS


PAGE = 1000  # journal entries read at once; a backlog is read page after page until caught up
MAX_SEQ = 1 << 62  # larger ``after`` / ``Last-Event-ID`` values are refused (the store's integers overflow)


def read_after(open_store: OpenStore, hidden: HiddenPaths, after: int, job_id: str | None = None,
               org: str | None = None, user: str | None = None, limit: int = PAGE) -> list[Event]:
    """Journal entries of jobs after ``after``, oldest first (the calling thread's store), without the server's
    paths; ``user``: only that user's jobs."""
    clauses, values = where(("j.seq > ?", after), ("j.job_id = ?", job_id), ("jobs.org = ?", org),
                            ("jobs.\"user\" = ?", user))
    with open_store() as store:
        rows = store.rows("SELECT j.seq, j.ts, j.job_id, jobs.org, jobs.\"user\", j.phase, j.event, j.detail "
                          f"FROM journal j JOIN jobs ON jobs.id = j.job_id WHERE {clauses} ORDER BY j.seq LIMIT ?",
                          (*values, limit))
    return [Event(*row[:7], hidden.hide(json.loads(row[7]))) for row in rows]


def last_seq(open_store: OpenStore) -> int:
    with open_store() as store:
        return store.rows("SELECT COALESCE(MAX(seq), 0) FROM journal")[0][0]


class EventHub:
    """Follows the journal once for every stream of this server."""

    def __init__(self, open_store: OpenStore, hidden: HiddenPaths):
        self.open_store, self.hidden = open_store, hidden
        self.cursor = last_seq(open_store)
        self.streams: set[tuple[asyncio.Queue, Callable[[Event], bool]]] = set()

    async def follow(self) -> None:
        """For the server's life: a store that does not answer for a while pauses the streams, never ends
        them."""
        while True:
            await asyncio.sleep(INTERVAL)
            try:
                await self._follow_once()
            except HomeUnusable as exc:
                log.warning("event streams paused: %s", exc.message)
                await asyncio.sleep(RETRY_AFTER)

    async def _follow_once(self) -> None:
        if not self.streams:
            self.cursor = await asyncio.to_thread(last_seq, self.open_store)
            return
        events = await asyncio.to_thread(read_after, self.open_store, self.hidden, self.cursor)
        for event in events:
            for queue, wanted in list(self.streams):
                if wanted(event):
                    queue.put_nowait(event)
        if events:
            self.cursor = events[-1].seq

    def subscribe(self, wanted: Callable[[Event], bool]) -> tuple[asyncio.Queue, Callable[[Event], bool]]:
        entry = (asyncio.Queue(), wanted)
        self.streams.add(entry)
        return entry

    def unsubscribe(self, entry) -> None:
        self.streams.discard(entry)


def _after(request: Request, after: int | None) -> int:
    given = request.headers.get("last-event-id")
    if given is not None and given.strip():
        if not given.strip().isdigit() or int(given) > MAX_SEQ:
            raise InvalidInput(f"Last-Event-ID: {given[:40]!r} is not an event id (0..{MAX_SEQ})")
        return int(given)
    return after or 0


async def _stream(request: Request, after: int, wanted: Callable[[Event], bool], backlog: Callable[[int], list],
                  job_id: str | None, ended: Callable[[int], bool] = lambda after: False) -> AsyncIterator[str]:
    """``backlog(after)``: one page of what was written after ``after``, read until caught up; ``ended(after)``:
    the job's stream has nothing more to send (it ended at or before ``after``)."""
    hub: EventHub = request.app.state.events
    if await asyncio.to_thread(ended, after):
        return
    entry = hub.subscribe(wanted)  # before the backlog is read: nothing falls between the two
    try:
        while True:
            page = await asyncio.to_thread(backlog, after)
            for event in page:
                yield event.sse
                after = event.seq
                if job_id and event.ends_job:
                    return
            if len(page) < PAGE:
                break
        queue = entry[0]
        while not await request.is_disconnected():
            try:
                first = await asyncio.wait_for(queue.get(), KEEPALIVE)
            except asyncio.TimeoutError:
                yield ": keepalive\n\n"
                continue
            batch = [first] + [queue.get_nowait() for _ in range(queue.qsize())]  # one write per wake-up
            fresh = [event for event in batch if event.seq > after]
            ending = next((i for i, event in enumerate(fresh) if job_id and event.ends_job), None)
            fresh = fresh if ending is None else fresh[:ending + 1]
            if fresh:
                yield "".join(event.sse for event in fresh)
                after = fresh[-1].seq
            if ending is not None:
                return
    finally:
        hub.unsubscribe(entry)


@router.get("/jobs/{job_id}/events", response_class=StreamingResponse, responses=SSE,
            summary="A job's events as they happen (server-sent events); ends when the job does")
async def job_events(request: Request, job_id: str, after: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
                     who: Principal = Depends(principal)):
    with request.app.state.open_store() as store:
        job_of(store, who, job_id)
    open_store, hidden = request.app.state.open_store, request.app.state.hidden_paths

    def ended(seq: int) -> bool:
        """The client has the entry that ends the job's stream already (resumed at or after ``done``)."""
        with open_store() as store:
            rows = store.rows("SELECT phase, event FROM journal WHERE job_id = ? AND seq <= ?", (job_id, seq))
        return any(phase == "done" or (phase, event) in ENDS for phase, event in rows)

    return StreamingResponse(_stream(request, _after(request, after), lambda e: e.job == job_id,
                                     lambda seq: read_after(open_store, hidden, seq, job_id=job_id), job_id,
                                     ended),
                             media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get("/events", response_class=StreamingResponse, responses=SSE,
            summary="Every event of the organisation's jobs (a partner token: its own jobs') as they happen")
async def org_events(request: Request, after: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
                     who: Principal = Depends(principal)):
    open_store, hidden = request.app.state.open_store, request.app.state.hidden_paths

    def wanted(event: Event) -> bool:
        return event.org == who.org and (who.role != "partner" or event.user == who.user)

    def backlog(seq: int) -> list[Event]:
        return read_after(open_store, hidden, seq, org=who.org, user=who.user if who.role == "partner" else None)

    return StreamingResponse(_stream(request, _after(request, after), wanted, backlog, None),
                             media_type="text/event-stream", headers={"Cache-Control": "no-store"})
