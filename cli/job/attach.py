"""``squall job attach ID``"""

from __future__ import annotations

import click

from squall.cli.context import App, output_option, pass_app
from squall.cli.job.render import load_job, show_result


@click.command("attach")
@click.argument("job_id")
@output_option
@pass_app
@click.pass_context
def attach_cmd(ctx: click.Context, app: App, job_id: str) -> None:
    """Resume a job whose controller died: monitor, collect and clean up."""
    from squall.cli.progress import reporter_for
    from squall.runner import Runner

    load_job(app, job_id)
    with reporter_for(app.quiet) as reporter:
        result = Runner(app.store, app.home, reporter).drive(job_id)
    ctx.exit(show_result(app, result))
