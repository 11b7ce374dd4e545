"""Options every command takes, before or after the subcommand: ``-q``, ``-v``, ``--debug``, ``--output``,
``--config``, ``--log-format``.

click only knows a group's options before its subcommand, so they are moved
there before parsing (``squall job list -q`` is ``squall -q job list``).
Nothing after ``--`` is touched. ``--output json`` is noted first of all, so
that even a usage error is reported as JSON.
"""

from __future__ import annotations

import logging
import sys

FLAGS = ("-q", "--quiet", "--debug", "-v", "--verbose")
WITH_VALUE = ("-o", "--output", "--config", "--log-format")


def hoist(argv: list[str]) -> list[str]:
    """``argv`` with the global options moved to the front, in their order."""
    front: list[str] = []
    rest: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            rest += [token, *tokens]
            break
        if token in FLAGS or (token.startswith("-v") and set(token[1:]) == {"v"}):
            front.append(token)
        elif token in WITH_VALUE:
            front += [token, next(tokens, "")]
        elif token.startswith(("--output=", "--config=", "--log-format=")):
            front.append(token)
        else:
            rest.append(token)
    return front + rest


def value_of(argv: list[str], *names: str) -> str | None:
    """The last value given to option ``names`` before ``--`` (``--name V`` or ``--name=V``)."""
    found = None
    for index, token in enumerate(argv):
        if token == "--":
            break
        if token in names:
            found = argv[index + 1] if index + 1 < len(argv) else ""
        elif token.startswith(tuple(f"{name}=" for name in names if name.startswith("--"))):
            found = token.split("=", 1)[1]
    return found


def wants_json(argv: list[str]) -> bool:
    for index, token in enumerate(argv):
        if token == "--":
            return False
        if token in WITH_VALUE and argv[index + 1:index + 2] == ["json"] or token == "--output=json":
            return True
    return False


def configure_logging(verbosity: int, debug: bool, quiet: bool = False, log_format: str | None = None) -> None:
    """Log lines on stderr. By default only Squall's own warnings (an SSH retry, say), as plain lines;
    none with -q. Library lines too through rich, without source paths: warnings at -v, info at -vv,
    everything at -vvv or --debug (paramiko's noise on a dropped connection stays out otherwise).
    ``--log-format ecs``: one Elastic Common Schema JSON object per line instead, Squall's own at INFO (every
    journal entry) with the organisation, project, user and job it is about."""
    if log_format == "ecs":
        _ecs_logging(logging.DEBUG if debug or verbosity >= 3 else logging.INFO)
        return
    if not verbosity and not debug:  # the common case: no rich import at start-up
        logging.basicConfig(level=logging.CRITICAL)
        squall_log = logging.getLogger("squall")
        squall_log.setLevel(logging.CRITICAL if quiet else logging.WARNING)
        squall_log.addHandler(_StderrNow())
        squall_log.propagate = False
        return
    from rich.console import Console
    from rich.logging import RichHandler

    level = logging.DEBUG if debug or verbosity >= 3 else {1: logging.WARNING, 2: logging.INFO}[verbosity]
    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=verbosity >= 2 or debug)
    logging.basicConfig(level=level, format="%(name)s: %(message)s", handlers=[handler], force=True)


class _StderrNow(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is at the time: under live progress bars rich has swapped it for a
    proxy that prints above the bars."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("squall: %(message)s"))

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def quiet_in(argv: list[str]) -> bool:
    words = argv[:argv.index("--")] if "--" in argv else argv
    return "-q" in words or "--quiet" in words


def verbosity_of(argv: list[str]) -> int:
    count = 0
    for token in argv:
        if token == "--":
            break
        if token == "--verbose":
            count += 1
        elif token.startswith("-v") and set(token[1:]) == {"v"}:
            count += len(token) - 1
    return count


def argv_or_sys(argv: list[str] | None) -> list[str]:
    return list(sys.argv[1:] if argv is None else argv)


def _ecs_logging(level: int) -> None:
    import ecs_logging

    from squall.log_context import ContextFields

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ecs_logging.StdlibFormatter(exclude_fields=["log.original"]))
    handler.addFilter(ContextFields())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("squall").setLevel(level)
