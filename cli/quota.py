"""``squall quota show | set``: limits per user (user:ORG/USER) and project (project:ORG/P)."""

from __future__ import annotations

import click

from squall.cli.completion import site_names
from squall.cli.context import App, output_option, pass_app
from squall.cli.tables import print_table
from squall.money.quotas import RESOURCES


@click.group("quota")
def quota_group() -> None:
    """Quotas on jobs, machines, CPUs, memory, GPUs and storage: checked and reserved at submission."""


def _scope(scope: str) -> str:
    from squall.money.ledger import check_scope

    return check_scope(scope, "quota", ("user", "project"))


def _site_limits(app: App, name: str):
    """The site's own limits on a job with its defaults (one remote call for a Slurm site)."""
    from squall.sites.registration import open_site

    site = open_site(name, app.home, app.reader)
    try:
        return site.own_limits()
    finally:
        site.close()


@quota_group.command("show")
@click.argument("scope", required=False)
@click.option("--site", "site_name", shell_complete=site_names,
              help="Also show this site's own limits (a Slurm association's GrpTRES): each quota's available "
                   "is then the smaller of its own and the site's.")
@output_option
@pass_app
def show_cmd(app: App, scope: str | None, site_name: str | None) -> None:
    """Each quota: default, limit, used (running jobs), reserved (admitted jobs not running), available."""
    from squall.money.quotas import quota_state

    store = app.reader
    pairs = ([(_scope(scope), r) for r in RESOURCES] if scope else
             [tuple(row) for row in store.rows("SELECT scope, resource FROM quotas ORDER BY scope, resource")])
    limits, source = _site_limits(app, site_name) if site_name else ([], None)
    by_resource = {limit.resource: limit for limit in limits}
    rows = [state.to_dict() for state in (quota_state(store.rows, s, r) for s, r in pairs)]
    for row in rows:
        site_limit = by_resource.get(row["resource"])
        if site_limit is not None:
            row["available"] = min(filter(lambda v: v is not None, (row["available"], site_limit.available)))
    rows += [{"scope": f"site:{site_name}", "resource": limit.resource, "default": None, "limit": limit.limit,
              "used": limit.used, "reserved": None, "available": limit.available, "source": limit.source}
             for limit in limits]
    if app.json:
        app.emit({"quotas": rows, "site": {"name": site_name, "source": source}} if site_name else rows)
        return
    if rows:
        def shown(value):
            return "-" if value is None else value
        print_table(app, ["QUOTA", "RESOURCE", "DEFAULT", "LIMIT", "USED", "RESERVED", "AVAILABLE"],
                    [[r["scope"], r["resource"], "none" if r["scope"].startswith(("user:", "project:")) else "-",
                      shown(r["limit"]), r["used"], shown(r["reserved"]), shown(r["available"])] for r in rows])
    else:
        app.say("no quotas: nothing is limited ('squall quota set user:ORG/USER cpus 64' sets one)")
    if site_name:
        app.say(f"site {site_name}: {source}")


@quota_group.command("set")
@click.argument("scope")
@click.argument("resource", type=click.Choice(RESOURCES))
@click.argument("limit")
@output_option
@pass_app
def set_cmd(app: App, scope: str, resource: str, limit: str) -> None:
    """Limit SCOPE's RESOURCE to LIMIT (a whole number; 'none' removes the limit)."""
    from squall.errors import InvalidInput
    from squall.money.quotas import quota_state

    _scope(scope)
    with app.store.transaction() as db:
        if limit == "none":
            db.execute("DELETE FROM quotas WHERE scope = ? AND resource = ?", (scope, resource))
        elif limit.isdigit():
            db.execute("INSERT INTO quotas (scope, resource, amount) VALUES (?, ?, ?) ON CONFLICT (scope, resource) "
                       "DO UPDATE SET amount = excluded.amount", (scope, resource, int(limit)))
        else:
            raise InvalidInput(f"LIMIT: {limit!r} is not a whole number of 0 or more (or 'none')")
    state = quota_state(app.store.rows, scope, resource)
    if app.json:
        app.emit([state.to_dict()])
    else:
        app.say(f"{scope} {resource}: limit {'none' if state.limit is None else state.limit}")
