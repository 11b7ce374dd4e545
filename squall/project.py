"""Where Squall's non-Python files live: roles/, templates/, inventories/ and stacks/.

Installed from a wheel they are package data under ``squall/share/``; in a
clone (``pip install -e .``) they sit at the top of the repository, where
Ansible, ansible-lint and ``Pulumi.yaml`` expect them. ``$SQUALL_PROJECT_DIR``
points elsewhere (a folder holding the same four).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from squall.errors import MissingDependency

PACKAGE = Path(__file__).resolve().parent
CANDIDATES = (PACKAGE / "share", PACKAGE.parent)  # installed from a wheel; a clone


@cache
def project_dir() -> Path:
    chosen = os.environ.get("SQUALL_PROJECT_DIR")
    candidates = (Path(chosen),) if chosen else CANDIDATES
    for candidate in candidates:
        if (candidate / "roles").is_dir():
            return candidate
    raise MissingDependency(
        f"Squall's roles/ folder is not in {' or '.join(str(c) for c in candidates)}",
        hint="reinstall Squall ('pip install squall' or, from a clone, 'pip install -e .'), "
             "or set SQUALL_PROJECT_DIR to a folder holding roles/, templates/, inventories/ and stacks/",
    )
