"""Cloud jobs on the multi-host test bed: the job stack's nodes are real machines behind a real head node.

The job stack is declared by the real job program under the engine double (no
Pulumi CLI or cloud here); the double answers the stack's ``nodes`` output
with the test bed's node addresses. Everything after provisioning runs for
real: the boot wait, SSH through the head node as jump host, the runtime
pushed at staging, the nodes' firewall, the runtime slots, collection. The
stack must be destroyed in every case.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from squall.sites.registration import add_site
from squall.errors import Interrupted, SquallError
from squall.infra import driver, records
from squall.infra.driver import StackName
from squall.infra.orgs import Orgs
from squall.runner import Runner
from squall.runtime import BUNDLE_DIGEST_SH, runtime_sha256, runtime_version
from squall.spec import load_spec
from squall.store import Store
from tests.infra.engine_double import RecordingEngine
from tests.integration.conftest import checksums

REPO = Path(__file__).resolve().parents[2]
ORG = StackName("zephy", "org", "main")
KEY = "/var/tmp/squall-testbed/keys/id_ed25519"
WORK_ROOT = "/var/tmp/squall-testbed/scratch/squall-svc"
NODE_ADDRESSES = ["10.250.1.11", "10.250.1.12"]
NOWHERE = "10.250.1.99"  # on the job network, but no machine answers there


def cloud_inventory(folder: Path, boot_timeout: float = 120, **more: object) -> Path:
    """A cloud site whose head node (the jump host) is the test bed's head host."""
    (folder / "group_vars").mkdir(parents=True)
    (folder / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"login": {"hosts": {
        "head": {"ansible_host": "10.250.0.2", "ansible_port": 22}}}}}}))
    (folder / "group_vars" / "all.yml").write_text(yaml.safe_dump({
        "squall_kind": "cloud", "squall_scheduler": "none", "squall_org_stack": str(ORG),
        "squall_work_root": WORK_ROOT, "ansible_user": "squall-svc", "ansible_ssh_private_key_file": KEY,
        "squall_boot_timeout": boot_timeout, **more}))
    return folder


def node_home(nodes: dict, number: int) -> Path:
    return Path(nodes["nodes"][f"node-{number}"]["view"]) / "home"


def booted_mark(nodes: dict, number: int) -> Path:
    return Path(nodes["nodes"][f"node-{number}"]["view"]) / "cloud" / "instance" / "boot-finished"


def job_folders(nodes: dict) -> list[str]:
    return [p.name for n in nodes["nodes"].values() for p in (Path(n["view"]) / "work").glob("squall-*")]


@pytest.fixture
def cloud(tmp_path, nodes, monkeypatch):
    """A home with the zephy organisation up (under the double) and a cloud site whose head is the test bed's."""
    engine = RecordingEngine()
    engine.job_node_addresses = list(NODE_ADDRESSES)
    engine.job_outputs = {"job_user": "squall-svc", "work_root": WORK_ROOT}
    monkeypatch.setattr(driver, "engine_for", lambda home, backend=None: engine)
    home = tmp_path / "home"
    store = Store(home)
    Orgs(store, engine).up(ORG, lambda _m: None)
    add_site(store, "zcloud", cloud_inventory(tmp_path / "zcloud"))
    runner = Runner(store, home)
    yield runner, store, engine, home
    runner.close()
    store.close()
    for number in (1, 2):
        booted_mark(nodes, number).write_text("booted\n")
    assert job_folders(nodes) == []


def local_checksums(tmp_path: Path, spec: Path) -> dict[str, str]:
    store = Store(tmp_path / "local-home")
    runner = Runner(store, tmp_path / "local-home")
    try:
        plan = runner.submit(load_spec(spec), "local", tmp_path / "local-results")
        assert runner.drive(plan.job_id).job.status == "succeeded"
    finally:
        runner.close()
        store.close()
    return checksums(tmp_path / "local-results" / plan.job_id)


def test_a_cloud_job_runs_on_its_stacks_nodes_through_the_head_and_the_stack_is_destroyed(cloud, nodes,
                                                                                       wind_example, tmp_path):
    runner, store, engine, home = cloud
    for number in (1, 2):  # fresh cloud machines: no runtime until the job stages (it leaves it installed)
        shutil.rmtree(node_home(nodes, number) / ".squall" / "runtime", ignore_errors=True)
    plan = runner.submit(load_spec(wind_example), "zcloud", tmp_path / "results")
    stack = f"zephy.job.{plan.job_id}"
    result = runner.drive(plan.job_id)
    assert result.job.status == "succeeded", result.job.error
    assert checksums(tmp_path / "results" / plan.job_id) == local_checksums(tmp_path, wind_example)
    assert [c for c in engine.calls if c[1] == stack] == [("up", stack), ("destroy", stack)]
    assert records.stack(store, stack).state == "destroyed"
    journal = store.journal(plan.job_id)
    phases = [(e.phase, e.event) for e in journal]
    assert phases.index(("stack", "up-done")) < phases.index(("boot", "end")) < phases.index(("stage", "begin"))
    assert phases.index(("down", "begin")) < phases.index(("stack", "down-done")) < phases.index(("down", "end"))
    pushed = next(e.detail["sent"] for e in journal if e.event == "runtime")
    assert pushed == ["node-0", "node-1"]  # fresh machines: the runtime came at staging
    for number in (1, 2):  # (seen from here: the node's home is bound over the account's home there)
        runtimes = node_home(nodes, number) / ".squall" / "runtime"
        installed = subprocess.run(["sh", "-c", BUNDLE_DIGEST_SH], cwd=runtimes / runtime_version(),
                                   capture_output=True, text=True, check=True).stdout.strip()
        assert installed == runtime_sha256()  # the runtime and its scheduler modules
        assert os.readlink(runtimes / "current").endswith(f"/.squall/runtime/{runtime_version()}")
    launched = next(e.detail for e in journal if (e.phase, e.event) == ("launch", "end"))
    assert sorted(launched) == ["node-0", "node-1"] and all(launched.values())  # both nodes ran tasks
    assert not (home / "known_hosts.d" / plan.job_id).exists()  # the job's node keys went with its nodes


def test_a_node_still_booting_is_waited_for(cloud, nodes, make_spec, tmp_path):
    runner, store, engine, home = cloud
    booted_mark(nodes, 1).unlink()  # the job's one node (one task)
    threading.Timer(5, lambda: booted_mark(nodes, 1).write_text("booted\n")).start()
    plan = runner.submit(load_spec(make_spec({"name": "hello", "command": "echo hi"})), "zcloud",
                         tmp_path / "results")
    assert runner.drive(plan.job_id).job.status == "succeeded"
    waited = next(e.detail["seconds"] for e in store.journal(plan.job_id) if (e.phase, e.event) == ("boot", "end"))
    assert waited >= 4
    from squall.sites.registration import open_site

    site = open_site("zcloud", home, store)
    wait, source = site.provisioner.boot_time()  # what the next estimate says: this site's history, not the default
    assert source == "cloud boot: median of this site's last 1" and waited <= wait < waited + 30
    site.close()


def test_a_node_that_never_answers_fails_the_job_by_name_and_the_stack_is_destroyed(squall, nodes, tmp_path,
                                                                                 make_spec):
    """Through the real CLI and the real Automation API adapter (a stand-in pulumi binary answers the outputs)."""
    env = stand_in_pulumi(tmp_path, [NODE_ADDRESSES[0], NOWHERE])
    assert squall.run("site", "add", "zcloud", "--inventory",
                      str(cloud_inventory(tmp_path / "zcloud", boot_timeout=8))).returncode == 0
    assert squall.run("org", "up", "zephy", env=env).returncode == 0
    spec = make_spec({"name": "hello", "command": "echo hi"})
    started = time.monotonic()
    proc = squall.run("job", "run", str(spec), "--site", "zcloud", "--output", "json", env=env, timeout=400)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "failed" and NOWHERE in report["error"] and "did not come up" in report["error"]
    assert time.monotonic() - started < 60, proc.stderr
    ran = stand_in_commands(tmp_path)
    assert any(c[0] == "destroy" and c[-1] == f"zephy.job.{report['id']}" for c in ran)


def stand_in_pulumi(tmp_path: Path, addresses: list[str]) -> dict[str, str]:
    from tests.infra.test_driver import STAND_IN

    bin_dir = tmp_path / "pulumi-root" / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy(STAND_IN, bin_dir / "pulumi")
    (bin_dir / "pulumi").chmod(0o755)
    outputs = {"head_address": "10.250.1.1", "network_id": "zephy-net", "subnet_ids": ["zephy-sub"],
               "intra_cidr": "10.250.1.0/24", "nodes": addresses, "job_user": "squall-svc", "work_root": WORK_ROOT}
    return {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "STAND_IN_LOG": str(tmp_path / "pulumi-calls.jsonl"),
            "STAND_IN_OUTPUTS": json.dumps(outputs)}


def stand_in_commands(tmp_path: Path) -> list[list[str]]:
    from tests.infra.test_driver import commands

    return commands(tmp_path / "pulumi-calls.jsonl")


def test_the_job_stack_is_placed_on_the_org_network_and_tagged_with_its_expiry(cloud, wind_example, tmp_path):
    runner, store, engine, home = cloud
    plan = runner.submit(load_spec(wind_example), "zcloud", tmp_path / "results")
    runner.drive(plan.job_id)
    graph = engine.applied[f"zephy.job.{plan.job_id}"]
    nodes = graph.of_type("openstack:compute/instance:Instance")
    assert len(nodes) == 2  # the organisation's job_stack.nodes caps the 4 tasks
    assert nodes[0].props["networks"][0]["uuid"] == "zephy-main-net-id"
    assert nodes[0].props["metadata"]["squall:job"] == plan.job_id
    assert int(nodes[0].props["metadata"]["squall:expires"]) > 0
    ssh = [r for r in graph.of_type("openstack:networking/secGroupRule:SecGroupRule") if "ssh" in r.name]
    assert [r.props["remoteIpPrefix"] for r in ssh] == ["127.0.0.1/32"]  # the head node only
    assert "squall_runtime" not in nodes[0].props["userData"]  # pushed at staging instead


def test_the_stack_is_destroyed_when_its_creation_fails(cloud, wind_example, tmp_path):
    runner, store, engine, home = cloud
    engine.fail["up"] = SquallError("pulumi: quota exceeded")
    plan = runner.submit(load_spec(wind_example), "zcloud", tmp_path / "results")
    stack = f"zephy.job.{plan.job_id}"
    report = runner.drive(plan.job_id).job
    assert report.status == "failed" and "quota exceeded" in report.error
    assert ("destroy", stack) in engine.calls
    assert records.stack(store, stack).state == "destroyed"


def test_ctrl_c_while_tasks_run_destroys_the_stack(cloud, nodes, make_spec, tmp_path):
    runner, store, engine, home = cloud
    spec = make_spec({"name": "sleepy", "command": "sleep 60", "resources": {"walltime": "00:05:00"}})
    plan = runner.submit(load_spec(spec), "zcloud", tmp_path / "results")
    stack = f"zephy.job.{plan.job_id}"

    def ctrl_c_once_running() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
                (Path(n["view"]) / "work" / f"squall-{plan.job_id}" / "launch.json").exists()
                for n in nodes["nodes"].values()):
            time.sleep(0.3)
        time.sleep(1)
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=ctrl_c_once_running, daemon=True).start()
    with pytest.raises(Interrupted):
        runner.drive(plan.job_id)
    assert ("destroy", stack) in engine.calls
    assert records.stack(store, stack).state == "destroyed" and store.job(plan.job_id).status == "cancelled"
    running = subprocess.run(["pgrep", "-f", f"squall-{plan.job_id}"], capture_output=True, text=True).stdout
    assert running == ""  # nothing of the job runs on after the stack is gone


def test_the_stack_is_destroyed_when_the_payload_fails(cloud, make_spec, tmp_path):
    runner, store, engine, home = cloud
    spec = make_spec({"name": "boom", "command": "echo bad >&2; exit 7"})
    plan = runner.submit(load_spec(spec), "zcloud", tmp_path / "results")
    assert runner.drive(plan.job_id).job.status == "failed"
    assert ("destroy", f"zephy.job.{plan.job_id}") in engine.calls


def test_job_run_through_the_real_cli_and_automation_adapter(squall, nodes, wind_example, tmp_path):
    """The whole path in a real CLI process: the real Automation API adapter (against a stand-in pulumi that
    records its calls, runs no program and answers the test bed's nodes as outputs), then the job for real on
    the nodes, then the stack removed."""
    env = stand_in_pulumi(tmp_path, NODE_ADDRESSES)
    assert squall.run("site", "add", "zcloud", "--inventory", str(cloud_inventory(tmp_path / "zcloud"))).returncode == 0
    assert squall.run("org", "up", "zephy", env=env).returncode == 0
    code, report = squall.json("job", "run", str(wind_example), "--site", "zcloud", env=env)
    assert code == 0 and report["status"] == "succeeded", json.dumps(report)
    stack = f"zephy.job.{report['id']}"
    ran = stand_in_commands(tmp_path)
    assert any(c[0] == "up" and c[-2:] == ["--stack", stack] for c in ran)
    assert any(c[0] == "destroy" and c[-2:] == ["--stack", stack] for c in ran)
    assert ["stack", "rm", "--yes", stack] in [c[:4] for c in ran]
    assert job_folders(nodes) == []


def test_a_job_no_machine_of_the_organisation_fits_is_refused_before_anything_is_made(cloud, make_spec, tmp_path):
    from squall.errors import Refused

    runner, store, engine, home = cloud
    spec = make_spec({"name": "big", "command": "nvidia-smi", "resources": {"gpus": 4}})
    with pytest.raises(Refused, match="no GPU machine for a task asking 4 GPU"):
        runner.submit(load_spec(spec), "zcloud", tmp_path / "results")
    assert [c for c in engine.calls if ".job." in c[1]] == []
    assert store.jobs() == []


def test_a_bank_vm_is_claimed_through_the_head_runs_the_job_and_is_released(cloud, nodes, wind_example, tmp_path):
    """Two idle VMs in zephy's bank: the first does not answer (probed through the head, it is retired), the
    second is a test bed node; the job runs there with no job stack, then the VM is released (destroyed,
    the bank refilled)."""
    runner, store, engine, home = cloud
    records.add_bank_vms(store, "zephy", "cfd", [100, 101], {100: NOWHERE, 101: "10.250.1.13"})
    add_site(store, "zbank", cloud_inventory(tmp_path / "zbank", squall_bank="cfd", squall_node_user="squall-svc",
                                             squall_node_work_root=WORK_ROOT))
    plan = runner.submit(load_spec(wind_example), "zbank", tmp_path / "results")
    result = runner.drive(plan.job_id)
    assert result.job.status == "succeeded", result.job.error
    assert checksums(tmp_path / "results" / plan.job_id) == local_checksums(tmp_path, wind_example)
    assert [c for c in engine.calls if ".job." in c[1]] == []  # no job stack
    vms = {vm.slot: vm for vm in records.bank_vms(store, "zephy", "cfd", ("idle", "claimed", "retired"))}
    assert vms[100].state == "retired" and vms[101].state == "retired"  # unreachable; released after the job
    journal = [(e.phase, e.event) for e in store.journal(plan.job_id)]
    assert ("bank", "claimed") in journal and ("bank", "released") in journal
    assert engine.calls[-1] == ("up", "zephy.org.main")  # the release refilled the bank
    assert any(e.event == "unreachable" and e.detail["vm"] == vms[100].id for e in store.journal())


def test_an_mpi_task_spans_the_job_stacks_nodes_and_their_key_goes_with_them(cloud, nodes, tmp_path):
    runner, store, engine, home = cloud
    example = tmp_path / "heat-mpi"
    shutil.copytree(REPO / "examples" / "heat-mpi", example)
    plan = runner.submit(load_spec(example / "job.yaml"), "zcloud", tmp_path / "results")
    result = runner.drive(plan.job_id)
    assert result.job.status == "succeeded", result.job.error
    up = next(e.detail for e in store.journal(plan.job_id) if (e.phase, e.event) == ("stack", "up"))
    assert up["nodes"] == 2  # 2 tasks of 2 nodes, at most the organisation's 2 per job stack
    outputs = sorted((tmp_path / "results" / plan.job_id).glob("task-*/plate-*.json"))
    assert len(outputs) == 4
    assert all(json.loads(p.read_text())["hosts"] == ["node-1", "node-2"] for p in outputs)
    for number in (1, 2):
        assert "squall-job-" not in (node_home(nodes, number) / ".ssh" / "authorized_keys").read_text()
    assert job_folders(nodes) == []
