"""Squall as users install it: a built wheel in a fresh venv, and ``pipx install .`` — no clone on the path.

The wheel must carry everything besides Python code (roles, templates, inventories, stack files, the
runtime, the policy pack): it runs the example job on the local site and enrols the real test bed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Squall

REPO = Path(__file__).resolve().parents[2]


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    """A fresh venv holding Squall's wheel with the operator extra (dependencies from the package index)."""
    root = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(REPO))
    (wheel,) = (root / "dist").glob("squall-*.whl")
    run(sys.executable, "-m", "venv", str(root / "venv"))
    run(str(root / "venv" / "bin" / "pip"), "install", "-q", f"{wheel}[operator]")
    return root / "venv"


def installed(venv: Path, tmp_path: Path) -> Squall:
    work = tmp_path / "work"
    work.mkdir()
    squall = Squall(tmp_path / "home", work, [str(venv / "bin" / "squall")])
    squall.env.pop("PYTHONPATH", None)
    return squall


def test_the_wheel_holds_its_data_and_runs_the_example_job(wheel_venv, tmp_path):
    squall = installed(wheel_venv, tmp_path)
    where = run(str(wheel_venv / "bin" / "python"), "-c", "import squall.project as p; print(p.project_dir())",
                cwd=tmp_path, env=squall.env).stdout.strip()
    assert where.startswith(str(wheel_venv)) and where.endswith("squall/share")
    for folder in ("roles/squall_runtime/tasks", "templates/slurm", "inventories/common", "stacks"):
        assert (Path(where) / folder).is_dir(), folder
    assert (Path(where).parent / "programs" / "policy_pack" / "PulumiPolicy.yaml").is_file()
    code, report = squall.json("job", "run", str(REPO / "examples" / "wind-stats" / "job.yaml"))
    assert code == 0 and report["status"] == "succeeded" and len(report["tasks"]) == 4


def test_the_wheel_checks_and_enrols_the_test_bed(wheel_venv, tmp_path, testbed):
    squall = installed(wheel_venv, tmp_path)
    code, check = squall.json("site", "check", "testbed")
    assert code == 0, check
    code, enrolled = squall.json("site", "enrol", "testbed")
    assert code == 0 and enrolled["status"] == "ok", enrolled
    shown = squall.json("site", "show", "testbed")[1]
    assert shown["inventory"].startswith(str(wheel_venv)), shown


def test_pipx_install_from_the_clone_runs_the_example_job(tmp_path):
    env = {**os.environ, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin"),
           "PIPX_MAN_DIR": str(tmp_path / "man")}
    run(sys.executable, "-m", "pipx", "install", "--python", sys.executable, str(REPO), env=env, cwd=tmp_path)
    squall = installed(Path(env["PIPX_HOME"]) / "venvs" / "squall", tmp_path)
    code, report = squall.json("job", "run", str(REPO / "examples" / "wind-stats" / "job.yaml"))
    assert code == 0 and report["status"] == "succeeded"


def test_without_the_operator_extra_enrolment_names_it(tmp_path):
    """The core install (no Ansible) runs jobs; site commands say which extra they need."""
    probe = ("import sys; sys.modules['ansible_runner'] = None\n"
             "from squall.ansible import run_roles\n"
             "from squall.errors import MissingDependency\n"
             "try:\n    run_roles([], [], None)\n"
             "except MissingDependency as exc:\n    print(exc, '|', exc.hint)\n")
    out = run(sys.executable, "-c", probe, cwd=REPO).stdout
    assert "operator extra" in out and "squall[operator]" in out, out
