"""API tokens for the server: each names a user, an organisation and a role, and a partner token also the
application it submits for.

A token is ``sq_<id>_<secret>``: the id finds its row, the secret is checked
against the sha256 kept in the store (never the token itself), in constant
time. It is shown once, when created. Secrets are 32 random bytes, so a plain
sha256 is enough (no password stretching: nothing to guess).

Every token expires (90 days unless asked, a year at most). Membership is
checked each time a token is used, not only at submission: once an
organisation has members, a token acts only for one of them, and never with
more than their membership's role; removing a member revokes their tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, replace

from squall.errors import InvalidInput, NotFound
from squall.slugs import SLUG
from squall.store import Store, where

ROLES = ("admin", "member", "partner")  # most powerful first
DAY = 86400
DEFAULT_EXPIRY, LONGEST_EXPIRY = "90d", 365 * DAY
MALFORMED = "malformed"
EXPIRY = re.compile(r"^([1-9][0-9]{0,3})([hd])$")
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
    expires_at: float | None = None

    def can(self, *roles: str) -> bool:
        return self.role in roles


def lifetime(text: str) -> int:
    """Seconds from ``--expires`` (``12h``, ``30d``); at most a year."""
    found = EXPIRY.fullmatch(text.strip())
    seconds = int(found.group(1)) * (3600 if found.group(2) == "h" else DAY) if found else 0
    if not found or seconds > LONGEST_EXPIRY:
        raise InvalidInput(f"--expires {text!r}: hours or days such as 12h or 30d, at most 365d")
    return seconds


def create(store: Store, user: str, org: str, role: str, application: str | None = None,
           expires: str = DEFAULT_EXPIRY) -> tuple[str, Principal]:
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
    now = time.time()
    expires_at = now + lifetime(expires)
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    with store.transaction() as db:
        db.execute("INSERT INTO tokens (id, secret_sha256, \"user\", org, role, application, created_at, expires_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (token_id, _digest(secret), user, org, role, application,
                                                        now, expires_at))
    return f"sq_{token_id}_{secret}", Principal(token_id, user, org, role, application, expires_at)


def verify(store: Store, token: str) -> Principal | None:
    """Who ``token`` acts for now; None if it is malformed, unknown or wrong, or no longer acts (see
    ``acting``)."""
    found = TOKEN.fullmatch(token or "")
    if not found:
        return None
    rows = store.rows("SELECT secret_sha256 FROM tokens WHERE id = ?", (found.group(1),))
    if not rows or not hmac.compare_digest(rows[0][0], _digest(found.group(2))):
        return None
    return acting(store, found.group(1))


def acting(store: Store, token_id: str) -> Principal | None:
    """Who the token ``token_id`` acts for now; None if it is revoked or expired, or if its organisation has
    members and its user is not one of them."""
    rows = store.rows("SELECT \"user\", org, role, application, expires_at FROM tokens "
                       "WHERE id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
                       (token_id, time.time()))
    if not rows:
        return None
    who = Principal(token_id, *rows[0])
    members = dict(store.rows("SELECT \"user\", role FROM members WHERE org = ?", (who.org,)))
    if not members:
        return who  # an open organisation: every user is at home
    if who.user not in members:
        return None
    weakest = max(ROLES.index(who.role), ROLES.index(members[who.user]))
    return replace(who, role=ROLES[weakest])


def token_id_of(token: str) -> str:
    """The id part of what a client sent as a token (``malformed`` if it has none): failed sign-ins are
    counted per id, so a client's failures with one token never lock out its other tokens."""
    found = TOKEN.fullmatch(token or "")
    return found.group(1) if found else MALFORMED


KEYS = ("id", "user", "org", "role", "application", "created_at", "expires_at", "revoked_at")


def listing(store: Store, org: str | None = None, user: str | None = None) -> list[dict]:
    """Tokens (never their secrets), oldest first: every one, or an organisation's, or one user's there."""
    clauses, values = where(("org = ?", org), ("\"user\" = ?", user))
    rows = store.rows("SELECT id, \"user\", org, role, application, created_at, expires_at, revoked_at FROM tokens "
                      f"WHERE {clauses} ORDER BY created_at, id", values)
    return [dict(zip(KEYS, row)) for row in rows]


def revoke(store: Store, token_id: str, org: str | None = None, user: str | None = None) -> None:
    """Revoke one token at once (within ``org``, or that ``user``'s, when given)."""
    clauses, values = where(("id = ?", token_id), ("org = ?", org), ("\"user\" = ?", user))
    with store.transaction() as db:
        if db.execute(f"UPDATE tokens SET revoked_at = ? WHERE {clauses} AND revoked_at IS NULL",
                      (time.time(), *values)).rowcount == 0:
            raise NotFound(f"token {token_id!r}: no such token, or revoked already")


def revoke_member(db, org: str, user: str) -> int:
    """Inside a transaction: revoke every token of ``user`` in ``org``; how many there were."""
    return db.execute("UPDATE tokens SET revoked_at = ? WHERE org = ? AND \"user\" = ? AND revoked_at IS NULL",
                      (time.time(), org, user)).rowcount


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
