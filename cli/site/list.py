"""``squall site list``"""

from __future__ import annotations

import click

from squall.cli.context import App, output_option, pass_app


@click.command("list")
@output_option
@pass_app
def list_cmd(app: App) -> None:
    """List the sites: the built-in local site and registered HPC sites."""
    rows = [{"site": "local", "kind": "local", "inventory": None, "last": None}]
    for name, kind, config in app.store.sites():
        if name == "local":
            continue
        last = app.store.last_site_report(name, "enrol") or app.store.last_site_report(name, "check")
        rows.append({"site": name, "kind": kind, "inventory": config.get("inventory"),
                     "last": {"action": last[0]["action"], "status": last[0]["status"], "at": last[1]} if last else None})
    if app.json:
        app.emit(rows)
        return
    for row in rows:
        last = f"{row['last']['action']} {row['last']['status']}" if row["last"] else "-"
        app.say(f"{row['site']:<16} {row['kind']:<6} {last:<16} {row['inventory'] or ''}")
