"""The real Slurm test bed, started once per test session (tests/testbed/testbed)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from squall.runtime import BUNDLE_DIGEST_SH, runtime_sha256

TESTBED = Path(__file__).resolve().parents[1] / "testbed" / "testbed"
REPO_INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"


@pytest.fixture(scope="session")
def testbed() -> dict:
    """Bring the test bed up (installing Slurm if needed); stop it after, unless it was already up."""
    if os.geteuid() != 0:
        pytest.skip("the Slurm test bed needs root (it installs packages and starts daemons); CI runs as root")
    was_up = subprocess.run([str(TESTBED), "status"], capture_output=True).returncode == 0
    proc = subprocess.run([str(TESTBED), "up"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    yield json.loads(proc.stdout)
    if not was_up:
        subprocess.run([str(TESTBED), "down"], capture_output=True, timeout=120)


@pytest.fixture
def remote(testbed):
    """Run a shell command on the test bed's login node as the service account."""

    def run(command: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["ssh", "-i", testbed["key"], "-p", str(testbed["port"]), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
             f"{testbed['user']}@{testbed['host']}", command],
            capture_output=True, text=True, timeout=120,
        )
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    return run


class SlurmAccounting:
    """``sacctmgr -i`` as root on the test bed; every change made through ``change`` is undone after the test."""

    def __init__(self, testbed: dict):
        self.env = {**os.environ, "SLURM_CONF": testbed["slurm_conf"]}
        self.undo: list[tuple[str, ...]] = []

    def run(self, *words: str) -> str:
        proc = subprocess.run(["sacctmgr", "-i", *words], capture_output=True, text=True, env=self.env, timeout=60)
        assert proc.returncode == 0 or "Nothing new added" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        return proc.stdout

    def change(self, words: tuple[str, ...], undo: tuple[str, ...]) -> None:
        self.run(*words)
        self.undo.append(undo)

    def close(self) -> None:
        for words in reversed(self.undo):
            self.run(*words)


@pytest.fixture
def slurm_accounting(testbed):
    accounting = SlurmAccounting(testbed)
    yield accounting
    accounting.close()


@pytest.fixture
def hpc(squall, testbed, remote):
    """A Squall home that can run jobs on the enrolled test bed; checks nothing is left after."""
    installed = remote(f"cd ~/.squall/runtime/current 2>/dev/null && {BUNDLE_DIGEST_SH} || true").stdout.split()
    if not installed or installed[0] != runtime_sha256():
        proc = squall.run("site", "enrol", "testbed")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    # what an earlier, interrupted test run may have left (each test then asserts it leaves nothing)
    remote(f"scancel --name=$(squeue -h -o %j | grep ^squall- | sort -u | paste -sd,) 2>/dev/null; "
           f"rm -rf {testbed['work_root']}/squall-*", check=False)
    return squall


def runtime_copy(folder: Path, version: str) -> Path:
    """This runtime as another version would be: the file with ``version`` declared, its scheduler modules
    beside it (a build ships them together); returns the file."""
    import shutil

    from squall.runtime import bundle_files, runtime_path, runtime_version

    for name, source in bundle_files().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, folder / name)
    (folder / "squall_runtime.py").write_text(runtime_path().read_text().replace(
        f'RUNTIME_VERSION = "{runtime_version()}"', f'RUNTIME_VERSION = "{version}"'))
    return folder / "squall_runtime.py"


def leftovers(remote, testbed) -> tuple[list[str], list[str]]:
    folders = remote(f"ls -A {testbed['work_root']}").stdout.split()
    jobs = remote("squeue -h -o '%j %T'").stdout.splitlines()
    return [f for f in folders if f.startswith("squall-")], [j for j in jobs if j.startswith("squall-")]


def checksums(results: Path) -> dict[str, str]:
    return {str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(results.glob("task-*/**/*")) if p.is_file()}


@pytest.fixture(scope="session")
def nodes(testbed, tmp_path_factory) -> dict:
    """The head and three job nodes, up and enrolled once per session."""
    from tests.conftest import Squall

    proc = subprocess.run([sys.executable, str(TESTBED), "up", "--nodes", "3"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)["nodes"]
    operator = Squall(tmp_path_factory.mktemp("operator") / "home", tmp_path_factory.mktemp("work"))
    enrol = operator.run("site", "enrol", "testbed-nodes", timeout=600)
    assert enrol.returncode == 0, enrol.stdout[-3000:] + enrol.stderr[-3000:]
    return facts
