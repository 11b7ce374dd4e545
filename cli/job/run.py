"""``squall job run SPEC``"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from squall.cli.completion import site_names
from squall.cli.context import App, output_option, pass_app
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
@output_option
@pass_app
@click.pass_context
def run_cmd(
    ctx: click.Context, app: App, spec: str, site: str | None, results: str | None, detach: bool,
    keep_remote: bool
) -> None:
    """Run the job described by SPEC: plan, up, stage, launch, monitor, collect, down."""
    from squall.cli.progress import reporter_for
    from squall.jobs import JobResult
    from squall.runner import Runner
    from squall.spec import load_spec

    resolved = load_spec(spec)
    interrupted = False
    with reporter_for(app.quiet or detach) as reporter:  # the bars close before any summary prints
        runner = Runner(app.store, app.home, reporter)
        job_id = None
        try:
            results_root = Path(results or app.defaults["results"].value)
            job_id = runner.submit(resolved, site, results_root, keep_remote, app.defaults).job_id
            if detach:
                _spawn_controller(app, job_id)
            else:
                runner.drive(job_id)
        except (Interrupted, KeyboardInterrupt):  # down has run (or nothing was created); report, then the code
            if job_id is None:
                raise Interrupted() from None
            runner.close_unstarted(job_id)
            interrupted = True
    code = show_result(app, JobResult.load(app.store, job_id))
    ctx.exit(int(ExitCode.INTERRUPTED) if interrupted else code)


def _spawn_controller(app: App, job_id: str) -> None:
    """Start ``squall job attach`` in its own session; it outlives this process."""
    import subprocess

    log_dir = app.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{job_id}.log", "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "squall.cli.main", "--home", str(app.home), "job", "attach", job_id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
