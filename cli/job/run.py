"""``squall job run SPEC``"""

from __future__ import annotations

from pathlib import Path

import click

from squall.cli.completion import site_names
from squall.cli.context import App, output_option, pass_app
from squall.cli.job.placing import print_estimates, strategy_option, weights_option
from squall.cli.job.render import show_result
from squall.errors import ExitCode, Interrupted


@click.command("run")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--site", shell_complete=site_names, help="Site to run on (default: the spec's 'site', else local).")
@click.option(
    "--results",
    type=click.Path(file_okay=False),
    help="Folder that receives <job-id>/task-<i>/ (default: the config file's 'results', else squall-results).",
)
@click.option("--detach", is_flag=True, help="Return at once; a background controller finishes the job.")
@click.option("--keep-remote", is_flag=True, help="Leave the job folder at the site after the job (debugging).")
@click.option("--dry-run", is_flag=True, help="Print the plan (site and why, tasks, bytes, batch script, estimate); "
                                              "create nothing.")
@strategy_option
@weights_option
@output_option
@pass_app
@click.pass_context
def run_cmd(
    ctx: click.Context, app: App, spec: str, site: str | None, results: str | None, detach: bool,
    keep_remote: bool, dry_run: bool, strategy: str, weights
) -> None:
    """Run the job described by SPEC: plan, up, stage, launch, monitor, collect, down."""
    from squall.cli.progress import reporter_for
    from squall.controllers import spawn_controller
    from squall.jobs import new_job_id
    from squall.notify import Notifier
    from squall.reports import job_report
    from squall.runner import Runner
    from squall.spec import load_spec

    if app.api:
        ctx.exit(_run_through(app, spec, site, detach, keep_remote or dry_run or results is not None, strategy))
    resolved = load_spec(spec)
    results_root = Path(results or app.defaults["results"].value)
    if dry_run:
        show_dry_run(app, resolved, site, results_root, strategy, weights)
        return
    interrupted = False
    with reporter_for(app.quiet or detach) as reporter:  # the bars close before any summary prints
        runner = Runner(app.store, app.home, reporter, Notifier(app.store, app.defaults.config))
        job_id = new_job_id()  # known before the job exists: a signal may land while it is being created
        try:
            runner.submit(resolved, site, results_root, keep_remote, app.defaults, strategy, weights, job_id)
            if detach:
                spawn_controller(app.home, job_id)
            else:
                runner.drive(job_id)
        except (Interrupted, KeyboardInterrupt):  # down has run (or nothing was created); report, then the code
            if app.store.job(job_id) is None:
                raise Interrupted() from None
            runner.close_unstarted(job_id)
            interrupted = True
    code = show_result(app, job_report(app.store, job_id))
    ctx.exit(int(ExitCode.INTERRUPTED) if interrupted else code)


def show_dry_run(app: App, resolved, site: str | None, results_root: Path, strategy: str, weights) -> None:
    """The plan ``job run`` would follow, from the same admission step; nothing is created or recorded."""
    from squall.runner import Runner

    runner = Runner(app.store, app.home)
    try:
        _, plan, admission = runner.admit(resolved, site, results_root, False, app.defaults, strategy, weights)
        script = admission.site.rendered_script(plan)
    finally:
        runner.close()
    placement = admission.placement
    plan_info = {"site": admission.site.name, "why": placement.reason, "strategy": placement.strategy,
                 "partition": admission.estimate.quote.partition if admission.estimate.quote else None,
                 "tasks": [{"index": t.index, "inputs": len(t.inputs), "bytes": sum(i.size for i in t.inputs)}
                           for t in plan.tasks],
                 "bytes_to_stage": sum(i.size for t in plan.tasks for i in t.inputs),
                 "batch_script": script, "estimate": admission.estimate.to_dict(), "sites": placement.table}
    if app.json:
        app.emit(plan_info)
        return
    app.say(f"dry run: job {resolved.spec.name!r} would run on {plan_info['site']} ({placement.reason})")
    if plan_info["partition"]:
        app.say(f"  partition: {plan_info['partition']}")
    app.say(f"  tasks: {len(plan.tasks)}, {plan_info['bytes_to_stage']} bytes to stage")
    print_estimates(app, placement.table)
    if script:
        app.say("  batch script:")
        app.say("    " + script.rstrip().replace("\n", "\n    "))
    app.say("nothing was created")



def _run_through(app: App, spec: str, site: str | None, detach: bool, local_only: bool, strategy: str) -> int:
    """Submit to the server (the spec and its files uploaded); unless ``detach``, wait for the job's end
    through its event stream, then show it as the local command does. The job runs on the server whatever
    happens to this process."""
    from squall.cli.remote import report, submit, wait_for_end
    from squall.errors import InvalidInput

    if local_only:
        raise InvalidInput("--results, --keep-remote and --dry-run act on this machine, not through --server",
                           hint="'squall job status ID' and the server's results route give the results")
    job = submit(app.api, spec, site, strategy)
    if not detach:
        try:
            wait_for_end(app.api, job["id"])
        except KeyboardInterrupt:
            app.say(f"job {job['id']} goes on on the server: 'squall job status {job['id']}' follows it",
                    err=True)
            raise Interrupted() from None
        job = app.api.call("GET", f"/jobs/{job['id']}")
    return show_result(app, report(job))
