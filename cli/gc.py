"""``squall gc``"""

from __future__ import annotations

import click

from squall.cli.context import App, backend_option, confirm, output_option, pass_app, yes_option
from squall.errors import ExitCode


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; change nothing.")
@click.option("--force", is_flag=True, help="Also remove cloud resources tagged managed-by: squall that no stack owns.")
@click.option("--include-foreign-expired", is_flag=True,
              help="Also remove other stores' job folders, Slurm jobs and job stacks whose owner tags say they expired.")
@click.option("--discard-uncollected", is_flag=True,
              help="Also remove work areas whose jobs' outputs were never collected (by default they are kept and "
                   "listed: 'squall job attach ID' collects them).")
@yes_option
@backend_option
@output_option
@pass_app
def gc_cmd(app: App, dry_run: bool, force: bool, include_foreign_expired: bool, discard_uncollected: bool,
           yes: bool) -> None:
    """Remove what crashed jobs left behind: expired or orphaned work areas, expired job and environment
    stacks, and (with --force) cloud resources no stack owns. Exits 5 when a site could not be checked
    (after collecting at every other one)."""
    from squall.gc.sites import collect_garbage

    if not dry_run:
        confirm("remove what crashed jobs left behind ('squall gc --dry-run' lists it)", yes)

    actions = collect_garbage(app.store, app.home, dry_run=dry_run, include_foreign_expired=include_foreign_expired,
                              discard_uncollected=discard_uncollected)
    if _uses_stacks(app):
        from squall.gc.stacks import collect_stacks, inventories_for

        actions += collect_stacks(app.store, app.engine, app.home, dry_run=dry_run, force=force,
                                  inventories=inventories_for(app.store, app.home),
                                  include_foreign_expired=include_foreign_expired,
                                  discard_uncollected=discard_uncollected)
    unchecked = sorted({a.site for a in actions if a.action == "error"})
    by_hand = [a for a in actions if a.action == "by-hand"]
    if app.json:
        app.emit({"dry_run": dry_run, "actions": [a.to_dict() for a in actions]})
    else:
        _say_actions(app, actions, dry_run)
    if by_hand:
        app.say(f"{len(by_hand)} resource(s) to remove by hand: {', '.join(a.resource for a in by_hand)}", err=True)
    if unchecked:  # the rest was still collected; say that this part could not be
        app.say(f"could not check: {', '.join(unchecked)} (run squall gc again once reachable)", err=True)
        click.get_current_context().exit(int(ExitCode.SITE_UNREACHABLE))
    if by_hand:
        click.get_current_context().exit(int(ExitCode.JOB_FAILED))


def _say_actions(app: App, actions: list, dry_run: bool) -> None:
    if not actions:
        app.say("nothing to collect")
    verb = {"remove": "would remove" if dry_run else "removed", "release": "would release" if dry_run else "released",
            "keep": "kept", "error": "could not list", "orphan": "found (not removed without --force)",
            "foreign": "left alone", "close": "would close" if dry_run else "closed",
            "by-hand": "REMOVE BY HAND", "uncollected": "kept (uncollected)"}
    for a in actions:
        owner = f" (job {a.job_id})" if a.job_id else ""
        app.say(f"{verb[a.action]} {a.kind} {a.resource}{owner} on {a.site}: {a.reason}")


def _uses_stacks(app: App) -> bool:
    """Whether this home ever drove a Pulumi stack (only then is the backend asked, and the CLI needed)."""
    from squall.infra import records

    return bool(records.stacks(app.store)) or (app.home / "pulumi").is_dir() or app.backend is not None
