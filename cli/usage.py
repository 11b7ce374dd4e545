"""``squall usage``: one record per finished job — outcome, resources, estimated and actual cost, energy."""

from __future__ import annotations

import click

from squall.cli.context import App, output_option, pass_app
from squall.cli.tables import print_table

CSV_FIELDS = ["job", "name", "outcome", "org", "project", "user", "site", "started_at", "ended_at", "duration_s",
              "tasks", "task_seconds", "bytes_staged", "cost_estimated_max", "cost_actual", "currency", "energy_kwh",
              "emissions_gco2e", "intensity_source"]


def _since(_ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from datetime import datetime, timezone

    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date or an RFC 3339 time", param=param) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _flat(record: dict) -> dict:
    from squall.instants import rfc3339

    cost = record["cost"]
    actual = cost["actual"] if isinstance(cost["actual"], dict) else {"amount": "unpriced", "currency": None}
    estimated = cost.get("estimated_max") or {}
    return {**{k: record[k] for k in ("job", "name", "outcome", "org", "project", "user", "site", "duration_s",
                                      "energy_kwh", "emissions_gco2e", "intensity_source")},
            "started_at": rfc3339(record["started_at"]), "ended_at": rfc3339(record["ended_at"]),
            "tasks": record["resources"]["tasks"], "task_seconds": record["resources"]["task_seconds"],
            "bytes_staged": record["resources"]["bytes_staged"], "cost_estimated_max": estimated.get("amount"),
            "cost_actual": actual["amount"], "currency": actual["currency"] or estimated.get("currency")}


@click.command("usage")
@click.option("--since", callback=_since, metavar="DATE", help="Only jobs that ended at or after DATE (RFC 3339).")
@click.option("--org", help="Only this organisation's jobs.")
@click.option("--project", help="Only this project's jobs.")
@output_option
@pass_app
def usage_cmd(app: App, since: float | None, org: str | None, project: str | None) -> None:
    """Usage records, oldest first: one per finished job (succeeded, failed, cancelled, timeout or
    teardown-failed), with what it cost and its energy and emissions."""
    import csv
    import json
    import sys

    from squall.store import where

    if app.api:  # the token's organisation's records
        asked = {k: v for k, v in (("since", since), ("project", project)) if v is not None}
        records = [r for r in app.api.call("GET", "/usage", params=asked) if org is None or r["org"] == org]
    else:
        clauses, values = where(("ended_at >= ?", since), ("org = ?", org), ("project = ?", project))
        records = [json.loads(row[0]) for row in
                   app.reader.rows(f"SELECT record FROM usage WHERE {clauses} ORDER BY ended_at, job_id", values)]
    if app.json:
        app.emit(records)
    elif app.output == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_flat(r) for r in records)
    elif not records:
        app.say("no usage records match" if (since, org, project) != (None, None, None) else "no usage records yet")
    else:
        rows = [_flat(r) for r in records]
        print_table(app, ["JOB", "OUTCOME", "PROJECT", "SITE", "ENDED", "COST", "kWh", "gCO2e"],
                    [[r["job"], r["outcome"], f"{r['org']}/{r['project']}", r["site"], r["ended_at"],
                      f"{r['cost_actual']} {r['currency'] or ''}".strip(), r["energy_kwh"], r["emissions_gco2e"]]
                     for r in rows])
