"""``squall bank status | fill | claim | release ORG BANK``: the idle VM bank."""

from __future__ import annotations

import getpass
import time
from dataclasses import asdict
from typing import Callable

import click

from squall.cli.context import App, confirm, yes_option
from squall.cli.stacks import event_printer, spawn_refill, stack_command

owner_option = click.option("--owner", default=getpass.getuser, show_default="you",
                            help="Who holds the VM (quotas count per owner).")


def _banks(app: App):
    from squall.infra.bank import Banks
    from squall.infra.orgs import Orgs

    return Banks(app.store, Orgs(app.store, app.engine))


def _stack(org: str, name: str):
    from squall.infra.driver import StackName

    return StackName(org, "org", name)


@click.group("bank")
def bank_group() -> None:
    """Idle VMs kept ready: claim one at once instead of waiting for a new one."""


def bank_command(name: str) -> Callable:
    """A bank subcommand: ORG BANK, then the stack options."""
    return stack_command(bank_group, name, click.argument("bank"))


@bank_command("status")
@owner_option
def status_cmd(app: App, org: str, bank: str, name: str, owner: str) -> None:
    """Target, idle and claimed VMs, and your quota use."""
    status = _banks(app).status(_stack(org, name), bank, owner)
    if app.json:
        app.emit(status)
        return
    app.say(f"bank {org}/{bank}: target {status['target']}, idle {status['idle']}, claimed {status['claimed']} "
            f"(max {status['max_size']}); {owner} holds {status['quota']['used']}/{status['quota']['limit']}")
    for claim in status["claims"]:
        app.say(f"  vm {claim['id']} {claim['address']} held by {claim['owner']}")


@bank_command("fill")
def fill_cmd(app: App, org: str, bank: str, name: str) -> None:
    """Bring the idle VMs back to the target; replace VMs past their max age and lapsed claims."""

    stack = _stack(org, name)
    with app.store.locks.stack(str(stack), wait=True):
        result = _banks(app).fill(stack, bank, event_printer(app))
    if app.json:
        app.emit({"org": org, "bank": bank, **result})
    else:
        app.say(f"bank {org}/{bank}: added {len(result['added'])}, retired {len(result['retired'])}; "
                f"idle {result['idle']}, claimed {result['claimed']}")


@bank_command("claim")
@owner_option
@click.option("--hours", type=click.FloatRange(min=0.1, max=24 * 7), help="How long you keep it (bank default).")
def claim_cmd(app: App, org: str, bank: str, name: str, owner: str, hours: float | None) -> None:
    """Take one idle VM now (a refill starts in the background)."""
    vm = _banks(app).claim(_stack(org, name), bank, owner, spawn_refill(app), hours)
    if app.json:
        app.emit(asdict(vm))
    else:
        until = time.strftime("%Y-%m-%d %H:%M", time.localtime(vm.expires_at or 0))
        app.say(f"vm {vm.id}: {vm.address} is yours until {until} (release: squall bank release {org} {bank} {vm.id})")


@bank_command("release")
@click.argument("vm_id", metavar="ID", type=int)
@owner_option
@yes_option
def release_cmd(app: App, org: str, bank: str, name: str, vm_id: int, owner: str, yes: bool) -> None:
    """Give back a claimed VM: it is destroyed and the bank refilled."""

    confirm(f"destroy VM {vm_id} of bank {org}/{bank}", yes)
    stack = _stack(org, name)
    with app.store.locks.stack(str(stack), wait=True):
        result = _banks(app).release(stack, bank, vm_id, owner, event_printer(app))
    if app.json:
        app.emit({"org": org, "bank": bank, "released": vm_id, **result})
    else:
        app.say(f"vm {vm_id} released and destroyed; bank {org}/{bank} idle {result['idle']}")
