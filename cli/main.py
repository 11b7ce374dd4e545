"""Entry point: ``squall`` and its command groups."""

from __future__ import annotations

import signal
import sys

import click

from squall.env_seconds import check_durations
from squall import __version__
from squall.cli import streams
from squall.cli.context import App, output_option
from squall.cli.errors import EXIT_CODES_HELP, report_error
from squall.cli.global_options import (argv_or_sys, configure_logging, hoist, quiet_in, value_of, verbosity_of,
                                       wants_json)
from squall.cli.accounts import member_group, tier_group
from squall.cli.bank import bank_group
from squall.cli.budget import budget_group
from squall.cli.env import env_group
from squall.cli.gc import gc_cmd
from squall.cli.job import job_group
from squall.cli.org import org_group, pool_group
from squall.cli.quota import quota_group
from squall.cli.server import server_cmd, token_group
from squall.cli.service import service_group
from squall.cli.site import site_group
from squall.cli.usage import usage_cmd
from squall.cli.version import version_cmd
from squall.errors import ExitCode
from squall.interrupts import ignore_hangup_if_detached, note_signal, stop_signals
from squall.user_config import Defaults


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="SQUALL_HOME", help="State folder (default $XDG_STATE_HOME/squall).")
@click.option("--config", "config_file", envvar="SQUALL_CONFIG", metavar="FILE",
              help="Config file of defaults (default $XDG_CONFIG_HOME/squall/config.yaml).")
@click.option("--server", envvar="SQUALL_SERVER", metavar="URL",
              help="Act through this 'squall server' (job run|list|status|logs|cancel|estimate, usage, budget show); the "
                   "token in $SQUALL_TOKEN.")
@click.option("--log-format", type=click.Choice(["text", "ecs"]), default="text", show_default=True,
              help="Log lines on stderr as text, or as Elastic Common Schema JSON (with org, project, user, job).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("--quiet", "-q", is_flag=True, help="No progress or human text.")
@click.option("--verbose", "-v", count=True, help="Log lines on stderr: -v warnings, -vv info, -vvv debug.")
@output_option
@click.version_option(__version__, prog_name="squall")
@click.pass_context
def cli(ctx: click.Context, home: str | None, config_file: str | None, server: str | None, log_format: str,
        debug: bool, quiet: bool, verbose: int) -> None:
    """Squall: run jobs as ephemeral stacks on HPC centres, clouds or this machine.

    -q, -v, --debug, --output and --config may also come after the subcommand (the config file is read
    before anything else)."""
    app = ctx.ensure_object(App)
    app.home_option, app.debug, app.quiet, app.server, app.log_format = home, debug, quiet, server, log_format


for command in (job_group, site_group, org_group, pool_group, bank_group, env_group, budget_group, usage_cmd,
                member_group, tier_group, quota_group, service_group, gc_cmd, server_cmd, token_group, version_cmd):
    cli.add_command(command)


def _terminate(signum: int, _frame: object) -> None:
    """SIGINT, SIGTERM or SIGHUP outside a job's own handler stops the command (exit 130); the signal is also noted,
    in case its exception is swallowed before it reaches the command."""
    note_signal(signum)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _unraisable(info: "sys.UnraisableHookArgs") -> None:
    """A signal's ``KeyboardInterrupt`` that landed where Python cannot raise it (a finaliser, a callback
    from C) is not printed: ``_terminate`` noted the signal and the command acts on it."""
    if not isinstance(info.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(info)


def main(argv: list[str] | None = None) -> None:
    try:
        code = _run(argv)
    except KeyboardInterrupt:  # a signal that landed while the outcome was being reported or cleaned up
        code = int(ExitCode.INTERRUPTED)
    sys.exit(code)


def _run(argv: list[str] | None) -> int:
    streams.install()  # a closed pipe or terminal never stops a command (nor its job)
    args = hoist(argv_or_sys(argv))
    app = App(output="json" if wants_json(args) else "text")  # a usage error is JSON too
    ignore_hangup_if_detached()
    handled = stop_signals()
    for signum in handled:
        signal.signal(signum, _terminate)
    sys.unraisablehook = _unraisable
    try:  # from here a signal is an interruption (exit 130), whenever it comes
        log_format = value_of(args, "--log-format")
        if log_format not in (None, "text", "ecs"):
            raise click.BadParameter(f"{log_format!r} is not one of 'text', 'ecs'", param_hint="'--log-format'")
        configure_logging(verbosity_of(args), "--debug" in args, quiet_in(args), log_format)
        check_durations()
        app.defaults = Defaults.load(value_of(args, "--config"))
        if value_of(args, "-o", "--output") is None:
            app.output = app.defaults["output"].value
        code = cli.main(args=args, prog_name="squall", obj=app, standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        code = int(ExitCode.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - every error becomes a message and a code
        code = report_error(app, exc)
    finally:
        # the command's outcome is decided and shown: a late signal must not turn it into a traceback
        for signum in handled:
            signal.signal(signum, signal.SIG_IGN)
        app.close()
    return code or 0


if __name__ == "__main__":
    main()
