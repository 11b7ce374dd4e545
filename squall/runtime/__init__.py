"""The runtime program shipped to every site, and facts about it.

``squall_runtime.py`` is stdlib-only and self-contained; the controller never
imports it, it copies or executes the file.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

RUNTIME_FILE = "squall_runtime.py"


def runtime_path() -> Path:
    return Path(str(resources.files(__package__).joinpath(RUNTIME_FILE)))


def runtime_sha256(path: Path | None = None) -> str:
    return hashlib.sha256((path or runtime_path()).read_bytes()).hexdigest()


def runtime_version(path: Path | None = None) -> str:
    """The ``RUNTIME_VERSION`` a runtime file declares (this package's by default)."""
    for line in (path or runtime_path()).read_text().splitlines():
        if line.startswith("RUNTIME_VERSION = "):
            return line.split("=", 1)[1].strip().strip('"')
    raise ValueError(f"{path or runtime_path()} declares no RUNTIME_VERSION")
