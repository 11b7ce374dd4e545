"""What the stack commands (org, pool, bank, env) share: engine events as progress, the refill spawner."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING, Callable

import click

from squall.cli.context import App, backend_option, output_option, pass_app

if TYPE_CHECKING:
    from squall.infra.driver import StackName

name_option = click.option("--name", default="main", show_default=True,
                           help="Which of the organisation's stacks: stacks/Pulumi.<org>.org.<name>.yaml.")


def stack_command(group: click.Group, name: str, *arguments: Callable) -> Callable:
    """A command on an organisation's stack: ORG, then ``arguments``; --name, --backend and --output."""

    def decorate(function: Callable) -> click.Command:
        for option in (pass_app, output_option, backend_option, name_option, *reversed(arguments),
                       click.argument("org")):
            function = option(function)
        return group.command(name)(function)
    return decorate


def event_printer(app: App) -> Callable[[str], None]:
    """Engine events as progress lines on stderr (a rich status line on a terminal), nothing when quiet."""
    if app.quiet:
        return lambda _message: None
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.markup import escape

        console = Console(stderr=True)
        return lambda message: console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {escape(message)}")
    return lambda message: print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def spawn_refill(app: App) -> Callable[["StackName", str], None]:
    """A claim's refill, in the background: a detached ``squall bank fill`` logging to the home."""

    def refill(stack: "StackName", bank: str) -> None:
        logs = app.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "squall.cli.main", "--home", str(app.home), "--quiet", "bank", "fill",
                stack.org, bank, "--name", stack.name]
        if app.backend:
            argv += ["--backend", app.backend]
        with open(logs / f"bank-fill-{stack.org}-{bank}.log", "ab") as log:
            subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    return refill
