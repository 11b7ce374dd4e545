"""Durations Squall reads from its environment (``SQUALL_LEASE_MARGIN`` and the others in the README's
table): a value that is not a number of seconds, empty included, is the user's input error (exit 2, naming
the variable), not a traceback."""

from __future__ import annotations

import math
import os

from squall.errors import InvalidInput

# every duration read with ``env_seconds`` (the README's table): checked when a command starts, so a bad value
# stops it before anything is made, not halfway through a job
DURATIONS = ("SQUALL_LEASE_MARGIN", "SQUALL_SLURM_LOST_AFTER", "SQUALL_KEEP_UNCOLLECTED", "SQUALL_STORE_WAIT",
             "SQUALL_GC_SITE_TIMEOUT")


def env_seconds(name: str, default: float) -> float:
    """``$name`` as seconds (0 or more), ``default`` when it is unset. Set but empty is an error, as for every
    variable in the README's table."""
    if name not in os.environ:
        return float(default)
    text = os.environ[name].strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(f"{name}={text!r}: a number of seconds (0 or more)",
                           hint=f"unset {name} to use its default")
    return value


def check_durations() -> None:
    """Raise ``InvalidInput`` for the first duration variable set to something other than seconds."""
    for name in DURATIONS:
        env_seconds(name, 0)
