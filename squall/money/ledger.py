"""Budgets, holds and settlement, in the store, with one invariant: for every budget, at every moment,

    settled + open holds ≤ budget.

A job's maximum cost is held on its organisation's and its project's budgets in
the very transaction that creates the job (``BEGIN IMMEDIATE``: one writer at a
time), so concurrent submitters can never share out more than there is, and a
refused job leaves nothing. At the end the job is settled from what it used
(never above its hold) and the rest is released; settling again changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from squall.database import Connection
from squall.errors import InvalidInput, Refused
from squall.money.amounts import ANY, CURRENCY, Money
from squall.slugs import SLUG


@dataclass(frozen=True)
class BudgetState:
    scope: str
    budget: Money
    settled: Money
    held: Money  # open holds

    @property
    def available(self) -> Money:
        return self.budget - self.settled - self.held

    def to_dict(self) -> dict:
        return {"scope": self.scope, "budget": self.budget.to_json(), "settled": self.settled.to_json(),
                "held": self.held.to_json(), "available": self.available.to_json()}


def cents(money: Money) -> int:
    """Whole cents (rounded half up, as shown): what holds count in."""
    return int(money.rounded().amount * 100)


def scopes(org: str, project: str) -> list[str]:
    return [f"org:{org}", f"project:{org}/{project}"]


SCOPE_FORMS = {"org": "org:ORG", "project": "project:ORG/PROJECT", "user": "user:ORG/USER"}


def check_scope(scope: str, what: str = "budget", kinds: tuple[str, ...] = ("org", "project")) -> str:
    """``scope`` if it is one of ``kinds`` (``org:ORG``, ``project:ORG/P``, ``user:ORG/U``); else ``InvalidInput``."""
    kind, _, name = scope.partition(":")
    parts = name.split("/")
    if kind in kinds and len(parts) == (1 if kind == "org" else 2) and all(SLUG.fullmatch(p) for p in parts):
        return scope
    raise InvalidInput(f"{what} {scope!r}: a {what} is {' or '.join(SCOPE_FORMS[k] for k in kinds)}")


Query = Callable[[str, tuple], list]  # a transaction's ``lambda sql, p: db.execute(sql, p).fetchall()``, or Store.rows


def budget_state(query: Query, scope: str) -> BudgetState | None:
    found = query("SELECT currency, amount FROM budgets WHERE scope = ?", (scope,))
    if not found:
        return None
    currency, total = found[0]
    ((settled, held),) = query("SELECT COALESCE(SUM(settled_cents), 0), COALESCE(SUM(CASE WHEN settled_cents IS "
                               "NULL THEN held_cents END), 0) FROM holds WHERE scope = ?", (scope,))
    return BudgetState(scope, Money(Decimal(total), currency), Money(Decimal(settled) / 100, currency),
                       Money(Decimal(held) / 100, currency))


def in_transaction(db: Connection) -> Query:
    return lambda sql, params: db.execute(sql, params).fetchall()


def take_holds(db: Connection, job_id: str, org: str, project: str, site: str,
               cost_max: Money | None) -> list[tuple[str, Money]]:
    """Hold ``cost_max`` on every budget over the job (inside the job's creating transaction); ``Refused``
    naming the budget, what is left and what was asked when one cannot take it."""
    taken = []
    for scope in scopes(org, project):
        state = budget_state(in_transaction(db), scope)
        if state is None:
            continue
        if cost_max is None:
            raise Refused(f"budget {scope}: site {site!r} is unpriced, so no hold can be taken for this job",
                          hint="give the site squall_pricing, or run elsewhere")
        if cost_max.currency not in (ANY, state.budget.currency):
            raise Refused(f"budget {scope} is in {state.budget.currency}; site {site!r} prices in "
                          f"{cost_max.currency}", hint="run where the budget's currency is used")
        asked = Money(cost_max.rounded().amount, state.budget.currency)
        if state.available < asked:
            raise Refused(f"budget {scope}: {state.available} left of {state.budget} "
                          f"({state.settled} settled, {state.held} held); this job may cost up to {asked}",
                          hint=f"'squall budget topup {scope} AMOUNT', or ask for less (walltime, tasks)")
        db.execute("INSERT INTO holds (job_id, scope, currency, held_cents, created_at) VALUES (?, ?, ?, ?, ?)",
                   (job_id, scope, state.budget.currency, cents(asked), time.time()))
        taken.append((scope, asked))
    return taken


def settle(db: Connection, job_id: str, cost: Money) -> bool:
    """Charge ``cost`` (capped at each hold) and release the rest; False when already settled."""
    rows = db.execute("SELECT id, held_cents FROM holds WHERE job_id = ? AND settled_cents IS NULL",
                      (job_id,)).fetchall()
    for hold_id, held in rows:
        db.execute("UPDATE holds SET settled_cents = ?, settled_at = ? WHERE id = ? AND settled_cents IS NULL",
                   (min(held, cents(cost)), time.time(), hold_id))
    return bool(rows)


def set_budget(db: Connection, scope: str, amount: Money, add: bool = False) -> BudgetState:
    """``budget set`` (or ``topup`` with ``add``): never below what is already settled and held."""
    check_scope(scope)
    if amount.currency == ANY or not CURRENCY.fullmatch(amount.currency):
        raise InvalidInput(f"amount: {amount} needs a currency, such as '100 EUR' or '50 credits'")
    current = budget_state(in_transaction(db), scope)
    if current is not None and current.budget.currency != amount.currency:
        raise InvalidInput(f"budget {scope} is in {current.budget.currency}, not {amount.currency}")
    total = (current.budget + amount) if (add and current) else amount
    if total.amount < 0:
        raise InvalidInput(f"amount: budget {scope} cannot go below 0")
    if current is not None and total.amount < (current.settled + current.held).amount:
        raise Refused(f"budget {scope}: {total} is less than the {current.settled} settled and {current.held} held")
    db.execute("INSERT INTO budgets (scope, currency, amount, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(scope) "
               "DO UPDATE SET amount = excluded.amount, updated_at = excluded.updated_at",
               (scope, amount.currency, str(total.amount), time.time()))
    state = budget_state(in_transaction(db), scope)
    assert state is not None
    return state


def set_service_price(db: Connection, partner: str, price: Money) -> None:
    """Register partner ``partner``'s service at ``price`` per job (or change its price)."""
    if not SLUG.fullmatch(partner):
        raise InvalidInput(f"partner: {partner!r} is not a valid name")
    if price.currency != "credits" or price.amount < 0:
        raise InvalidInput(f"--price: {price} is not a price in credits, such as '2.50 credits'",
                           hint="services are priced in credits")
    db.execute("INSERT INTO services (partner, currency, amount, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(partner) "
               "DO UPDATE SET currency = excluded.currency, amount = excluded.amount, updated_at = excluded.updated_at",
               (partner, price.currency, str(price.amount), time.time()))


def service_price(query: Query, partner: str) -> Money:
    """The registered price of ``partner``'s service; ``Refused`` when it is not registered."""
    rows = query("SELECT amount, currency FROM services WHERE partner = ?", (partner,))
    if not rows:
        raise Refused(f"service.partner: {partner!r} is not a registered service",
                      hint="an operator registers it with its price: squall service set PARTNER --price '2 credits'")
    return Money(Decimal(rows[0][0]), rows[0][1])


def service_prices(query: Query) -> list[tuple[str, Money]]:
    rows = query("SELECT partner, amount, currency FROM services ORDER BY partner", ())
    return [(partner, Money(Decimal(amount), currency)) for partner, amount, currency in rows]
