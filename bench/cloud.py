"""Benchmarks of cloud jobs: the overhead after provisioning, and ``squall org validate``.

The job stack comes from the engine double (the one stand-in at the driver's
boundary: no Pulumi CLI or cloud here), which answers the stack's nodes with
the multi-host test bed's machines; from the boot wait to ``down`` everything
is real. The baseline, measured in the same run, is the hand-written
jump-host script of ``nodes.py`` doing the same 4 no-op tasks on 2 nodes.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import yaml

from nodes import Hand, _figure, noop_by_hand  # noqa: E402  (beside this file)

REPO = Path(__file__).resolve().parent.parent
WORK_ROOT = "/var/tmp/squall-testbed/scratch/squall-svc"


def cloud_figures(runs: int, home: Path, work: Path, testbed: dict) -> dict:
    """``testbed``: what ``testbed up --nodes 3`` printed (its ``nodes``: the head and the job nodes)."""
    from squall.sites.registration import add_site
    from squall.infra import driver
    from squall.infra.driver import StackName
    from squall.infra.orgs import Orgs
    from squall.runner import Runner
    from squall.spec import load_spec
    from squall.store import Store
    from tests.infra.engine_double import RecordingEngine

    engine = RecordingEngine()
    machines = testbed["nodes"]
    engine.job_node_addresses = [machines["nodes"]["node-1"]["host"], machines["nodes"]["node-2"]["host"]]
    engine.job_outputs = {"job_user": testbed["user"], "work_root": WORK_ROOT}
    driver.engine_for = lambda home, backend=None: engine  # the stand-in, for this process only
    store = Store(home)
    Orgs(store, engine).up(StackName("zephy", "org", "main"), lambda _message: None)
    site = work / "bench-cloud"
    (site / "group_vars").mkdir(parents=True)
    (site / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"login": {"hosts": {"head": {
        "ansible_host": machines["head"]["host"], "ansible_port": 22}}}}}}))
    (site / "group_vars" / "all.yml").write_text(yaml.safe_dump({
        "squall_kind": "cloud", "squall_scheduler": "none", "squall_org_stack": "zephy.org.main",
        "squall_work_root": WORK_ROOT, "ansible_user": testbed["user"],
        "ansible_ssh_private_key_file": testbed["key"]}))
    add_site(store, "bench-cloud", site)
    spec_dir = work / "cloud-noop"
    spec_dir.mkdir()
    (spec_dir / "job.yaml").write_text('name: noop\ncommand: ["true"]\nsplit: 4\n')
    runner = Runner(store, home)

    def after_provisioning() -> float:
        plan = runner.submit(load_spec(spec_dir / "job.yaml"), "bench-cloud", work / "cloud-res")
        runner.drive(plan.job_id)
        journal = {(e.phase, e.event): e.ts for e in store.journal(plan.job_id)}
        return journal[("down", "end")] - journal[("boot", "begin")]

    after_provisioning()  # the first job pushes the runtime; the figure is the steady state
    control = work / "cloud-control"
    control.mkdir()
    hand = Hand(machines, testbed["key"], testbed["user"], control)
    runtime = f"{home_of(hand)}/.squall/runtime/current/squall_runtime.py"
    baseline = statistics.median(noop_by_hand(hand, ["node-1", "node-2"], runtime, WORK_ROOT, 1.0)
                                 for _ in range(runs))
    value = statistics.median(after_provisioning() for _ in range(runs))
    runner.close()
    store.close()
    figures = {"cloud_post_provisioning_4_noop_tasks_2_nodes": _figure(
        value, baseline, "ratio <= 1.2 (boot wait to down; baseline: the jump-host script by hand)")}
    return figures | validate_figures()


def home_of(hand: Hand) -> str:
    return hand.run("node-1", "printenv HOME").decode().strip()


def validate_figures() -> dict:
    """``squall org validate`` of every organisation stack file (in-process: the command's own work)."""
    from squall.infra.driver import StackName
    from squall.infra.validation import validate_org

    seconds = {}
    for path in sorted((REPO / "stacks").glob("Pulumi.*.org.*.yaml")):
        org, _, name = path.name.removeprefix("Pulumi.").removesuffix(".yaml").split(".")
        started = time.perf_counter()
        validate_org(StackName(org, "org", name))
        seconds[f"{org}.org.{name}"] = round(time.perf_counter() - started, 3)
    return {"org_validate_seconds": {"value": seconds, "unit": "s per stack file", "target": "< 10 s each"}}
