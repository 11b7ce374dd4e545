"""Options and output shared by ``job run`` and ``job estimate``: strategy, weights, the estimate table."""

from __future__ import annotations

import click

from squall.cli.context import App
from squall.cli.tables import print_table
from squall.placement import STRATEGIES

strategy_option = click.option(
    "--strategy", type=click.Choice(STRATEGIES), default="balanced", show_default=True,
    help="How 'auto' chooses a site: fastest, cheapest, greenest, or balanced (see --weights).")


def _weights(_ctx: click.Context, param: click.Parameter, value: str | None):
    from squall.placement import parse_weights

    try:
        return parse_weights(value or "")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


weights_option = click.option(
    "--weights", callback=_weights, metavar="time=1,cost=1,carbon=1",
    help="Weights of the balanced strategy (each value is divided by the largest among the sites).")


def estimate_rows(rows: list[dict]) -> list[list[object]]:
    def cost(row: dict, which: str) -> str:
        if row["cost"] == "unpriced":
            return "unpriced"
        shown = row["cost"][which]
        return "free" if shown["currency"] is None else f"{shown['amount']} {shown['currency']}"

    table = []
    for row in rows:
        if not row["eligible"]:
            table.append([row["site"], "no: " + row["reason"], "", "", "", "", ""])
            continue
        run = row["run_time_s"]
        table.append([row["site"] + (f" ({row['partition']})" if row["partition"] else ""),
                      "yes" + (" *" if row.get("chosen") else ""), f"{row['queue_wait_s']} s",
                      f"{run['likely']} s / {run['bound']} s", f"{cost(row, 'likely')} / {cost(row, 'max')}",
                      row["energy_kwh"], row["emissions_gco2e"]])
    return table


def print_estimates(app: App, rows: list[dict]) -> None:
    print_table(app, ["SITE", "ELIGIBLE", "START IN", "RUN likely / bound", "COST likely / max", "kWh", "gCO2e"],
                estimate_rows(rows))
