"""The dashboard's sign-in sessions, kept in the store so that signing out ends them.

A browser signs in with a token once; it then holds only a random session id
(the store keeps its sha256), never the token. A session acts for its token
while the token acts (not revoked, not expired, its user still a member), for
at most ``LIFETIME`` seconds, and ends at sign-out. Each session's forms carry a
CSRF value derived from its id, which another site cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from squall.store import Store
from squall.tokens import Principal, acting

LIFETIME = 12 * 3600


def open_session(store: Store, who: Principal) -> str:
    """A new session for ``who``'s token; its id, for the browser's cookie only."""
    session_id, now = secrets.token_urlsafe(32), time.time()
    ends = min(now + LIFETIME, who.expires_at or now + LIFETIME)
    with store.transaction() as db:
        db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        db.execute("INSERT INTO sessions (id_sha256, token_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                   (_digest(session_id), who.token_id, now, ends))
    return session_id


def session_principal(store: Store, session_id: str) -> Principal | None:
    """Who the session acts for now; None once it ended, expired or its token no longer acts."""
    if not session_id:
        return None
    rows = store.rows("SELECT token_id FROM sessions WHERE id_sha256 = ? AND expires_at > ?",
                      (_digest(session_id), time.time()))
    return acting(store, rows[0][0]) if rows else None


def end_session(store: Store, session_id: str) -> None:
    with store.transaction() as db:
        db.execute("DELETE FROM sessions WHERE id_sha256 = ?", (_digest(session_id),))


def csrf_value(session_id: str) -> str:
    """The value the session's forms carry; reveals nothing of the session id."""
    return hashlib.sha256(f"csrf:{session_id}".encode()).hexdigest()


def csrf_matches(session_id: str, sent: str) -> bool:
    return bool(session_id) and hmac.compare_digest(csrf_value(session_id), sent or "")


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()
