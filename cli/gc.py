"""``squall gc``"""

from __future__ import annotations

import click

from squall.cli.context import App, output_option, pass_app


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; change nothing.")
@output_option
@pass_app
def gc_cmd(app: App, dry_run: bool) -> None:
    """Remove what crashed jobs left behind: expired or orphaned work areas."""
    from squall.gc import collect_garbage

    actions = collect_garbage(app.store, app.home, dry_run=dry_run)
    if app.json:
        app.emit({"dry_run": dry_run, "actions": [a.to_dict() for a in actions]})
        return
    if not actions:
        app.say("nothing to collect")
    verb = {"remove": "would remove" if dry_run else "removed", "release": "would release" if dry_run else "released", "keep": "kept", "error": "could not list"}
    for a in actions:
        owner = f" (job {a.job_id})" if a.job_id else ""
        app.say(f"{verb[a.action]} {a.kind} {a.resource}{owner} on {a.site}: {a.reason}")
