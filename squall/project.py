"""Where the project's non-Python files live: roles/, inventories/, templates/.

Squall is installed from a clone (``pip install -e .``), so these folders sit
beside the ``squall`` package; ``$SQUALL_PROJECT_DIR`` points elsewhere.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from squall.errors import MissingDependency


@cache
def project_dir() -> Path:
    candidate = Path(os.environ.get("SQUALL_PROJECT_DIR") or Path(__file__).resolve().parent.parent)
    if not (candidate / "roles").is_dir():
        raise MissingDependency(
            f"Squall's roles/ folder is not at {candidate}",
            hint="install Squall from a clone with 'pip install -e .', or set SQUALL_PROJECT_DIR",
        )
    return candidate
