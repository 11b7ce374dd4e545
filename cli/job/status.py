"""``squall job status ID``"""

from __future__ import annotations

import click

from squall.cli.completion import job_ids
from squall.cli.context import App, output_option, pass_app
from squall.cli.job.render import load_job, show_result


@click.command("status")
@click.argument("job_id", shell_complete=job_ids)
@output_option
@pass_app
@click.pass_context
def status_cmd(ctx: click.Context, app: App, job_id: str) -> None:
    """Show a job, its tasks, and every lifecycle transition with its time."""
    from squall.reports import job_report

    if app.api:
        from squall.cli.remote import report

        ctx.exit(show_result(app, report(app.api.call("GET", f"/jobs/{job_id}", params={"journal": True}))))
    job_id = load_job(app, job_id, app.reader).id  # a unique prefix names the job too
    ctx.exit(show_result(app, job_report(app.reader, job_id, journal=True)))
