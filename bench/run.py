#!/usr/bin/env python3
"""Squall's benchmarks: one JSON object of named figures, each with its value,
the baseline measured in the same run, the ratio and the target.

    python bench/run.py [--quick]

Figures are medians of repeated runs; nothing here asserts (machines are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cloud import cloud_figures, validate_figures  # noqa: E402  (beside this file)
from nodes import nodes_figures  # noqa: E402  (beside this file)
from money import money_figures  # noqa: E402  (beside this file)
from sandbox import sandbox_figures  # noqa: E402  (beside this file)

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(argv: list[str], env: dict | None = None, cwd: Path | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def median_of(runs: int, action) -> float:
    action()  # warm the page cache and the store
    return statistics.median(action() for _ in range(runs))


def figure(value: float, baseline: float, target: str, unit: str = "s", **extra) -> dict:
    return {"value": round(value, 4), "baseline": round(baseline, 4), "ratio": round(value / baseline, 3),
            "unit": unit, "target": target, **extra}


def cli_start_up(runs: int, home: Path) -> dict:
    env = {**os.environ, "SQUALL_HOME": str(home)}
    bare = median_of(runs, lambda: timed([sys.executable, "-c", "pass"], env))
    squall = str(BIN / "squall")
    return {
        "cli_start_up_help": figure(median_of(runs, lambda: timed([squall, "--help"], env)), bare,
                                    "ratio <= 4 (baseline: python -c pass)"),
        "cli_start_up_job_list": figure(median_of(runs, lambda: timed([squall, "job", "list"], env)), bare,
                                        "ratio <= 4 (baseline: python -c pass)"),
    }


def lifecycle_overhead(runs: int, home: Path, work: Path) -> dict:
    """A 4-task no-op job through the runner vs the 4 runtimes started by hand.

    The figure is the runner's own cost (plan..down, in process); the whole
    ``squall job run`` command, start-up included, is reported beside it.
    """
    from squall.runner import Runner
    from squall.runtime import runtime_path
    from squall.spec import load_spec
    from squall.store import Store
    from squall.sites.workarea import TASK_FORMAT

    spec_dir = work / "noop"
    spec_dir.mkdir()
    (spec_dir / "job.yaml").write_text('name: noop\ncommand: ["true"]\nsplit: 4\n')
    store = Store(home)
    runner = Runner(store, home)

    def through_runner() -> float:
        started = time.perf_counter()
        plan = runner.submit(load_spec(spec_dir / "job.yaml"), None, work / "res")
        runner.drive(plan.job_id)
        return time.perf_counter() - started

    def through_cli() -> float:
        env = {**os.environ, "SQUALL_HOME": str(home)}
        return timed([str(BIN / "squall"), "-q", "job", "run", str(spec_dir / "job.yaml"), "--results", str(work / "res")], env)

    def runtimes_directly() -> float:
        root = Path(tempfile.mkdtemp(dir=work))
        for index in range(4):
            task = root / f"task-{index}"
            task.mkdir()
            (task / "task.json").write_text(json.dumps({
                "format": TASK_FORMAT, "job_id": "bench", "index": index, "count": 4, "command": ["true"], "walltime": 60,
                "outputs": ["**"], "isolate_network": True,
                "slots": {"dir": str(root / "slots"), "count": os.cpu_count() or 1},
            }))
        started = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-I", "-S", str(runtime_path()), "run", str(root / f"task-{i}")])
                 for i in range(4)]
        for proc in procs:
            proc.wait()
        elapsed = time.perf_counter() - started
        shutil.rmtree(root)
        return elapsed

    bare = median_of(runs, lambda: timed([sys.executable, "-c", "pass"]))
    direct = median_of(runs, runtimes_directly)
    job = median_of(runs, through_runner)
    command = median_of(runs, through_cli)
    store.close()
    return {
        "lifecycle_overhead_4_noop_tasks": {
            "value": round((job - direct) / bare, 2), "unit": "bare interpreter starts", "target": "<= 6",
            "runner_s": round(job, 4), "runtimes_directly_s": round(direct, 4), "bare_start_s": round(bare, 4),
            "whole_command_s": round(command, 4),
            "whole_command_overhead_starts": round((command - direct) / bare, 2),
        }
    }


def stage_twice(site, resolved, work: Path) -> tuple[float, float]:
    """Seconds for a first staging into a fresh job folder, then for staging the same again."""
    from squall.jobs import new_plan
    from squall.sites.contract import Reporter

    plan = new_plan(resolved, f"bench-{time.monotonic_ns() % 10**9}", work / "res", site.store.store_id)
    site.up(plan, lambda kind, resource: None)
    started = time.perf_counter()
    site.stage(plan, Reporter())
    first = time.perf_counter() - started
    started = time.perf_counter()
    site.stage(plan, Reporter())
    again = time.perf_counter() - started
    site.down(plan)
    return first, again


def staging(total_mib: int, files: int, home: Path, work: Path) -> dict:
    """The local site's staging of ``files`` files vs ``cp -r``, with the inputs' digests unknown (a new store)
    and known (inputs used before), and a second, unchanged staging."""
    from squall.sites.kinds.local_site import open_local
    from squall.spec import load_spec
    from squall.store import Store

    source = work / "stage-src"
    (source / "data").mkdir(parents=True)
    size = (total_mib << 20) // files
    block = os.urandom(1 << 20)
    for index in range(files):
        with open(source / "data" / f"f{index:04d}.bin", "wb") as handle:
            remaining = size
            while remaining:
                chunk = block[: min(remaining, len(block))]
                handle.write(chunk[:-8] + index.to_bytes(8, "little") if len(chunk) > 8 else chunk)
                remaining -= len(chunk)
    (source / "job.yaml").write_text('name: stage\ncommand: ["true"]\ninputs: ["data"]\nsplit: 4\n')
    subprocess.run(["sync"], check=True)

    def copy_baseline() -> float:
        target = work / "cp-target"
        subprocess.run(["sync"], check=True)
        elapsed = timed(["cp", "-r", str(source / "data"), str(target)])
        shutil.rmtree(target)
        return elapsed

    def cold(index: int) -> tuple[float, float]:
        """A fresh store: no input digest is known (the local site copies without hashing either way)."""
        store = Store(home / f"cold-{index}")
        try:
            return stage_twice(open_local("local", home / f"cold-{index}", store), resolved, work)
        finally:
            store.close()

    resolved = load_spec(source / "job.yaml")
    store = Store(home)
    site = open_local("local", home, store)
    stage_twice(site, resolved, work)  # the inputs' digests become known, as after a first job on them
    rounds = []
    for index in range(5):  # interleaved, each from a synced disk: earlier writes' flushing slows no one
        baseline = copy_baseline()
        subprocess.run(["sync"], check=True)
        unknown = cold(index)
        subprocess.run(["sync"], check=True)
        rounds.append((baseline, unknown, stage_twice(site, resolved, work)))
    store.close()
    baseline = statistics.median(r[0] for r in rounds)
    first = statistics.median(r[2][0] for r in rounds)
    label = f"{total_mib}_mib_{files}_files"
    return {
        f"staging_{label}_digests_unknown": figure(statistics.median(r[1][0] for r in rounds), baseline,
                                                   "ratio <= 1.2 (baseline: cp -r)"),
        f"staging_{label}_digests_known": figure(first, baseline, "ratio <= 1.2 (baseline: cp -r)"),
        f"restaging_unchanged_{label}": figure(statistics.median(r[2][1] for r in rounds), first,
                                               "ratio <= 0.05 (baseline: first staging)"),
    }


def site_enrolment(home: Path) -> dict:
    """Enrol time on the Slurm test bed (first and second run), and ``site check`` time."""
    testbed = REPO / "tests" / "testbed" / "testbed"
    if os.geteuid() != 0:
        return {"enrol_testbed": {"skipped": "needs root to start the Slurm test bed"}}
    was_up = subprocess.run([str(testbed), "status"], capture_output=True).returncode == 0
    subprocess.run([str(testbed), "up"], capture_output=True, check=True)
    env = {**os.environ, "SQUALL_HOME": str(home)}
    squall = str(BIN / "squall")
    try:
        timed([squall, "-q", "site", "unenrol", "testbed", "--yes"], env)
        first = timed([squall, "-q", "site", "enrol", "testbed"], env)
        second = timed([squall, "-q", "site", "enrol", "testbed"], env)
        check = statistics.median(timed([squall, "-q", "site", "check", "testbed"], env) for _ in range(3))
    finally:
        if not was_up:
            subprocess.run([str(testbed), "down"], capture_output=True)
    return {
        "enrol_testbed_second_vs_first": figure(second, first, "ratio < 1 (nothing to change on the second run)"),
        "site_check_testbed": {"value": round(check, 3), "unit": "s", "note": "includes a probe job through Slurm"},
    }


def ensure_testbed() -> bool:
    """Bring the Slurm test bed up (root only); True if it was already up."""
    testbed = REPO / "tests" / "testbed" / "testbed"
    was_up = subprocess.run([str(testbed), "status"], capture_output=True).returncode == 0
    subprocess.run([str(testbed), "up"], capture_output=True, check=True)
    return was_up


def testbed_facts() -> dict:
    """The multi-host test bed's facts (``up --nodes 3`` keeps a running one as it is)."""
    up = subprocess.run([sys.executable, str(REPO / "tests" / "testbed" / "testbed"), "up", "--nodes", "3"],
                        capture_output=True, text=True, check=True)
    return json.loads(up.stdout)


def hpc_figures(runs: int, total_mib: int, files: int, home: Path, work: Path) -> dict:
    """Jobs on the test bed: end-to-end overhead, staging vs rsync, status calls per poll."""
    import paramiko

    from squall.jobs import new_plan
    from squall.runner import Runner
    from squall.runtime import runtime_sha256
    from squall.sites.registration import open_site
    from squall.spec import load_spec
    from squall.store import Store
    from squall.sites.workarea import TASK_FORMAT

    env = {**os.environ, "SQUALL_HOME": str(home)}
    store = Store(home)
    facts = json.loads((Path("/var/tmp/squall-testbed") / "testbed.json").read_text())
    site = open_site("testbed", home, store)
    if subprocess.run([str(BIN / "squall"), "-q", "site", "health", "testbed"], env=env,
                      capture_output=True).returncode != 0 or not site.hosts[0].ssh.run(
                          ["sha256sum", site.hosts[0].runtime()]).startswith(runtime_sha256()):
        subprocess.run([str(BIN / "squall"), "-q", "site", "enrol", "testbed"], env=env, check=True)
    spec_dir = work / "hpc-noop"
    spec_dir.mkdir()
    (spec_dir / "job.yaml").write_text('name: noop\ncommand: ["true"]\nsplit: 4\n')
    runner = Runner(store, home)

    def through_squall() -> float:
        started = time.perf_counter()
        plan = runner.submit(load_spec(spec_dir / "job.yaml"), "testbed", work / "res")
        runner.drive(plan.job_id)
        return time.perf_counter() - started

    def by_hand() -> float:
        """The minimum: one SSH session; upload, sbatch --array, poll scontrol, download."""
        started = time.perf_counter()
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(facts["host"], port=facts["port"], username=facts["user"], key_filename=facts["key"],
                       look_for_keys=False, allow_agent=False)
        sftp = client.open_sftp()
        root = f"{facts['work_root']}/bench-{time.monotonic_ns()}"
        sftp.mkdir(root)
        for index in range(4):
            sftp.mkdir(f"{root}/task-{index}")
            with sftp.open(f"{root}/task-{index}/task.json", "w") as handle:
                handle.write(json.dumps({"format": TASK_FORMAT, "job_id": "b", "index": index, "count": 4, "command": ["true"],
                                         "walltime": 60, "outputs": ["**"]}))
        with sftp.open(f"{root}/job.sh", "w") as handle:
            handle.write(f"#!/bin/bash\nexec python3 {site.hosts[0].runtime()} run {root}/task-$SLURM_ARRAY_TASK_ID\n")

        def run(command: str) -> str:
            _, out, _ = client.exec_command(command)
            return out.read().decode()

        job = run(f"sbatch --parsable --array=0-3 --output=/dev/null {root}/job.sh").strip()
        while any(s in run(f"scontrol show job -o {job}") for s in ("PENDING", "RUNNING", "COMPLETING")):
            time.sleep(site.poll_interval)
        for index in range(4):
            with sftp.open(f"{root}/task-{index}/status.json") as handle:
                handle.read()
        run(f"rm -rf {root}")
        client.close()
        return time.perf_counter() - started

    baseline = median_of(runs, by_hand)
    squall_time = median_of(runs, through_squall)
    figures = {"hpc_noop_4_tasks_end_to_end": figure(squall_time, baseline,
                                                     "ratio <= 1.1 (baseline: one ssh session by hand)")}

    source = work / "hpc-stage"
    (source / "data").mkdir(parents=True)
    for index in range(files):
        (source / "data" / f"f{index:04d}.bin").write_bytes(os.urandom((total_mib << 20) // files))
    (source / "job.yaml").write_text('name: stage\ncommand: ["true"]\ninputs: ["data"]\n')
    target = f"{facts['user']}@{facts['host']}:{facts['work_root']}/bench-rsync/"
    ssh = f"ssh -i {facts['key']} -p {facts['port']} -o BatchMode=yes -o StrictHostKeyChecking=no " \
          f"-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"

    def rsync() -> float:
        elapsed = timed(["rsync", "-a", "-e", ssh, str(source / "data") + "/", target])
        site.hosts[0].ssh.run(["rm", "-rf", f"{facts['work_root']}/bench-rsync"])
        return elapsed

    resolved = load_spec(source / "job.yaml")

    rsync_time = statistics.median(rsync() for _ in range(5))
    stage_runs = [stage_twice(site, resolved, work) for _ in range(5)]  # medians of 5
    first = statistics.median(r[0] for r in stage_runs)
    again = statistics.median(r[1] for r in stage_runs)
    label = f"{total_mib}_mib_{files}_files"
    figures[f"hpc_staging_throughput_vs_rsync_{label}"] = figure(
        rsync_time / first, 1.0, "ratio >= 1.0 (value: Squall's throughput as a fraction of rsync -e ssh)",
        unit="x", squall_s=round(first, 3), rsync_s=round(rsync_time, 3))
    figures[f"hpc_restaging_unchanged_{label}"] = figure(again, first, "ratio <= 0.05 (baseline: first staging)")

    calls = {}
    for count in (1, 10, 100):
        plans = [new_plan(resolved, f"bench-poll-{i}", work / "res", store.store_id) for i in range(count)]
        before = site.hosts[0].ssh.commands
        site.poll(plans)
        calls[str(count)] = site.hosts[0].ssh.commands - before
    figures["hpc_status_calls_per_poll"] = {"value": calls, "unit": "remote commands per poll, by active jobs",
                                            "target": "flat"}
    site.close()
    store.close()
    return figures


def program_evaluation(runs: int) -> dict:
    """JobStack (AWS, N instances) and GpuNodePool (OpenStack, N servers) declared under Pulumi's mocks.

    The per-node cost is the marginal one: (t(N) - t(previous N)) / added nodes;
    the ratio compares 100 -> 1,000 with 10 -> 100, so 1.0 means linear growth.
    """
    sys.path.insert(0, str(REPO))
    from tests.programs.capture import evaluate_stack, stack_config

    job = stack_config("acme.job.example")["squall:job"]
    org = stack_config("zephy.org.main")["squall:org"]

    def job_stack(nodes: int) -> None:
        evaluate_stack("acme.job.example", job={**job, "nodes": nodes})

    def gpu_pool(nodes: int) -> None:
        evaluate_stack("zephy.org.main", org={**org, "banks": [],
                                              "pools": [{**org["pools"][0], "max": 1000, "desired": nodes}]})

    figures = {}
    for name, program in (("program_eval_job_stack", job_stack), ("program_eval_gpu_pool", gpu_pool)):
        seconds = {}
        for nodes in (10, 100, 1000):
            def once(nodes: int = nodes) -> float:
                started = time.perf_counter()
                program(nodes)
                return time.perf_counter() - started
            seconds[nodes] = median_of(runs if nodes < 1000 else max(1, runs // 3), once)
        small = (seconds[100] - seconds[10]) / 90
        large = (seconds[1000] - seconds[100]) / 900
        figures[name] = figure(large, small, "ratio <= 1.5 (per-node cost 100->1000 vs 10->100: flat)",
                               unit="s per node", seconds={str(n): round(t, 3) for n, t in seconds.items()})
    return figures


def bank_claim_vs_cold(root: Path, runs: int) -> dict:
    """A bank claim (atomic store transition + a real TCP reachability check) vs creating a job stack.

    The cold path runs the real job program under the engine double, so it
    leaves out the cloud's own provisioning time (minutes for a VM): the ratio
    is a lower bound of what the bank saves.
    """
    import socket

    sys.path.insert(0, str(REPO))
    from squall.infra.bank import Banks, ssh_reachable
    from squall.infra.driver import StackName
    from squall.infra.job_stacks import JobStacks
    from squall.infra.orgs import Orgs
    from squall.store import Store
    from tests.infra.engine_double import RecordingEngine

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    store, engine, org = Store(root / "home-bank"), RecordingEngine(), StackName("zephy", "org", "main")
    orgs = Orgs(store, engine)
    orgs.up(org, lambda _m: None)
    banks = Banks(store, orgs, probe=lambda address: ssh_reachable(address, port, timeout=1.0))
    banks.fill(org, "cfd", lambda _m: None)
    claims = []
    for index in range(5):  # the bank's 5 idle VMs, one owner each (quota is per owner)
        started = time.perf_counter()
        banks.claim(org, "cfd", f"user{index}", lambda stack, bank: None)
        claims.append(time.perf_counter() - started)
    stacks = JobStacks(store, engine)
    cold = []
    for index in range(max(3, runs // 2)):
        started = time.perf_counter()
        stacks.create(org, f"bench-{index}", tasks=1)
        cold.append(time.perf_counter() - started)
    listener.close()
    store.close()
    claim = statistics.median(claims)
    return {"bank_claim_vs_cold_stack": figure(claim, statistics.median(cold),
                                               "claim far below the cold path (report both)",
                                               claim_s=round(claim, 4), cold_stack_s=round(statistics.median(cold), 4))}


def gc_reconcile(root: Path) -> dict:
    """``squall gc`` over 10, 100 and 1,000 expired leases: each an expired job stack (destroyed through
    the engine double) and a local work-area lease whose folder is gone (released). Per-lease cost."""
    sys.path.insert(0, str(REPO))
    from squall.gc.sites import collect_garbage
    from squall.infra import records
    from squall.gc.stacks import collect_stacks
    from squall.store import Store
    from tests.infra.engine_double import RecordingEngine

    runs = iter(range(1_000_000))

    def once(count: int) -> float:
        home = root / f"home-gc-{count}-{next(runs)}"
        store, engine = Store(home), RecordingEngine()
        now = time.time()
        for index in range(count):
            name = f"acme.job.gc-{index}"
            engine.deployed[name] = {"expires_at": now - 60}
            records.save_stack(store, name, "acme", "job", "up", job_id=f"gc-{index}", expires_at=now - 60)
            store.add_lease(f"gc-{index}", "local", "workarea", str(home / "gone" / str(index)), {}, now - 60)
        started = time.perf_counter()
        actions = collect_garbage(store, home, now=now) + collect_stacks(store, engine, home, now=now)
        elapsed = time.perf_counter() - started
        assert sum(a.action in ("remove", "release") for a in actions) == 2 * count and not engine.deployed
        store.close()
        return elapsed

    seconds = {count: median_of(3, lambda count=count: once(count)) for count in (10, 100, 1000)}
    small = (seconds[100] - seconds[10]) / 90
    large = (seconds[1000] - seconds[100]) / 900
    return {"gc_reconcile_per_lease": figure(large, small, "ratio <= 1.5 (per-lease cost 100->1000 vs 10->100: linear)",
                                             unit="s per lease",
                                             seconds={str(n): round(t, 3) for n, t in seconds.items()})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and 128 MiB instead of 1 GiB")
    args = parser.parse_args()
    runs = 5 if args.quick else 15
    results: dict = {"quick": args.quick, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="squall-bench-") as scratch:
        root = Path(scratch)
        results |= cli_start_up(runs, root / "home-cli")
        results |= lifecycle_overhead(max(3, runs // 2), root / "home-job", root)
        results |= sandbox_figures(3 if args.quick else 7, root / "sandbox")
        if args.quick:
            results |= staging(128, 128, root / "home-stage", root)
        else:
            results |= staging(1024, 1000, root / "home-stage", root)
        results |= site_enrolment(root / "home-site")
        results |= program_evaluation(3 if args.quick else 5)
        if os.geteuid() != 0:
            results |= validate_figures()
        results |= bank_claim_vs_cold(root, runs)
        results |= gc_reconcile(root)
        results |= money_figures(args.quick)
        if os.geteuid() == 0:
            was_up = ensure_testbed()
            try:
                mib, count = (128, 128) if args.quick else (1024, 1000)
                results |= hpc_figures(3 if args.quick else 5, mib, count, root / "home-hpc", root)
                results |= nodes_figures(3 if args.quick else 5, mib, count, root / "home-nodes", root, stage_twice)
                results |= cloud_figures(3 if args.quick else 5, root / "home-cloud", root, testbed_facts())
            finally:
                if not was_up:
                    subprocess.run([str(REPO / "tests" / "testbed" / "testbed"), "down"], capture_output=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
