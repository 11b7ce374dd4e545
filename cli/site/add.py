"""``squall site add SITE --inventory DIR``"""

from __future__ import annotations

from pathlib import Path

import click

from squall.cli.context import App, output_option, pass_app


@click.command("add")
@click.argument("name", metavar="SITE")
@click.option("--inventory", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Site folder with hosts.yml and group_vars/ (see inventories/example-hpc).")
@output_option
@pass_app
def add_cmd(app: App, name: str, inventory: Path) -> None:
    """Register SITE from its inventory folder (validated; nothing is contacted)."""
    from squall.enrolment import add_site

    summary = add_site(app.store, name, inventory).summary()
    if app.json:
        app.emit(summary)
    else:
        app.say(f"added site {name} ({summary['login']}, {len(summary['partitions'])} partitions)")
