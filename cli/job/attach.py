"""``squall job attach ID``"""

from __future__ import annotations

from pathlib import Path

import click

from squall.cli.completion import job_ids
from squall.cli.context import App, output_option, pass_app
from squall.cli.job.render import load_job, show_result
from squall.errors import ExitCode, Interrupted


@click.command("attach")
@click.argument("job_id", shell_complete=job_ids)
@click.option("--results", type=click.Path(file_okay=False),
              help="Collect into this folder instead (when the first one was full or read-only); "
                   "what was already collected is moved there.")
@output_option
@pass_app
@click.pass_context
def attach_cmd(ctx: click.Context, app: App, job_id: str, results: str | None) -> None:
    """Resume a job whose controller died or whose outputs could not be collected: monitor, collect, clean up."""
    from squall.cli.progress import reporter_for
    from squall.notify import Notifier
    from squall.reports import job_report
    from squall.runner import Runner

    job_id = load_job(app, job_id).id  # a unique prefix names the job too
    runner = Runner(app.store, app.home, notifier=Notifier(app.store, app.defaults.config))
    if results is not None:
        runner.move_results(job_id, Path(results))
    with reporter_for(app.quiet) as reporter:
        runner.reporter = reporter
        try:
            runner.drive(job_id)
        except Interrupted:
            show_result(app, job_report(app.store, job_id))
            ctx.exit(int(ExitCode.INTERRUPTED))
    ctx.exit(show_result(app, job_report(app.store, job_id)))
