"""API tokens for the server: each names a user, an organisation and a role, and a partner token also the
application it submits for.

A token is ``sq_<id>_<secret>``: the id finds its row, the secret is checked
against the sha256 kept in the store (never the token itself), in constant
time. It is shown once, when created. Secrets are 32 random bytes, so a plain
sha256 is enough (no password stretching: nothing to guess).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from squall.errors import InvalidInput, NotFound
from squall.slugs import SLUG
from squall.store import Store

ROLES = ("admin", "member", "partner")
TOKEN = re.compile(r"^sq_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
USER = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


@dataclass(frozen=True)
class Principal:
    """Who a request acts for."""

    token_id: str
    user: str
    org: str
    role: str
    application: str | None

    def can(self, *roles: str) -> bool:
        return self.role in roles


def create(store: Store, user: str, org: str, role: str, application: str | None = None) -> tuple[str, Principal]:
    """A new token (the only time it is seen) and who it acts for."""
    if not USER.fullmatch(user):
        raise InvalidInput(f"--user {user!r}: letters, digits and . _ @ - (at most 64)")
    if not SLUG.fullmatch(org):
        raise InvalidInput(f"--org {org!r}: lower-case letters, digits and '-'")
    if role not in ROLES:
        raise InvalidInput(f"--role {role!r}: one of {', '.join(ROLES)}")
    if (role == "partner") != bool(application):
        raise InvalidInput("--application: a partner token names the application it submits for, and only it")
    if application and not SLUG.fullmatch(application):
        raise InvalidInput(f"--application {application!r}: lower-case letters, digits and '-'")
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    with store.transaction() as db:
        db.execute("INSERT INTO tokens (id, secret_sha256, \"user\", org, role, application, created_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", (token_id, _digest(secret), user, org, role, application,
                                                     time.time()))
    return f"sq_{token_id}_{secret}", Principal(token_id, user, org, role, application)


def verify(store: Store, token: str) -> Principal | None:
    """Who ``token`` acts for; None if it is malformed, unknown, revoked or wrong."""
    found = TOKEN.fullmatch(token or "")
    if not found:
        return None
    rows = store.rows("SELECT secret_sha256, \"user\", org, role, application FROM tokens "
                       "WHERE id = ? AND revoked_at IS NULL", (found.group(1),))
    if not rows or not hmac.compare_digest(rows[0][0], _digest(found.group(2))):
        return None
    return Principal(found.group(1), *rows[0][1:])


def listing(store: Store) -> list[dict]:
    rows = store.rows("SELECT id, \"user\", org, role, application, created_at, revoked_at FROM tokens "
                       "ORDER BY created_at")
    keys = ("id", "user", "org", "role", "application", "created_at", "revoked_at")
    return [dict(zip(keys, row)) for row in rows]


def revoke(store: Store, token_id: str) -> None:
    with store.transaction() as db:
        if db.execute("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                      (time.time(), token_id)).rowcount == 0:
            raise NotFound(f"token {token_id!r}: no such token, or revoked already")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
