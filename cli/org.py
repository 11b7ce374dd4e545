"""``squall org preview | up | down | status | validate ORG`` and ``squall pool scale ORG POOL --size N``."""

from __future__ import annotations

import click

from squall.cli.context import App, confirm, output_option, pass_app, yes_option
from squall.cli.stacks import event_printer, name_option, stack_command


def _orgs(app: App):
    from squall.infra.orgs import Orgs

    return Orgs(app.store, app.engine)


def _stack(org: str, name: str):
    from squall.infra.driver import StackName

    return StackName(org, "org", name)


def _locked(app: App, stack):

    return app.store.locks.stack(str(stack))


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


@org_group.command("validate")
@click.argument("org")
@name_option
@output_option
@pass_app
def validate_cmd(app: App, org: str, name: str) -> None:
    """Check the organisation's stack file offline (no Pulumi CLI, no cloud): the design, the programs under
    Pulumi's mocks, every security rule and provider limit. Exit 0 clean, 4 on a violation, 2 on an invalid
    file."""
    from squall.errors import ExitCode
    from squall.infra.validation import validate_org

    report = validate_org(_stack(org, name))
    if app.json:
        app.emit(report.to_dict())
    else:
        app.say(f"{report.stack} ({report.cloud}): {'clean' if report.clean else 'VIOLATIONS'} "
                f"({report.seconds:.1f} s)")
        for where, counts in report.resources.items():
            app.say(f"  {where} stack: {sum(counts.values())} resources")
            for kind, count in counts.items():
                app.say(f"    {count:4d}  {kind}")
        for item in report.user_data:
            app.say(f"  user-data {item['resource']}: {item['bytes']} of {item['limit']} bytes")
        for where, violation in report.violations:
            app.say(f"  violation ({where} stack) {violation}")
    if not report.clean:
        click.get_current_context().exit(int(ExitCode.REFUSED))


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
