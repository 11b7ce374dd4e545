"""An HPC site behind a jump host (``squall_jump_host``), on the real test bed.

The test bed's own sshd serves as the jump host (a ``direct-tcpip`` channel from
it back to its login port). That the hop is really used is shown the other way
round too: with the jump host's port closed, the same login node — which is up
— cannot be reached, and the error names the jump host.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.integration.conftest import checksums, leftovers

REPO = Path(__file__).resolve().parents[2]


def behind_jump(tmp_path: Path, testbed: dict, name: str, jump_port: int) -> Path:
    folder = tmp_path / "inventories" / name
    shutil.copytree(REPO / "inventories" / "testbed", folder)
    group_vars = folder / "group_vars" / "all.yml"
    data = yaml.safe_load(group_vars.read_text())
    data["squall_jump_host"] = {"host": testbed["host"], "port": jump_port, "user": testbed["user"],
                                "private_key_file": testbed["key"]}
    group_vars.write_text(yaml.safe_dump(data))
    return folder


def test_a_job_and_a_site_check_through_the_jump_host(hpc, tmp_path, testbed, wind_example, remote):
    folder = behind_jump(tmp_path, testbed, "via-jump", testbed["port"])
    assert hpc.run("site", "add", "via-jump", "--inventory", str(folder)).returncode == 0
    check = hpc.run("site", "check", "via-jump")
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    code, report = hpc.json("job", "run", str(wind_example), "--site", "via-jump", "--results", "jump")
    assert code == 0 and report["status"] == "succeeded", report
    code, local = hpc.json("job", "run", str(wind_example), "--results", "local")
    assert checksums(Path(report["results"])) == checksums(Path(local["results"]))
    assert leftovers(remote, testbed) == ([], [])


def test_a_closed_jump_host_is_named_even_though_the_login_node_is_up(hpc, tmp_path, testbed, make_spec):
    folder = behind_jump(tmp_path, testbed, "bad-jump", 1)
    assert hpc.run("site", "add", "bad-jump", "--inventory", str(folder)).returncode == 0
    spec = make_spec({"name": "x", "command": "true"})
    proc = hpc.run("job", "run", str(spec), "--site", "bad-jump")
    assert proc.returncode == 5, proc.stderr
    assert f"jump host {testbed['user']}@{testbed['host']}:1" in proc.stderr
    assert hpc.job_count() == 0
    check = hpc.run("site", "check", "bad-jump", "--output", "json")
    assert check.returncode == 5, check.stdout[-2000:]
