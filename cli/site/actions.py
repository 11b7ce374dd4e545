"""``squall site check | enrol | health | unenrol SITE``: apply Squall's roles to a site."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from squall.cli.completion import site_names
from squall.cli.context import App, confirm, output_option, pass_app, yes_option


def _run(ctx: click.Context, app: App, name: str, action: str, **options) -> None:
    from squall.enrolment import run_action

    def progress(outcome) -> None:
        if not app.quiet and outcome.status != "skipped":
            role = f"{outcome.role}: " if outcome.role else ""
            print(f"  {outcome.status:<11} {role}{outcome.task}", file=sys.stderr, flush=True)

    if not app.quiet:
        print(f"squall: {action} {name}", file=sys.stderr, flush=True)
    report = run_action(app.store, app.home, name, action, on_task=progress, **options)
    if app.json:
        app.emit(report.to_dict())
    else:
        _show(app, report)
    ctx.exit(report.exit_code)


def _show(app: App, report) -> None:
    app.say(f"site {report.site}: {report.action} {report.status} ({report.changed} changed, {report.duration_s:.1f} s)")
    for check in report.checks:
        hint = f"  -> {check['hint']}" if check["hint"] else ""
        app.say(f"  {check['status']:<8} {check['name']:<22} {check['value']}{hint}")
    if report.runtime:
        app.say(f"  runtime {report.runtime['version']} at {report.runtime['path']}"
                f"{' (previous: ' + report.runtime['previous'] + ')' if report.runtime.get('previous') else ''}")
    if report.health:
        app.say(f"  health job {report.health['scheduler_job_id']}: {report.health['status']}, "
                f"scheduling latency {report.health['latency_s']} s")
    if report.unenrol:
        app.say(f"  cancelled jobs: {report.unenrol['cancelled_jobs'] or 'none'}; "
                f"removed: {report.unenrol['removed_folders'] or 'nothing'} and ~/.squall")
    if report.error:
        app.say(f"  error: {report.error}")


site_argument = click.argument("name", metavar="SITE", shell_complete=site_names)


@click.command("check")
@site_argument
@output_option
@pass_app
@click.pass_context
def check_cmd(ctx: click.Context, app: App, name: str) -> None:
    """Check that SITE meets Squall's prerequisites; changes nothing."""
    _run(ctx, app, name, "check")


@click.command("enrol")
@site_argument
@click.option("--runtime-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Install this runtime file instead of the one shipped with Squall (upgrades).")
@click.option("--rollback", is_flag=True, help="Make the previous runtime version current again, then health-check.")
@output_option
@pass_app
@click.pass_context
def enrol_cmd(ctx: click.Context, app: App, name: str, runtime_file: Path | None, rollback: bool) -> None:
    """Check SITE, install the Squall runtime there, and prove it with a real job."""
    _run(ctx, app, name, "enrol", runtime_file=runtime_file, rollback=rollback)


@click.command("health")
@site_argument
@output_option
@pass_app
@click.pass_context
def health_cmd(ctx: click.Context, app: App, name: str) -> None:
    """Run a real test job at SITE through its scheduler and the installed runtime."""
    _run(ctx, app, name, "health")


@click.command("unenrol")
@site_argument
@yes_option
@output_option
@pass_app
@click.pass_context
def unenrol_cmd(ctx: click.Context, app: App, name: str, yes: bool) -> None:
    """Cancel Squall's jobs at SITE and remove only what Squall installed there."""
    confirm(f"cancel Squall's jobs at {name} and remove what Squall installed there", yes)
    _run(ctx, app, name, "unenrol")
