"""``squall site show SITE``"""

from __future__ import annotations

import time

import click

from squall.cli.completion import site_names
from squall.cli.context import App, output_option, pass_app


@click.command("show")
@click.argument("name", metavar="SITE", shell_complete=site_names)
@output_option
@pass_app
def show_cmd(app: App, name: str) -> None:
    """Show SITE's inventory and what enrolment discovered there, and when."""
    from squall.enrolment import describe_site

    info = describe_site(app.store, name)
    if app.json:
        app.emit(info)
        return
    found = info["discovered"]
    app.say(f"site {info['site']} ({info['kind']}, {info['scheduler']}) at {info['login']}")
    app.say(f"  inventory: {info['inventory']}")
    app.say(f"  work root: {info['work_root']}")
    pricing = info["pricing"]
    app.say(f"  prices: {pricing['currency']}, {pricing['source']} (as of {pricing['as_of']})" if pricing
            else "  prices: unpriced (no squall_pricing in the inventory)")
    for p in info["partitions"]:
        app.say(f"  partition {p['name']:<10} max {p['max_walltime']}, {p['max_cpus_per_task']} cpus/task, "
                f"{p['gpus_per_node']} gpus/node; {info['prices'][p['name']]}")
    if not info["partitions"]:
        app.say(f"  machines: {info['prices']['machines']}")
    if info["jump_host"]:
        app.say(f"  jump host: {info['jump_host']}")
    if info["scheduler"] == "none":
        machines = found["hosts"] or {}
        for host, address in info["hosts"].items():
            fact = machines.get(host)
            has = (f"{fact['cpus']} CPUs, {fact['memory_mb']} MB, {fact['gpus']} GPUs" if fact
                   else "not checked yet")
            app.say(f"  machine {host} at {address}: {has}")
    else:
        partitions = ", ".join(f"{name} {state}" for name, state in (found["partitions"] or {}).items())
        app.say(f"  discovered partitions: {partitions or 'not checked yet'}")
        gres = ", ".join(f"{name}: {', '.join(kinds) or 'none'}" for name, kinds in (found["gpus"] or {}).items())
        app.say(f"  discovered GPUs (gres): {gres or '-'}")
        app.say(f"  slurm associations: {_associations(found['slurm_associations'])}")
    runtimes = found["container_runtimes"]
    app.say(f"  container runtimes: {', '.join(runtimes) or 'none' if runtimes is not None else '-'}")
    runtime = found["runtime"]
    app.say(f"  runtime: {runtime['version'] + ' at ' + runtime['path'] if runtime else 'not installed by Squall'}")
    health = found["health"]
    if health:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(health["at"]))
        app.say(f"  last health: {health['status']} at {when} (scheduling latency {health['latency_s']} s)")
    else:
        app.say("  last health: never")


def _associations(found: dict | None) -> str:
    if not found:
        return "not checked yet"
    if not found.get("available"):
        return f"unknown ({found.get('reason') or 'sacctmgr gave none'})"
    rows = found.get("associations") or []
    return "; ".join(", ".join(f"{k} {v}" for k, v in row.items()) for row in rows) or "none for this account"
