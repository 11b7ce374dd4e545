"""The typed context every command receives, and shared options."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from squall.user_config import Defaults

if TYPE_CHECKING:
    from squall.cli.remote import Api
    from squall.infra.driver import Engine
    from squall.store import Store


@dataclass
class App:
    home_option: str | None = None
    debug: bool = False
    output: str = "text"
    quiet: bool = False
    backend: str | None = None  # Pulumi state backend URL (--backend); default: a file backend in the home
    server: str | None = None  # a 'squall server' to act through (--server, $SQUALL_SERVER)
    log_format: str = "text"  # or "ecs" (--log-format)
    defaults: Defaults = field(default_factory=Defaults.builtin)  # main() loads the config file's and environment's
    _closers: list[Callable[[], None]] = field(default_factory=list)

    @cached_property
    def home(self) -> Path:
        from squall.paths import squall_home

        return squall_home(self.home_option)

    @cached_property
    def store(self) -> "Store":
        from squall.store import Store

        store = Store(self.home)
        self._closers.append(store.close)
        return store

    @cached_property
    def reader(self) -> "Store":
        """The store for commands that only read: opened read-only when the home cannot be written."""
        import os

        from squall.store import Store

        if (self.home / "squall.db").is_file() and not os.access(self.home, os.W_OK):
            store = Store(self.home, read_only=True)
            self._closers.append(store.close)
            return store
        return self.store

    @cached_property
    def api(self) -> "Api | None":
        """The server this command acts through, if one is named (``squall.cli.remote``)."""
        from squall.cli.remote import api_of

        return api_of(self.server)

    @cached_property
    def engine(self) -> "Engine":
        from squall.infra import driver

        return driver.engine_for(self.home, self.backend or self.defaults["backend"].value)

    @property
    def json(self) -> bool:
        return self.output == "json"

    def emit(self, data: Any) -> None:
        """The one place JSON reaches stdout; instants (``*_at`` fields) as RFC 3339 strings."""
        from squall.instants import with_instants

        click.echo(json.dumps(with_instants(data), indent=2, sort_keys=True, default=str))

    def say(self, text: str = "", err: bool = False) -> None:
        """Human text: stdout in text mode, stderr in JSON mode (stdout stays JSON)."""
        if not self.quiet:
            click.echo(text, err=err or self.json)

    def close(self) -> None:
        for closer in self._closers:
            closer()


pass_app = click.make_pass_decorator(App)


def _set_output(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """--output given before or after the subcommand; a default never overrides one given."""
    if ctx.get_parameter_source(param.name) is not click.core.ParameterSource.DEFAULT:
        ctx.find_object(App).output = value
    return value


output_option = click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json", "csv"]),
    default="text",
    show_default=True,
    expose_value=False,
    callback=_set_output,
    help="json: print only JSON on stdout (for scripts and CI); csv: usage records as CSV (squall usage; "
         "other commands print text).",
)


def _set_backend(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    ctx.find_object(App).backend = value
    return value


backend_option = click.option(
    "--backend",
    envvar="SQUALL_PULUMI_BACKEND",
    expose_value=False,
    callback=_set_backend,
    help="Pulumi state backend URL (default: file:// under the Squall home; no account needed).",
)


yes_option = click.option("--yes", "-y", is_flag=True,
                          help="Do it without asking (required when not on a terminal).")


def confirm(what: str, yes: bool) -> None:
    """A destructive command: asked on a terminal (no: exit 1, nothing done); elsewhere only with --yes
    (else exit 2 with the hint)."""
    import sys

    from squall.errors import InvalidInput

    if yes:
        return
    if sys.stdin.isatty() and sys.stderr.isatty():
        if not click.confirm(f"{what}?", err=True):
            click.echo("nothing done", err=True)
            raise click.exceptions.Exit(1)
        return
    raise InvalidInput(f"{what}: asks for confirmation, and this is not a terminal", hint="pass --yes to go ahead")
