"""Outside validators for what the programs render (Debian packages, installed on demand as root)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

TOOLS = {"cloud-init": "cloud-init", "nft": "nftables"}


@pytest.fixture(scope="session")
def validators() -> None:
    """``cloud-init`` (schema check) and ``nft`` (rule-set check) on PATH."""
    missing = [pkg for tool, pkg in TOOLS.items() if not (shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}"))]
    if missing and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env, check=True, capture_output=True)
    elif missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian packages; CI installs them as root)")
