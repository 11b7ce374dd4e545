"""``squall version``."""

from __future__ import annotations

import platform

import click

from squall import __version__
from squall.cli.context import App, output_option, pass_app


@click.command("version")
@output_option
@pass_app
def version_cmd(app: App) -> None:
    """Show the versions of Squall, its runtime and Python."""
    from squall.runtime import runtime_sha256, runtime_version

    info = {
        "squall": __version__,
        "runtime": runtime_version(),
        "runtime_sha256": runtime_sha256(),
        "python": platform.python_version(),
    }
    if app.json:
        app.emit(info)
    else:
        for key, value in info.items():
            app.say(f"{key}: {value}")
