"""``squall site list``"""

from __future__ import annotations

import click

from squall.cli.context import App, output_option, pass_app
from squall.cli.tables import print_table


@click.command("list")
@output_option
@pass_app
def list_cmd(app: App) -> None:
    """List the sites: the built-in ones, the registered ones, and inventories found but not registered."""
    from squall.sites.inventories import found_inventories
    from squall.sites.registration import builtin_sites

    rows = [{"site": name, "kind": kind, "registered": True, "inventory": None, "last": None}
            for name, kind in sorted(builtin_sites().items())]
    registered = set()
    for name, kind, config in app.store.sites():
        if name in builtin_sites():
            continue
        registered.add(name)
        last = app.store.last_site_report(name, "enrol") or app.store.last_site_report(name, "check")
        rows.append({"site": name, "kind": kind, "registered": True,
                     "inventory": config.get("inventory") or config.get("org_stack"),
                     "last": {"action": last[0]["action"], "status": last[0]["status"], "at": last[1]} if last else None})
    for name, folder in sorted(found_inventories().items()):
        if name not in registered:
            rows.append({"site": name, "kind": None, "registered": False, "inventory": str(folder), "last": None})
    if app.json:
        app.emit(rows)
        return
    print_table(app, ["SITE", "KIND", "LAST", "INVENTORY"],
                [[row["site"], row["kind"] or "(found, not registered)",
                  f"{row['last']['action']} {row['last']['status']}" if row["last"] else "-", row["inventory"] or ""]
                 for row in rows])
