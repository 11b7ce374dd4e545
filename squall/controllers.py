"""Background controllers: a job driven by its own process (``squall job attach``), in its own session, so
it outlives whatever started it (``job run --detach``, the server's request)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def spawn_controller(home: Path, job_id: str, options: tuple[str, ...] = ()) -> None:
    """``options``: the CLI's global options for it (``--log-format ecs``); its log is ``logs/<job>.log``."""
    log_dir = home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{job_id}.log", "ab") as log:
        subprocess.Popen([sys.executable, "-m", "squall.cli.main", "--home", str(home), *options, "job", "attach",
                          job_id],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
