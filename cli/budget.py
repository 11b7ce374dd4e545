"""``squall budget show | set | topup``: money budgets per organisation (org:ORG) and project (project:ORG/P)."""

from __future__ import annotations

import click

from squall.cli.context import App, output_option, pass_app
from squall.cli.tables import print_table


@click.group("budget")
def budget_group() -> None:
    """Budgets: a job's maximum cost is held at submission, settled from what it used at the end."""


def _show(app: App, states: list[dict]) -> None:
    """Budgets as ``BudgetState.to_dict`` gives them (or the server answers them)."""
    if app.json:
        app.emit(states)
        return
    if not states:
        app.say("no budgets ('squall budget set org:ORG \"100 EUR\"' makes one)")
        return

    def money(value: dict) -> str:
        return f"{value['amount']} {value['currency']}" if value["currency"] else "free"

    print_table(app, ["BUDGET", "TOTAL", "SETTLED", "HELD", "AVAILABLE"],
                [[s["scope"], *(money(s[k]) for k in ("budget", "settled", "held", "available"))] for s in states])


def amount_of(text: str):
    from squall.errors import InvalidInput
    from squall.money.amounts import Money

    try:
        return Money.parse(text)
    except ValueError as exc:
        raise InvalidInput(f"amount: {exc}") from None


@budget_group.command("show")
@click.argument("scope", required=False)
@output_option
@pass_app
def show_cmd(app: App, scope: str | None) -> None:
    """Every budget (or SCOPE's): total, settled, held by running jobs, available."""
    from squall.errors import NotFound
    from squall.money.ledger import budget_state, check_scope

    if app.api:  # the token's organisation's budgets
        found = [s for s in app.api.call("GET", "/budgets") if scope is None or s["scope"] == check_scope(scope)]
    else:
        store = app.reader
        scopes = [check_scope(scope)] if scope else [row[0] for row in
                                                     store.rows("SELECT scope FROM budgets ORDER BY scope")]
        found = [state.to_dict() for state in (budget_state(store.rows, s) for s in scopes) if state is not None]
    if scope and not found:
        raise NotFound(f"no budget {scope!r}", hint=f"squall budget set {scope} AMOUNT")
    _show(app, found)


@budget_group.command("set")
@click.argument("scope")
@click.argument("amount")
@output_option
@pass_app
def set_cmd(app: App, scope: str, amount: str) -> None:
    """Make SCOPE's budget AMOUNT in all (such as "500 EUR" or "80 credits"); not below what is spent and held."""
    _change(app, scope, amount, add=False)


@budget_group.command("topup")
@click.argument("scope")
@click.argument("amount")
@output_option
@pass_app
def topup_cmd(app: App, scope: str, amount: str) -> None:
    """Add AMOUNT to SCOPE's budget (a negative AMOUNT takes back what is not spent or held)."""
    _change(app, scope, amount, add=True)


def _change(app: App, scope: str, amount: str, add: bool) -> None:
    from squall.money.ledger import set_budget

    with app.store.transaction() as db:
        state = set_budget(db, scope, amount_of(amount), add=add)
    _show(app, [state.to_dict()])
