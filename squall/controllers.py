"""Background controllers: a job driven by its own process (``squall job attach``), in its own session, so
it outlives whatever started it (``job run --detach``, the server's request)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from squall.interrupts import DETACHED_ENV


def spawn_controller(home: Path, job_id: str, options: tuple[str, ...] = ()) -> None:
    """``options``: the CLI's global options for it (``--log-format ecs``); its log is ``logs/<job>.log``."""
    log_dir = home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{job_id}.log", "ab") as log:
        # -P: the server's current folder (a clone holding squall/) must not shadow the installed package
        subprocess.Popen([sys.executable, "-P", "-m", "squall.cli.main", "--home", str(home), *options, "job",
                          "attach", job_id],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                         env={**os.environ, DETACHED_ENV: "1"})  # a hangup it receives is not a closed terminal
