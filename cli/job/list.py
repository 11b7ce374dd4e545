"""``squall job list``"""

from __future__ import annotations

import time

import click

from squall.cli.completion import site_names
from squall.cli.context import App, output_option, pass_app
from squall.cli.tables import print_table


STATUSES = ("pending", "running", "succeeded", "failed", "timeout", "cancelled", "incomplete", "orphaned")


@click.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="How many recent jobs.")
@click.option("--site", shell_complete=site_names, help="Only jobs at this site.")
@click.option("--project", help="Only jobs of this project.")
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs in this status.")
@output_option
@pass_app
def list_cmd(app: App, limit: int, site: str | None, project: str | None, status: str | None) -> None:
    """List recent jobs, newest first (``orphaned``: in progress, but no controller drives it)."""
    from squall.jobs import shown_status

    keys = ("id", "name", "project", "site", "status", "phase", "created_at", "finished_at")
    if app.api:
        filters = {k: v for k, v in (("site", site), ("project", project), ("status", status)) if v is not None}
        jobs = [{k: j[k] for k in keys} for j in app.api.call("GET", "/jobs", params={"limit": limit, **filters})]
    else:
        if status is None:
            rows = app.reader.jobs(limit, site=site, project=project)
        else:  # a shown status (orphaned) is known only job by job
            rows = [j for j in app.reader.jobs(None, site=site, project=project)
                    if shown_status(j, app.reader.locks) == status][:limit]
        jobs = [{k: shown_status(j, app.reader.locks) if k == "status" else getattr(j, k) for k in keys}
                for j in rows]
    if app.json:
        app.emit(jobs)
        return
    if not jobs:
        app.say("no jobs match" if site or project or status else "no jobs yet")
        return
    print_table(app, ["ID", "STATUS", "PHASE", "SITE", "CREATED", "NAME"],
                [[j["id"], j["status"], j["phase"], j["site"],
                  time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j["created_at"])), j["name"]] for j in jobs])
