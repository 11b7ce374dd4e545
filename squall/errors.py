"""One exit-code table and the typed errors that carry a code.

The CLI turns any ``SquallError`` into a one-line message and its exit code;
nothing else in the core decides how a failure is shown.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    JOB_FAILED = 1  # the job ran and failed, timed out or was cancelled; or a stack operation failed
    INVALID_INPUT = 2
    MISSING_DEPENDENCY = 3
    REFUSED = 4  # quota, budget or policy
    SITE_UNREACHABLE = 5  # site unreachable or authentication failed
    OUTPUTS_KEPT = 6  # outputs could not be collected (results folder); kept at the site for `job attach`
    HOME_UNUSABLE = 7  # the Squall home or its store cannot be used (read-only, corrupt, not a folder)
    INTERRUPTED = 130


class SquallError(Exception):
    """Base of every error a user can act on; ``hint`` says how."""

    exit_code = ExitCode.JOB_FAILED

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class InvalidInput(SquallError):
    exit_code = ExitCode.INVALID_INPUT


class MissingDependency(SquallError):
    exit_code = ExitCode.MISSING_DEPENDENCY


class Refused(SquallError):
    exit_code = ExitCode.REFUSED


class SiteUnreachable(SquallError):
    exit_code = ExitCode.SITE_UNREACHABLE


class OutputsKept(SquallError):
    """The results folder could not take the outputs; they wait at the site for ``job attach``."""

    exit_code = ExitCode.OUTPUTS_KEPT


class HomeUnusable(SquallError):
    exit_code = ExitCode.HOME_UNUSABLE


class StoreFull(HomeUnusable):
    """The disk holding the store has no room for a write (the write was rolled back whole)."""


class StoreUnreachable(HomeUnusable):
    """The store's database server does not answer (a write was rolled back whole, or never began)."""


class NotFound(InvalidInput):
    """A job, task or site named by the user does not exist."""


class Interrupted(SquallError):
    """Raised in the controller's main thread on SIGINT or SIGTERM."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, signal_name: str = "SIGINT"):
        super().__init__(f"interrupted by {signal_name}")
        self.signal_name = signal_name
