"""How failures reach the user: one line (and a hint), the documented exit code."""

from __future__ import annotations

import sys
import traceback

import click

from squall.errors import ExitCode, SquallError

from squall.cli.context import App

EXIT_CODES_HELP = """\b
Exit codes:
  0    ok
  1    the job failed, timed out or was cancelled; or a stack operation failed
  2    invalid input (spec, arguments, unknown job or site)
  3    a required tool or dependency is missing
  4    refused by quota, budget or policy
  5    site unreachable or authentication failed
  6    outputs not collected (results folder full or read-only): kept at
       the site; 'squall job attach ID --results DIR' collects them
  7    the Squall home or its store is unusable (read-only, corrupt, not a folder)
  130  interrupted (Ctrl-C, SIGTERM, or SIGHUP: the terminal closed)"""


def report_error(app: App, exc: BaseException) -> int:
    if isinstance(exc, SquallError):
        code, message, hint = int(exc.exit_code), exc.message, exc.hint
    elif isinstance(exc, click.ClickException):
        code, message, hint = exc.exit_code, exc.format_message(), None
    else:
        code, message, hint = int(ExitCode.JOB_FAILED), f"internal error: {exc!r}", "rerun with --debug"
    if app.debug:
        traceback.print_exception(exc, file=sys.stderr)
    if app.json:
        app.emit({"error": message, "hint": hint, "exit_code": code})
    elif isinstance(exc, click.ClickException):
        exc.show()
    else:
        click.echo(f"error: {message}", err=True)
        if hint:
            click.echo(f"hint: {hint}", err=True)
    return code
