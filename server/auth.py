"""Who a request acts for: ``Authorization: Bearer <token>`` (or the dashboard's cookie, for reading) checked
against the store's tokens.

A failed sign-in is logged with the client's address and never the token;
after ``FAILURES`` of them within ``WINDOW`` seconds a client is answered 429
until the window has passed (per client address, in this server process).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque

from fastapi import Depends, HTTPException, Request

from squall.tokens import Principal, verify

FAILURES, WINDOW = 10, 60.0
COOKIE = "squall_token"  # the dashboard's sign-in (HttpOnly, SameSite=Strict), honoured for GET and HEAD only
log = logging.getLogger("squall.server.auth")


class FailedSignIns:
    def __init__(self) -> None:
        self._times: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._times[client]
        while times and now - times[0] > WINDOW:
            times.popleft()
        return times

    def blocked_for(self, client: str) -> float:
        """Seconds this client must wait (0: it may try)."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            return WINDOW - (now - times[0]) if len(times) >= FAILURES else 0.0

    def note(self, client: str) -> None:
        with self._lock:
            self._recent(client, time.monotonic()).append(time.monotonic())


def principal(request: Request) -> Principal:
    client = request.client.host if request.client else "unknown"
    failed: FailedSignIns = request.app.state.failed_sign_ins
    wait = failed.blocked_for(client)
    if wait:
        raise HTTPException(429, f"too many failed sign-ins from {client}; try again in {wait:.0f} s",
                            headers={"Retry-After": str(int(wait) + 1)})
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not token and request.method in ("GET", "HEAD") and request.cookies.get(COOKIE):
        scheme, token = "bearer", request.cookies[COOKIE]  # the dashboard's sign-in: for reading only
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "a token is required: Authorization: Bearer <token>",
                            headers={"WWW-Authenticate": "Bearer"})
    with request.app.state.open_store() as store:
        found = verify(store, token.strip())
    if found is None:
        failed.note(client)
        log.warning("failed sign-in from %s to %s %s", client, request.method, request.url.path)
        raise HTTPException(401, "the token is not valid (unknown, revoked or mistyped)",
                            headers={"WWW-Authenticate": "Bearer"})
    return found


def role(*allowed: str):
    """A dependency: the request's principal, refused (403) unless its role is one of ``allowed``."""

    def check(who: Principal = Depends(principal)) -> Principal:
        if not who.can(*allowed):
            raise HTTPException(403, f"a {who.role} token may not do this (needs: {', '.join(allowed)})")
        return who

    return check
