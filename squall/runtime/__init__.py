"""The runtime program shipped to every site, and facts about it.

``squall_runtime.py`` is stdlib-only and self-contained; the controller never
imports it, it copies or executes the file.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from pathlib import Path

RUNTIME_FILE = "squall_runtime.py"


def runtime_path() -> Path:
    return Path(str(resources.files(__package__).joinpath(RUNTIME_FILE)))


@cache
def runtime_sha256() -> str:
    return hashlib.sha256(runtime_path().read_bytes()).hexdigest()


@cache
def runtime_version() -> str:
    for line in runtime_path().read_text().splitlines():
        if line.startswith("RUNTIME_VERSION = "):
            return line.split("=", 1)[1].strip().strip('"')
    raise RuntimeError("runtime file has no RUNTIME_VERSION")
