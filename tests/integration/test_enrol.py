"""Enrolment against the real Slurm test bed, through the real CLI."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from squall.runtime import BUNDLE_DIGEST_SH, runtime_path, runtime_sha256, runtime_version
from tests.integration.conftest import runtime_copy

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_site(squall, testbed, remote):
    """Start every test from an unenrolled test bed."""
    proc = squall.run("site", "unenrol", "testbed", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert remote("test -e ~/.squall && echo present || echo absent").stdout.strip() == "absent"
    return squall


def site_copy(tmp_path: Path, name: str, hosts: dict | None = None, group_vars: dict | None = None) -> Path:
    """A copy of the testbed inventory (common layer included) with some variables changed."""
    root = tmp_path / "inventories"
    shutil.copytree(REPO / "inventories" / "common", root / "common")
    shutil.copytree(REPO / "inventories" / "testbed", root / name)
    if hosts:
        path = root / name / "hosts.yml"
        data = yaml.safe_load(path.read_text())
        data["all"]["children"]["login"]["hosts"]["testbed-login"].update(hosts)
        path.write_text(yaml.safe_dump(data))
    if group_vars:
        path = root / name / "group_vars" / "all.yml"
        path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **group_vars}))
    return root / name


def owned_outside(testbed) -> set[str]:
    """Files and folders owned by the service account outside its home and the work root."""
    account = pwd.getpwnam(testbed["user"])
    found = subprocess.run(
        ["find", "/", "/tmp", "/var/tmp", "/dev/shm", "-xdev",
         "(", "-path", "/proc", "-o", "-path", "/sys", "-o", "-path", account.pw_dir, "-o",
         "-path", testbed["work_root"], ")", "-prune", "-o", "-user", testbed["user"], "-print"],
        capture_output=True, text=True,
    ).stdout.split()
    return set(found)


def test_enrol_passes_and_a_second_run_changes_nothing(clean_site, testbed, remote):
    squall = clean_site
    before = owned_outside(testbed)
    code, first = squall.json("site", "enrol", "testbed")
    assert code == 0, first
    assert first["status"] == "ok" and first["changed"] > 0
    assert {c["name"] for c in first["checks"]} >= {
        "slurm_commands", "partitions", "python_login", "python_compute", "work_root",
        "work_root_free_space", "work_root_free_inodes", "container_runtimes", "gpus", "compute_network"}
    assert all(c["status"] in ("ok", "skipped") for c in first["checks"]), first["checks"]
    assert first["runtime"]["version"] == runtime_version()
    assert first["health"]["status"] == "ok" and float(first["health"]["latency_s"]) >= 0
    installed = remote("sha256sum ~/.squall/runtime/current/squall_runtime.py").stdout.split()[0]
    assert installed == __import__("hashlib").sha256(runtime_path().read_bytes()).hexdigest()
    assert remote(f"cd ~/.squall/runtime/current && {BUNDLE_DIGEST_SH}").stdout.strip() == runtime_sha256()
    assert owned_outside(testbed) == before, "enrol wrote outside the account's home and work root"
    assert "squall-" not in remote(f"ls -A {testbed['work_root']}").stdout  # the health job cleaned up

    code, second = squall.json("site", "enrol", "testbed")
    assert code == 0 and second["status"] == "ok"
    assert second["changed"] == 0, second

    code, shown = squall.json("site", "show", "testbed")
    found = shown["discovered"]
    assert found["partitions"] == {"debug": "up", "long": "up"}
    assert found["runtime"]["version"] == runtime_version()
    assert found["health"]["status"] == "ok" and found["health"]["at"] <= time.time()
    text = squall.run("site", "show", "testbed").stdout
    assert "runtime: " + runtime_version() in text and "last health: ok" in text
    assert "discovered partitions: debug up, long up" in text  # words, not Python reprs
    assert "{" not in text and "[" not in text


def test_check_names_missing_slurm_commands_and_installs_nothing(clean_site, tmp_path, testbed, remote):
    squall = clean_site
    bare = Path(testbed["dir"]) / "bare-path"
    bare.mkdir(exist_ok=True)
    if not (bare / "python3").exists():
        (bare / "python3").symlink_to(shutil.which("python3") or "/usr/bin/python3")
    site = site_copy(tmp_path, "noslurm", group_vars={"squall_remote_path": str(bare)})
    assert squall.run("site", "add", "noslurm", "--inventory", str(site)).returncode == 0
    code, report = squall.json("site", "enrol", "noslurm")
    assert code == 1 and report["status"] == "failed"
    commands = next(c for c in report["checks"] if c["name"] == "slurm_commands")
    assert commands["status"] == "failed"
    assert commands["value"] == "missing: sbatch, squeue, scancel, scontrol, sinfo"
    assert "slurm_commands" in report["error"]
    assert remote("test -e ~/.squall && echo present || echo absent").stdout.strip() == "absent"


def test_unreachable_host_exits_5_quickly(squall, tmp_path, testbed):
    site = site_copy(tmp_path, "nowhere", hosts={"ansible_port": 1})
    squall.run("site", "add", "nowhere", "--inventory", str(site))
    started = time.monotonic()
    code, report = squall.json("site", "check", "nowhere")
    assert code == 5 and "unreachable" in report["error"]
    assert time.monotonic() - started < 60


def test_wrong_key_exits_5_naming_authentication(squall, tmp_path, testbed):
    key = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    site = site_copy(tmp_path, "wrongkey", hosts={"ansible_ssh_private_key_file": str(key)})
    squall.run("site", "add", "wrongkey", "--inventory", str(site))
    code, report = squall.json("site", "check", "wrongkey")
    assert code == 5 and "authentication failed" in report["error"]


@pytest.mark.parametrize("change, message", [
    ({"squall_partitions": [{"name": "debug", "max_walltime": "soon", "max_cpus_per_task": 1,
                             "price": {"per_job": 0, "per_core_hour": 0}}]}, "squall_partitions[0].max_walltime"),
    ({"squall_work_rot": "/x"}, "squall_work_rot: unknown Squall variable; did you mean 'squall_work_root'?"),
    ({"squall_work_root": "relative/path"}, "squall_work_root"),
    ({"squall_gpu_partitions": ["gpu"]}, "'gpu' is not in squall_partitions"),
])
def test_invalid_inventory_exits_2_naming_the_field(squall, tmp_path, change, message):
    site = site_copy(tmp_path, "broken", group_vars=change)
    proc = squall.run("site", "add", "broken", "--inventory", str(site))
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert squall.run("site", "list").stdout.count("broken") == 0


def test_runtime_upgrade_then_rollback(clean_site, tmp_path, remote):
    squall = clean_site
    code, report = squall.json("site", "enrol", "testbed")
    assert code == 0
    newer = runtime_copy(tmp_path / "newer", "9.9.9-test")
    code, upgraded = squall.json("site", "enrol", "testbed", "--runtime-file", str(newer))
    assert code == 0, upgraded
    assert upgraded["runtime"]["version"] == "9.9.9-test"
    assert upgraded["runtime"]["previous"] == runtime_version()
    assert upgraded["health"]["runtime_version"] == "9.9.9-test"
    code, rolled = squall.json("site", "enrol", "testbed", "--rollback")
    assert code == 0, rolled
    assert rolled["runtime"]["version"] == runtime_version()
    assert rolled["runtime"]["previous"] == "9.9.9-test"
    assert rolled["health"]["runtime_version"] == runtime_version()
    versions = remote("ls ~/.squall/runtime").stdout.split()
    assert sorted(versions) == sorted(["9.9.9-test", runtime_version(), "current", "previous"])


def test_unenrol_removes_only_what_squall_owns(clean_site, testbed, remote):
    squall = clean_site
    assert squall.run("site", "enrol", "testbed").returncode == 0
    remote("echo mine > ~/my-notes.txt")
    work = testbed["work_root"]
    others = {entry for entry in remote(f"ls -A {work}").stdout.split() if not entry.startswith("squall-")}
    remote(f"mkdir -p {work}/squall-leftover {work}/my-data && touch {work}/my-data/keep")
    squall_job = remote(f"sbatch --parsable -J squall-orphan -o /dev/null --chdir {work} --wrap 'sleep 300'").stdout.strip()
    own_job = remote(f"sbatch --parsable -J my-analysis -o /dev/null --chdir {work} --wrap 'sleep 300'").stdout.strip()
    try:
        code, report = squall.json("site", "unenrol", "testbed", "--yes")
        assert code == 0, report
        assert report["unenrol"]["cancelled_jobs"] == [squall_job]
        queue = remote("squeue -h -o '%i %j %T'").stdout
        assert own_job in queue
        assert squall_job not in queue or "CANCELLED" in queue or "COMPLETING" in queue
        assert remote("test -e ~/.squall && echo present || echo absent").stdout.strip() == "absent"
        assert set(remote(f"ls -A {work}").stdout.split()) == others | {"my-data"}
        assert remote(f"cat {work}/my-data/keep && echo kept").stdout.strip() == "kept"
        assert remote("cat ~/my-notes.txt").stdout == "mine\n"
    finally:
        remote(f"scancel {own_job}; rm -rf ~/my-notes.txt {work}/my-data", check=False)


def test_no_ssh_connection_lingers_after_a_run(squall, testbed):
    code, report = squall.json("site", "check", "testbed")
    assert code == 0, report
    lingering = subprocess.run(["pgrep", "-af", "squall-ansible-"], capture_output=True, text=True).stdout
    assert lingering.strip() == "", f"ssh control masters left running: {lingering}"
    leftovers = list(Path(os.environ.get("TMPDIR", "/tmp")).glob("squall-ansible-*"))
    assert leftovers == [], leftovers


def test_an_inventory_copied_alone_outside_the_project_checks_cleanly(squall, tmp_path, testbed):
    """No sibling common/: Squall's defaults (squall_min_free_gb...) must reach the roles as well."""
    folder = tmp_path / "elsewhere" / "alone"
    shutil.copytree(REPO / "inventories" / "testbed", folder)
    assert squall.run("site", "add", "alone", "--inventory", str(folder)).returncode == 0
    proc = squall.run("site", "check", "alone", "--output", "json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "undefined" not in proc.stdout
