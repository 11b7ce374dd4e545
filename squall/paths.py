"""Where Squall keeps its state on the controller machine."""

from __future__ import annotations

import os
from pathlib import Path


def squall_home(override: str | os.PathLike | None = None) -> Path:
    """``--home`` beats ``$SQUALL_HOME`` beats ``$XDG_STATE_HOME/squall``."""
    if override:
        return Path(override).expanduser().resolve()
    if os.environ.get("SQUALL_HOME"):
        return Path(os.environ["SQUALL_HOME"]).expanduser().resolve()
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return (Path(state) / "squall").resolve()


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by its owner only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def uploads_dir(home: Path) -> Path:
    """Where ``squall server`` keeps each submission's spec and files (one folder a job) until the job ends."""
    return home / "server" / "uploads"


def is_upload(home: Path, folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is one submission's folder under the home's uploads (nothing else is ever removed)."""
    root, path = uploads_dir(home).resolve(), Path(folder).resolve()
    return path.parent == root
