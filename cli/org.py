"""``squall org preview | up | down | status ORG`` and ``squall pool scale ORG POOL --size N``."""

from __future__ import annotations

import click

from squall.cli.context import App, confirm, yes_option
from squall.cli.stacks import event_printer, stack_command


def _orgs(app: App):
    from squall.infra.orgs import Orgs

    return Orgs(app.store, app.engine)


def _stack(org: str, name: str):
    from squall.infra.driver import StackName

    return StackName(org, "org", name)


def _locked(app: App, stack):
    from squall.locks import StackLock

    return StackLock(app.home, str(stack), wait=False)


@click.group("org")
def org_group() -> None:
    """An organisation's persistent cluster, GPU pools and VM banks (Pulumi stacks <org>.org.<name>)."""


@stack_command(org_group, "preview")
def preview_cmd(app: App, org: str, name: str) -> None:
    """Show what 'up' would change; changes nothing."""
    stack = _stack(org, name)
    changes = _orgs(app).preview(stack, event_printer(app))
    if app.json:
        app.emit({"stack": str(stack), "changes": changes})
    else:
        app.say(f"{stack}: " + (", ".join(f"{n} to {op}" for op, n in sorted(changes.items())) or "no changes"))


@stack_command(org_group, "up")
def up_cmd(app: App, org: str, name: str) -> None:
    """Create or update the organisation's stack."""
    stack = _stack(org, name)
    with _locked(app, stack):
        outputs = _orgs(app).up(stack, event_printer(app))
    if app.json:
        app.emit({"stack": str(stack), "state": "up", "outputs": outputs})
    else:
        app.say(f"{stack}: up")
        for key, value in sorted(outputs.items()):
            app.say(f"  {key}: {value}")


@stack_command(org_group, "down", yes_option)
def down_cmd(app: App, org: str, name: str, yes: bool) -> None:
    """Destroy everything of the organisation's stack."""
    stack = _stack(org, name)
    confirm(f"destroy every resource of {stack}", yes)
    with _locked(app, stack):
        _orgs(app).down(stack, event_printer(app))
    if app.json:
        app.emit({"stack": str(stack), "state": "destroyed"})
    else:
        app.say(f"{stack}: destroyed")


@stack_command(org_group, "status")
def status_cmd(app: App, org: str, name: str) -> None:
    """What Squall last did to the stack, its outputs, pools and banks (no cloud call)."""
    status = _orgs(app).status(_stack(org, name))
    if app.json:
        app.emit(status)
        return
    app.say(f"{status['stack']} ({status['cloud']}): {status['state']}")
    for pool, sizes in status["pools"].items():
        app.say(f"  pool {pool}: desired {sizes['desired']} (min {sizes['min']}, max {sizes['max']})")
    for bank, info in status["banks"].items():
        app.say(f"  bank {bank}: target {info['target']}, {len(info['slots'])} VM(s)")


@click.group("pool")
def pool_group() -> None:
    """GPU node pools of an organisation."""


@stack_command(pool_group, "scale", click.argument("pool"))
@click.option("--size", type=click.IntRange(min=0), required=True, help="Desired number of nodes (0 allowed).")
def scale_cmd(app: App, org: str, pool: str, size: int, name: str) -> None:
    """Set POOL's desired size and apply it."""
    stack = _stack(org, name)
    with _locked(app, stack):
        _orgs(app).scale(stack, pool, size, event_printer(app))
    if app.json:
        app.emit({"stack": str(stack), "pool": pool, "desired": size})
    else:
        app.say(f"{stack}: pool {pool} scaled to {size}")
