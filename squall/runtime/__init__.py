"""The runtime program shipped to every site, and facts about it.

``squall_runtime.py`` is stdlib-only and self-contained but for the scheduler
modules beside it (``schedulers/<name>.py``: what the runtime asks one batch
scheduler). The runtime and those modules travel together as one *bundle*,
known by one digest: the sha256 of their ``sha256sum`` listing (the runtime
first, then each scheduler module in name order), which a site computes with
coreutils alone (``BUNDLE_DIGEST_SH``). The controller never imports them, it
copies or executes the files.
"""

from __future__ import annotations

import ast
import hashlib
from importlib import resources
from pathlib import Path

RUNTIME_FILE = "squall_runtime.py"
SCHEDULERS = "schedulers"
# run inside an installed version's folder: prints the bundle's digest (the same as ``runtime_sha256``)
BUNDLE_DIGEST_SH = ('{ LC_ALL=C sha256sum squall_runtime.py; for f in schedulers/*.py; do [ ! -f "$f" ] '
                    '|| LC_ALL=C sha256sum "$f"; done; } | sha256sum | cut -d" " -f1')


def runtime_path() -> Path:
    return Path(str(resources.files(__package__).joinpath(RUNTIME_FILE)))


def bundle_files(path: Path | None = None) -> dict[str, Path]:
    """The bundle of the runtime at ``path`` (this package's by default): its files by their path in an
    installed version's folder, the runtime first, then ``schedulers/*.py`` beside it in name order."""
    runtime = path or runtime_path()
    folder = runtime.parent / SCHEDULERS
    modules = sorted(folder.glob("*.py")) if folder.is_dir() else []
    return {RUNTIME_FILE: runtime, **{f"{SCHEDULERS}/{m.name}": m for m in modules if m.name != "__init__.py"}}


def runtime_sha256(path: Path | None = None) -> str:
    """The bundle's digest: what ``BUNDLE_DIGEST_SH`` prints in a folder holding the same files."""
    listing = "".join(f"{hashlib.sha256(file.read_bytes()).hexdigest()}  {name}\n"
                      for name, file in bundle_files(path).items())
    return hashlib.sha256(listing.encode()).hexdigest()


def scheduler_names() -> list[str]:
    """The batch schedulers a site may name (``squall_scheduler``): one module each beside the runtime."""
    return [name.split("/", 1)[1].removesuffix(".py") for name in bundle_files() if name != RUNTIME_FILE]


def scheduler_commands() -> dict[str, list[str]]:
    """Each scheduler's commands the site check looks for (its module's ``COMMANDS``), read without importing
    the module: the controller never runs the site's code."""
    commands = {}
    for name, file in bundle_files().items():
        if name == RUNTIME_FILE:
            continue
        for node in ast.parse(file.read_text()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "COMMANDS" for t in node.targets):
                commands[name.split("/", 1)[1].removesuffix(".py")] = list(ast.literal_eval(node.value))
    return commands


def runtime_version(path: Path | None = None) -> str:
    """The ``RUNTIME_VERSION`` a runtime file declares (this package's by default)."""
    for line in (path or runtime_path()).read_text().splitlines():
        if line.startswith("RUNTIME_VERSION = "):
            return line.split("=", 1)[1].strip().strip('"')
    raise ValueError(f"{path or runtime_path()} declares no RUNTIME_VERSION")
