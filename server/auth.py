"""Who a request acts for: ``Authorization: Bearer <token>`` checked against the store's tokens, or (for
reading only: GET and HEAD) the dashboard's session cookie.

A failed sign-in is logged with the client's address and the token's id part,
never the token. After ``FAILURES`` of them with one token id within
``WINDOW`` seconds, that client is answered 429 for that id until the window
has passed (in this server process); a token of no known form is refused and
logged but not counted: a client's other tokens still work, and
no other client is locked out. The client's address is the peer's, or what a
proxy listed in ``squall server --forwarded-allow-ips`` forwards.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from squall.sessions import session_principal
from squall.tokens import MALFORMED, Principal, token_id_of, verify

FAILURES, WINDOW = 10, 60.0
SESSION = "squall_session"  # the dashboard's session id (HttpOnly, SameSite=Strict, Secure behind TLS)
log = logging.getLogger("squall.server.auth")
# declares bearer auth in the OpenAPI document; the checks below are the server's own (auto_error off)
BEARER = HTTPBearer(auto_error=False, description="a token from 'squall token create' (sq_<id>_<secret>)")


class FailedSignIns:
    """Recent failed sign-ins per (client address, token id)."""

    def __init__(self) -> None:
        self._times: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._times[key]
        while times and now - times[0] > WINDOW:
            times.popleft()
        return times

    def blocked_for(self, client: str, token: str) -> float:
        """Seconds this client must wait before trying this token's id again (0: it may try)."""
        now = time.monotonic()
        with self._lock:
            times = self._recent((client, token_id_of(token)), now)
            return WINDOW - (now - times[0]) if len(times) >= FAILURES else 0.0

    def note(self, client: str, token: str) -> None:
        with self._lock:
            self._recent((client, token_id_of(token)), time.monotonic()).append(time.monotonic())


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def refuse_if_locked_out(request: Request, token: str) -> None:
    client = client_of(request)
    wait = request.app.state.failed_sign_ins.blocked_for(client, token)
    if wait:
        raise HTTPException(429, f"too many failed sign-ins from {client} with token {token_id_of(token)}; try "
                                 f"again in {wait:.0f} s", headers={"Retry-After": str(int(wait) + 1)})


def sign_in(request: Request, token: str) -> Principal | None:
    """Who ``token`` acts for, counting and logging a failure; 429 while this client is locked out of it."""
    refuse_if_locked_out(request, token)
    with request.app.state.open_store() as store:
        found = verify(store, token)
    if found is None:
        if token_id_of(token) != MALFORMED:  # a token of no known form guesses no one's secret: not counted
            request.app.state.failed_sign_ins.note(client_of(request), token)
        log.warning("failed sign-in from %s with token %s to %s %s", client_of(request), token_id_of(token),
                    request.method, request.url.path)
    return found


def principal(request: Request, _declared: HTTPAuthorizationCredentials | None = Security(BEARER)) -> Principal:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not token and request.method in ("GET", "HEAD") and request.cookies.get(SESSION):
        with request.app.state.open_store() as store:
            who = session_principal(store, request.cookies[SESSION])
        if who is None:
            raise HTTPException(401, "the dashboard session ended: sign in again")
        return who
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "a token is required: Authorization: Bearer <token>",
                            headers={"WWW-Authenticate": "Bearer"})
    found = sign_in(request, token.strip())
    if found is None:
        raise HTTPException(401, "the token is not valid (unknown, expired, revoked, its user no longer a member, "
                                 "or mistyped)", headers={"WWW-Authenticate": "Bearer"})
    return found


def role(*allowed: str):
    """A dependency: the request's principal, refused (403) unless its role is one of ``allowed``."""

    def check(who: Principal = Depends(principal)) -> Principal:
        if not who.can(*allowed):
            raise HTTPException(403, f"a {who.role} token may not do this (needs: {', '.join(allowed)})")
        return who

    return check
