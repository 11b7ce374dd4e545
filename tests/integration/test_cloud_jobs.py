"""Cloud jobs: an ephemeral job stack around the hpc site's staging, launch, monitoring and collection.

The job stack is declared by the real job program under the engine double (no
Pulumi CLI or cloud here); everything after provisioning runs for real, over
SSH, against the test bed's login node standing in for the organisation's head
node. The stack must be destroyed in every case.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml

from squall.enrolment import add_site
from squall.errors import Interrupted, SquallError
from squall.infra import driver, records
from squall.infra.driver import StackName
from squall.infra.orgs import Orgs
from squall.runner import Runner
from squall.runtime import runtime_sha256
from squall.spec import load_spec
from squall.store import Store
from tests.infra.engine_double import RecordingEngine

REPO = Path(__file__).resolve().parents[2]
ORG = StackName("zephy", "org", "main")


@pytest.fixture
def cloud(tmp_path, testbed, remote, monkeypatch):
    """A home with the zephy organisation up (under the double) and a cloud site whose head is the test bed."""
    installed = remote("sha256sum ~/.squall/runtime/current/squall_runtime.py 2>/dev/null || true").stdout.split()
    if not installed or installed[0] != runtime_sha256():
        from squall.enrolment import run_action

        enrol_store = Store(tmp_path / "enrol-home")
        assert run_action(enrol_store, tmp_path / "enrol-home", "testbed", "enrol").exit_code == 0
        enrol_store.close()
    engine = RecordingEngine()
    monkeypatch.setattr(driver, "engine_for", lambda home, backend=None: engine)
    home = tmp_path / "home"
    store = Store(home)
    Orgs(store, engine).up(ORG, lambda _m: None)
    site = tmp_path / "zcloud"
    shutil.copytree(REPO / "inventories" / "testbed", site)
    variables = yaml.safe_load((site / "group_vars" / "all.yml").read_text())
    variables.update(squall_kind="cloud", squall_org_stack=str(ORG))
    (site / "group_vars" / "all.yml").write_text(yaml.safe_dump(variables))
    add_site(store, "zcloud", site)
    runner = Runner(store, home)
    yield runner, store, engine
    runner.close()
    store.close()


def leftovers(remote, testbed) -> list[str]:
    return [f for f in remote(f"ls -A {testbed['work_root']}").stdout.split() if f.startswith("squall-")]


def test_a_cloud_job_runs_through_the_head_node_and_its_stack_is_destroyed(cloud, wind_example, tmp_path, remote,
                                                                           testbed):
    runner, store, engine = cloud
    plan = runner.submit(load_spec(wind_example), "zcloud", tmp_path / "results")
    stack = f"zephy.job.{plan.job_id}"
    result = runner.drive(plan.job_id)
    assert result.job.status == "succeeded", result.job.error
    assert len(list((tmp_path / "results").glob("*/task-*/summary.csv"))) == 4
    assert [c for c in engine.calls if c[1] == stack] == [("up", stack), ("destroy", stack)]
    assert records.stack(store, stack).state == "destroyed"
    phases = [(e.phase, e.event) for e in store.journal(plan.job_id)]
    assert phases.index(("stack", "up-done")) < phases.index(("stage", "begin"))
    assert phases.index(("down", "begin")) < phases.index(("stack", "down-done")) < phases.index(("down", "end"))
    assert leftovers(remote, testbed) == []


def test_the_job_stack_is_placed_on_the_org_network_and_tagged_with_its_expiry(cloud, wind_example, tmp_path):
    runner, store, engine = cloud
    plan = runner.submit(load_spec(wind_example), "zcloud", tmp_path / "results")
    runner.drive(plan.job_id)
    graph = engine.applied[f"zephy.job.{plan.job_id}"]
    nodes = graph.of_type("openstack:compute/instance:Instance")
    assert len(nodes) == 1  # the organisation's job_stack.nodes caps the 4 tasks
    assert nodes[0].props["networks"][0]["uuid"] == "zephy-main-net-id"
    assert nodes[0].props["metadata"]["squall:job"] == plan.job_id
    assert int(nodes[0].props["metadata"]["squall:expires"]) > 0
    ssh = [r for r in graph.of_type("openstack:networking/secGroupRule:SecGroupRule") if "ssh" in r.name]
    assert [r.props["remoteIpPrefix"] for r in ssh] == ["127.0.0.1/32"]  # the head node only


def test_the_stack_is_destroyed_when_its_creation_fails(cloud, wind_example, tmp_path, remote, testbed):
    runner, store, engine = cloud
    engine.fail["up"] = SquallError("pulumi: quota exceeded")
    plan = runner.submit(load_spec(wind_example), "zcloud", tmp_path / "results")
    stack = f"zephy.job.{plan.job_id}"
    report = runner.drive(plan.job_id).job
    assert report.status == "failed" and "quota exceeded" in report.error
    assert ("destroy", stack) in engine.calls
    assert records.stack(store, stack).state == "destroyed"
    assert leftovers(remote, testbed) == []


def test_ctrl_c_while_the_stack_is_created_still_destroys_it(cloud, wind_example, tmp_path, remote, testbed):
    runner, store, engine = cloud
    real_up = engine.up

    def up_then_ctrl_c(stack, program, config, on_event):
        outputs = real_up(stack, program, config, on_event)
        os.kill(os.getpid(), signal.SIGINT)  # the runner's handler raises Interrupted here
        time.sleep(5)
        return outputs
    engine.up = up_then_ctrl_c
    plan = runner.submit(load_spec(wind_example), "zcloud", tmp_path / "results")
    stack = f"zephy.job.{plan.job_id}"
    with pytest.raises(Interrupted):
        runner.drive(plan.job_id)
    assert ("destroy", stack) in engine.calls
    assert records.stack(store, stack).state == "destroyed" and store.job(plan.job_id).status == "cancelled"
    assert leftovers(remote, testbed) == []
    assert records.stack(store, stack).state == "destroyed"
    assert leftovers(remote, testbed) == []


def test_the_stack_is_destroyed_when_the_payload_fails(cloud, make_spec, tmp_path, remote, testbed):
    runner, store, engine = cloud
    spec = make_spec({"name": "boom", "command": "echo bad >&2; exit 7"})
    plan = runner.submit(load_spec(spec), "zcloud", tmp_path / "results")
    assert runner.drive(plan.job_id).job.status == "failed"
    assert ("destroy", f"zephy.job.{plan.job_id}") in engine.calls
    assert leftovers(remote, testbed) == []


def test_job_run_through_the_real_cli_and_automation_adapter(squall, testbed, remote, wind_example, tmp_path):
    """The whole path in a real CLI process: the real Automation API adapter (against a stand-in pulumi that
    records its calls and runs no program), then the job for real on the test bed, then the stack removed."""
    import json as json_module

    from tests.infra.test_driver import STAND_IN, commands

    installed = remote("sha256sum ~/.squall/runtime/current/squall_runtime.py 2>/dev/null || true").stdout.split()
    if not installed or installed[0] != runtime_sha256():
        assert squall.run("site", "enrol", "testbed").returncode == 0
    bin_dir = tmp_path / "pulumi-root" / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy(STAND_IN, bin_dir / "pulumi")
    (bin_dir / "pulumi").chmod(0o755)
    log = tmp_path / "pulumi-calls.jsonl"
    env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "STAND_IN_LOG": str(log)}
    site = tmp_path / "zcloud"
    shutil.copytree(REPO / "inventories" / "testbed", site)
    variables = yaml.safe_load((site / "group_vars" / "all.yml").read_text())
    variables.update(squall_kind="cloud", squall_org_stack=str(ORG))
    (site / "group_vars" / "all.yml").write_text(yaml.safe_dump(variables))
    assert squall.run("site", "add", "zcloud", "--inventory", str(site)).returncode == 0
    assert squall.run("org", "up", "zephy", env=env).returncode == 0
    code, report = squall.json("job", "run", str(wind_example), "--site", "zcloud", env=env)
    assert code == 0 and report["status"] == "succeeded", json_module.dumps(report)
    stack = f"zephy.job.{report['id']}"
    ran = commands(log)
    assert any(c[0] == "up" and c[-2:] == ["--stack", stack] for c in ran)
    assert any(c[0] == "destroy" and c[-2:] == ["--stack", stack] for c in ran)
    assert ["stack", "rm", "--yes", stack] in [c[:4] for c in ran]
    assert leftovers(remote, testbed) == []
