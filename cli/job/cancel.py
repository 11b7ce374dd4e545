"""``squall job cancel ID``"""

from __future__ import annotations

import time

import click

from squall.cli.completion import job_ids
from squall.cli.context import App, output_option, pass_app
from squall.errors import ExitCode
from squall.cli.job.render import load_job, show_result


@click.command("cancel")
@click.argument("job_id", shell_complete=job_ids)
@click.option("--wait", "wait_seconds", default=60.0, show_default=True, help="Seconds to wait for the job to stop.")
@output_option
@pass_app
@click.pass_context
def cancel_cmd(ctx: click.Context, app: App, job_id: str, wait_seconds: float) -> None:
    """Stop a job: its tasks are killed, finished outputs collected, everything removed.

    Exits 0 once the job has stopped (its own outcome is in its status), 1 if it
    is still stopping after --wait seconds.
    """
    from squall.cli.progress import reporter_for
    from squall.notify import Notifier
    from squall.reports import job_report
    from squall.runner import Runner

    if app.api:
        ctx.exit(_cancel_through(app, job_id, wait_seconds))
    job = load_job(app, job_id)
    job_id = job.id  # a unique prefix names the job too
    if not job.finished:
        app.store.update_job(job_id, cancel_requested=True)
        app.store.record(job_id, job.phase, "cancel-requested")
        if app.store.locks.controller_alive(job_id):
            deadline = time.monotonic() + wait_seconds
            while not app.store.job(job_id).finished and time.monotonic() < deadline:
                time.sleep(0.2)
        else:  # nobody drives the job: do the clean-up here
            with reporter_for(app.quiet) as reporter:
                Runner(app.store, app.home, reporter, Notifier(app.store, app.defaults.config)).drive(job_id)
    show_result(app, job_report(app.store, job_id))
    if not app.store.job(job_id).finished:
        app.say(f"job {job_id} is still stopping after {wait_seconds:g} s; 'squall job status {job_id}' follows it",
                err=True)
        ctx.exit(int(ExitCode.JOB_FAILED))
    ctx.exit(int(ExitCode.OK))


def _cancel_through(app: App, job_id: str, wait_seconds: float) -> int:
    """Ask the server to stop the job; wait for it as the local command does."""
    from squall.cli.remote import report

    answer = app.api.call("POST", f"/jobs/{job_id}/cancel")
    deadline = time.monotonic() + wait_seconds
    while answer["phase"] != "done" and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = app.api.call("GET", f"/jobs/{job_id}")
    show_result(app, report(answer))
    if answer["phase"] != "done":
        app.say(f"job {job_id} is still stopping after {wait_seconds:g} s; 'squall job status {job_id}' follows it",
                err=True)
        return int(ExitCode.JOB_FAILED)
    return int(ExitCode.OK)
