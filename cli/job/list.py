"""``squall job list``"""

from __future__ import annotations

import time

import click

from squall.cli.context import App, output_option, pass_app


@click.command("list")
@click.option("--limit", default=20, show_default=True, help="How many recent jobs.")
@output_option
@pass_app
def list_cmd(app: App, limit: int) -> None:
    """List recent jobs, newest first (``orphaned``: in progress, but no controller drives it)."""
    from squall.jobs import shown_status

    jobs = app.reader.jobs(limit)
    if app.json:
        app.emit(
            [
                {"id": j.id, "name": j.name, "site": j.site, "status": shown_status(j, app.home), "phase": j.phase,
                 "created_at": j.created_at, "finished_at": j.finished_at}
                for j in jobs
            ]
        )
        return
    if not jobs:
        app.say("no jobs yet")
        return
    app.say(f"{'ID':<14} {'STATUS':<10} {'PHASE':<8} {'SITE':<10} {'CREATED':<19} NAME")
    for j in jobs:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.created_at))
        app.say(f"{j.id:<14} {shown_status(j, app.home):<10} {j.phase:<8} {j.site:<10} {created:<19} {j.name!r}")
