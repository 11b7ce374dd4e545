"""``/api/v1/me``, ``/tokens``, ``/usage``, ``/budgets``, ``/sites``: who the token is, the tokens it may see and
revoke, what its organisation spent and may spend, and the sites (admins only)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from squall.errors import NotFound
from squall.server.auth import principal, role
from squall.server.envelope import ERRORS, Envelope, ok
from squall.store import where
from squall.tokens import Principal, listing, revoke

router = APIRouter(prefix="/api/v1", responses=ERRORS)


class Me(BaseModel):
    user: str
    org: str
    role: str
    application: str | None


class TokenOut(BaseModel):
    id: str
    user: str
    org: str
    role: str
    application: str | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None


class MoneyOut(BaseModel):
    amount: str
    currency: str | None  # None: any currency (a free site)


class BudgetOut(BaseModel):
    scope: str
    budget: MoneyOut
    settled: MoneyOut
    held: MoneyOut
    available: MoneyOut


class SiteOut(BaseModel):
    name: str
    kind: str


@router.get("/me", tags=["accounts"], response_model=Envelope[Me], summary="Who this token acts for")
def me(who: Principal = Depends(principal)):
    return ok({"user": who.user, "org": who.org, "role": who.role, "application": who.application})


def _whose(who: Principal) -> dict:
    """The tokens a principal may see and revoke: its organisation's for an admin, its own otherwise."""
    return {"org": who.org} if who.can("admin") else {"org": who.org, "user": who.user}


@router.get("/tokens", tags=["accounts"], response_model=Envelope[list[TokenOut]],
            summary="Tokens (never their secrets): the organisation's for an admin, one's own otherwise")
def tokens(request: Request, who: Principal = Depends(principal)):
    with request.app.state.open_store() as store:
        return ok(listing(store, **_whose(who)))


@router.delete("/tokens/{token_id}", tags=["accounts"], response_model=Envelope[TokenOut],
               summary="Revoke a token at once (an admin: any of the organisation's; others: their own)")
def revoke_token(request: Request, token_id: str, who: Principal = Depends(principal)):
    with request.app.state.open_store() as store:
        revoke(store, token_id, **_whose(who))
        return ok(next(t for t in listing(store, **_whose(who)) if t["id"] == token_id))


@router.get("/usage", tags=["money"], response_model=Envelope[list[dict[str, Any]]],
            summary="The organisation's usage records, oldest first (not for partner tokens)")
def usage(request: Request, since: float | None = None, project: str | None = None,
          who: Principal = Depends(role("admin", "member"))):
    clauses, values = where(("org = ?", who.org), ("ended_at >= ?", since), ("project = ?", project))
    with request.app.state.open_store() as store:
        rows = store.rows(f"SELECT record FROM usage WHERE {clauses} ORDER BY ended_at, job_id", values)
    return ok([json.loads(row[0]) for row in rows])


@router.get("/budgets", tags=["money"], response_model=Envelope[list[BudgetOut]],
            summary="The organisation's budget and its projects' (not for partner tokens)")
def budgets(request: Request, who: Principal = Depends(role("admin", "member"))):
    from squall.money.ledger import budget_state

    with request.app.state.open_store() as store:
        scopes = [row[0] for row in store.rows("SELECT scope FROM budgets WHERE scope = ? OR scope LIKE ? "
                                               "ORDER BY scope", (f"org:{who.org}", f"project:{who.org}/%"))]
        states = [budget_state(store.rows, scope) for scope in scopes]
    return ok([state.to_dict() for state in states if state is not None])


@router.get("/sites", tags=["sites"], response_model=Envelope[list[SiteOut]], summary="Sites (admins only)")
def sites(request: Request, who: Principal = Depends(role("admin"))):
    from squall.sites.registration import all_sites

    with request.app.state.open_store() as store:
        kinds = all_sites(store)
    return ok([{"name": name, "kind": kind} for name, kind in sorted(kinds.items())])


@router.get("/sites/{name}", tags=["sites"], response_model=Envelope[SiteOut], summary="One site (admins only)")
def site(request: Request, name: str, who: Principal = Depends(role("admin"))):
    from squall.sites.registration import all_sites

    with request.app.state.open_store() as store:
        kinds = all_sites(store)
    if name not in kinds:
        raise NotFound(f"site {name!r}: no such site")
    return ok({"name": name, "kind": kinds[name]})
