"""``squall env up NAME --config FILE`` and ``squall env down NAME``: environments for CI pipelines."""

from __future__ import annotations

from pathlib import Path

import click

from squall.cli.context import App, backend_option, confirm, output_option, pass_app, yes_option
from squall.cli.stacks import event_printer


def _envs(app: App):
    from squall.infra.envs import Envs

    return Envs(app.store, app.engine, app.home)


@click.group("env")
def env_group() -> None:
    """Environments for pipelines: idempotent, locked per stack, stable JSON with --output json."""


@env_group.command("up")
@click.argument("name")
@click.option("--stack-file", "config_file", type=click.Path(path_type=Path), required=True,
              help="A stack file in the stacks/ format (squall:kind: org).")
@click.option("--ttl", "ttl_hours", type=click.FloatRange(min=0.1, max=24 * 30), default=24.0, show_default=True,
              help="Hours until 'squall gc' may destroy the environment if nobody brings it down.")
@backend_option
@output_option
@pass_app
def up_cmd(app: App, name: str, config_file: Path, ttl_hours: float) -> None:
    """Create or update environment NAME (running it again changes nothing that is already there)."""

    envs = _envs(app)
    stack, document = envs.stack_for(name, config_file)
    with app.store.locks.stack(str(stack)):
        result = envs.up(stack, document, ttl_hours, event_printer(app))
    if app.json:
        app.emit(result)
    else:
        app.say(f"env {name}: up ({result['stack']})")


@env_group.command("down")
@click.argument("name")
@yes_option
@backend_option
@output_option
@pass_app
def down_cmd(app: App, name: str, yes: bool) -> None:
    """Destroy environment NAME; an environment that is not there is already down (exit 0)."""

    confirm(f"destroy environment {name}", yes)
    envs = _envs(app)
    stack = envs.find(name)
    if stack is None:
        result = {"env": name, "stack": None, "state": "absent"}
    else:
        with app.store.locks.stack(str(stack)):
            result = envs.down(name, event_printer(app))
    if app.json:
        app.emit(result)
    else:
        app.say(f"env {name}: {result['state']}")
