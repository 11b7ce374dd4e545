"""``squall site remove SITE``"""

from __future__ import annotations

import click

from squall.cli.completion import site_names
from squall.cli.context import App, output_option, pass_app


@click.command("remove")
@click.argument("name", metavar="SITE", shell_complete=site_names)
@output_option
@pass_app
def remove_cmd(app: App, name: str) -> None:
    """Unregister SITE (nothing at the site is touched); refused while it has unfinished jobs."""
    from squall.sites.registration import remove_site

    remove_site(app.store, name)
    if app.json:
        app.emit({"site": name, "removed": True})
    else:
        app.say(f"site {name} removed from this Squall home (its inventory folder is left as it is)")
