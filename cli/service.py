"""``squall service set | list``: partner services and their price per job, set by the operator.

A job names a service (``service: {partner: P}``) and pays its registered
price; a spec never carries a price of its own (a submitter would set it).
"""

from __future__ import annotations

import click

from squall.cli.context import App, output_option, pass_app
from squall.cli.tables import print_table


@click.group("service")
def service_group() -> None:
    """Partner services: what a job that names one pays its partner (P_ZOP), besides the resources."""


@service_group.command("set")
@click.argument("partner")
@click.option("--price", required=True, help="Per job, in credits (such as '2.50 credits').")
@output_option
@pass_app
def service_set_cmd(app: App, partner: str, price: str) -> None:
    """Register PARTNER's service at PRICE per job, or change its price (jobs already admitted keep theirs)."""
    from squall.cli.budget import amount_of
    from squall.money.ledger import set_service_price

    with app.store.transaction() as db:
        set_service_price(db, partner, amount_of(price))
    _list(app, [partner])


@service_group.command("list")
@output_option
@pass_app
def service_list_cmd(app: App) -> None:
    """Every registered service and its price per job."""
    _list(app, None)


def _list(app: App, only: list[str] | None) -> None:
    from squall.money.ledger import service_prices

    services = [(p, price) for p, price in service_prices(app.reader.rows) if only is None or p in only]
    if app.json:
        app.emit([{"partner": p, "price": price.to_json()} for p, price in services])
    elif not services:
        app.say("no services ('squall service set PARTNER --price \"2 credits\"' registers one)")
    else:
        print_table(app, ["PARTNER", "PRICE PER JOB"], [[p, f"{price.amount} {price.currency}"] for p, price in services])
