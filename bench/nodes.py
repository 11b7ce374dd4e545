"""Benchmarks of the ``ssh`` site kind on the multi-host test bed (job nodes behind the head host).

Each figure has a baseline measured in the same run: a hand-written script
doing the same work with OpenSSH (one master connection per node through the
head, tar in, start, poll, tar out), or rsync through the head to every node
in parallel.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TESTBED = REPO / "tests" / "testbed" / "testbed"
SITE = "testbed-nodes"


def _figure(value: float, baseline: float, target: str, unit: str = "s", **extra) -> dict:
    return {"value": round(value, 4), "baseline": round(baseline, 4), "ratio": round(value / baseline, 3),
            "unit": unit, "target": target, **extra}


class Hand:
    """OpenSSH to the job nodes through the head: one master connection per node, kept for the run."""

    def __init__(self, facts: dict, key: str, user: str, control: Path):
        self.facts, self.user = facts, user
        head = facts["head"]
        base = ["-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
                "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        self.jump = " ".join(["ssh", *base, "-W", "%h:%p", f"{user}@{head['host']}"])
        self.options = [*base, "-o", f"ProxyCommand={self.jump}", "-o", "ControlMaster=auto",
                        "-o", f"ControlPath={control}/%h", "-o", "ControlPersist=120"]

    def ssh(self, node: str) -> list[str]:
        return ["ssh", *self.options, f"{self.user}@{self.facts['nodes'][node]['host']}"]

    def run(self, node: str, command: str, stdin: bytes | None = None) -> bytes:
        return subprocess.run([*self.ssh(node), command], input=stdin, capture_output=True, check=True).stdout

    def close(self, node: str) -> None:
        """End the master connection to ``node``."""
        *options, target = self.ssh(node)
        subprocess.run([*options, "-O", "exit", target], capture_output=True)

    def rsync_e(self) -> str:
        return " ".join(["ssh", *[f"'{o}'" if " " in o else o for o in self.options]])


def _tar_of(folder: Path) -> bytes:
    return subprocess.run(["tar", "c", "-C", str(folder), "."], capture_output=True, check=True).stdout


def noop_by_hand(hand: Hand, nodes: list[str], runtime: str, work_root: str, poll_interval: float) -> float:
    """4 no-op tasks on 2 nodes: tar in, start detached, poll status files, tar out, remove."""
    from squall.sites.workarea import TASK_FORMAT

    started = time.perf_counter()
    root = f"{work_root}/bench-hand-{time.monotonic_ns()}"

    def one(node: str, indexes: list[int]) -> None:
        local = Path(f"/tmp/bench-hand-{node}")
        shutil.rmtree(local, ignore_errors=True)
        for index in indexes:
            (local / f"task-{index}").mkdir(parents=True)
            (local / f"task-{index}" / "task.json").write_text(json.dumps(
                {"format": TASK_FORMAT, "job_id": "b", "index": index, "count": 4, "command": ["true"],
                 "walltime": 60, "outputs": ["**"], "isolate_network": True}))
        hand.run(node, f"mkdir -p {root} && tar x -C {root}", _tar_of(local))
        hand.run(node, " ".join(f"setsid python3 {runtime} run {root}/task-{i} </dev/null >/dev/null 2>&1 &"
                                for i in indexes))
        while True:
            states = hand.run(node, f"cat {root}/task-*/status.json 2>/dev/null || true").decode()
            if states.count('"state": "succeeded"') == len(indexes):
                break
            time.sleep(poll_interval)
        out = Path(f"/tmp/bench-hand-{node}-out")
        out.mkdir(exist_ok=True)
        subprocess.run(["tar", "x", "-C", str(out)], input=hand.run(node, f"tar c -C {root} ."), check=True)
        hand.run(node, f"rm -rf {root}")
        hand.close(node)  # each run opens its own master connection, as Squall does
        shutil.rmtree(local, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)

    with ThreadPoolExecutor(len(nodes)) as pool:
        for future in [pool.submit(one, node, [i for i in range(4) if i % len(nodes) == n])
                       for n, node in enumerate(nodes)]:
            future.result()
    return time.perf_counter() - started


def nodes_figures(runs: int, total_mib: int, files: int, home: Path, work: Path, stage_twice) -> dict:
    """The ssh kind's figures: end-to-end no-op vs a hand script, staging vs rsync, remote calls per poll.

    ``stage_twice(site, spec, work)`` is the staging measure the HPC figures use.
    """
    from squall.jobs import new_plan
    from squall.runner import Runner
    from squall.sites.registration import open_site
    from squall.spec import load_spec
    from squall.store import Store

    up = subprocess.run([sys.executable, str(TESTBED), "up", "--nodes", "3"], capture_output=True, text=True,
                        check=True)
    testbed = json.loads(up.stdout)
    facts = testbed["nodes"]
    env = {**os.environ, "SQUALL_HOME": str(home), "SQUALL_INVENTORIES": str(work / "inventories")}
    squall = str(BIN / "squall")
    subprocess.run([squall, "-q", "site", "enrol", SITE], env=env, check=True, capture_output=True)
    two = work / "inventories" / "bench-two-nodes"  # the same machines, two of them
    shutil.copytree(REPO / "inventories" / SITE, two)
    hosts = yaml.safe_load((two / "hosts.yml").read_text())
    del hosts["all"]["children"]["nodes"]["hosts"]["node-3"]
    (two / "hosts.yml").write_text(yaml.safe_dump(hosts))
    os.environ["SQUALL_INVENTORIES"] = str(work / "inventories")
    store = Store(home)
    runner = Runner(store, home)
    spec_dir = work / "nodes-noop"
    spec_dir.mkdir()
    (spec_dir / "job.yaml").write_text('name: noop\ncommand: ["true"]\nsplit: 4\n')

    def through_squall() -> float:
        started = time.perf_counter()
        plan = runner.submit(load_spec(spec_dir / "job.yaml"), "bench-two-nodes", work / "res")
        runner.drive(plan.job_id)
        return time.perf_counter() - started

    site = open_site(SITE, home, store)
    node = site.hosts[0]
    runtime, work_root = node.runtime(), node.work_root
    control = work / "control"
    control.mkdir()
    hand = Hand(facts, testbed["key"], testbed["user"], control)
    baseline = statistics.median(
        noop_by_hand(hand, ["node-1", "node-2"], runtime, work_root, site.poll_interval) for _ in range(runs + 1))
    squall_time = statistics.median(through_squall() for _ in range(runs + 1))
    figures = {"nodes_noop_4_tasks_2_nodes_via_jump": _figure(
        squall_time, baseline, "ratio <= 1.2 (baseline: ssh through the head, one master per node, by hand)")}

    source = work / "nodes-stage"
    (source / "data").mkdir(parents=True)
    for index in range(files):
        (source / "data" / f"f{index:04d}.bin").write_bytes(os.urandom((total_mib << 20) // files))
    (source / "job.yaml").write_text('name: stage\ncommand: ["true"]\ninputs: ["data"]\nsplit: 3\n')
    names = sorted(p.name for p in (source / "data").iterdir())

    def rsync_all() -> float:
        started = time.perf_counter()

        def one(number: int) -> None:
            listed = work / f"rsync-list-{number}"
            listed.write_text("".join(f"{n}\n" for n in names[number::3]))
            target = f"{testbed['user']}@{facts['nodes'][f'node-{number + 1}']['host']}:{work_root}/bench-rsync/"
            subprocess.run(["rsync", "-a", "--files-from", str(listed), "-e", hand.rsync_e(),
                            str(source / "data") + "/", target], check=True, capture_output=True)

        with ThreadPoolExecutor(3) as pool:
            for future in [pool.submit(one, n) for n in range(3)]:
                future.result()
        elapsed = time.perf_counter() - started
        for number in range(3):
            hand.run(f"node-{number + 1}", f"rm -rf {work_root}/bench-rsync")
        return elapsed

    resolved = load_spec(source / "job.yaml")
    rsync_time = statistics.median(rsync_all() for _ in range(5))
    stage_runs = [stage_twice(site, resolved, work) for _ in range(5)]  # medians of 5
    first = statistics.median(r[0] for r in stage_runs)
    figures[f"nodes_staging_throughput_vs_rsync_{total_mib}_mib_{files}_files_3_nodes"] = _figure(
        rsync_time / first, 1.0, "ratio >= 0.8 (value: Squall's throughput as a fraction of rsync through the head)",
        unit="x", squall_s=round(first, 3), rsync_s=round(rsync_time, 3))

    calls = {}
    for count in (1, 10, 100):
        plans = [new_plan(resolved, f"bench-poll-{i}", work / "res", store.store_id) for i in range(count)]
        before = sum(h.ssh.commands for h in site.hosts)
        site.poll(plans)
        calls[str(count)] = sum(h.ssh.commands for h in site.hosts) - before
    figures["nodes_status_calls_per_poll_3_nodes"] = {
        "value": calls, "unit": "remote commands per poll, by active jobs", "target": "flat: one per node (3)"}
    for name in facts["nodes"]:
        hand.close(name)
    site.close()
    store.close()
    return figures
