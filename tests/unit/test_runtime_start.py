"""The runtime with no scheduler: ``start`` detached tasks, ``poll none``, ``stop``, all as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from squall.runtime import runtime_path
from squall.sites.workarea import TASK_FORMAT

from tests.conftest import pid_alive


def agent(*args: str) -> dict:
    proc = subprocess.run([sys.executable, str(runtime_path()), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def make_job(root: Path, commands: list[str], cpus: int = 1) -> Path:
    job = root / "squall-job1"
    for index, command in enumerate(commands):
        task = job / f"task-{index}"
        task.mkdir(parents=True)
        (task / "task.json").write_text(json.dumps({
            "format": TASK_FORMAT, "job_id": "job1", "index": index, "count": len(commands),
            "command": ["/bin/sh", "-c", command], "walltime": 60, "kill_grace": 1, "outputs": ["**"],
            "heartbeat": 0.2, "isolate_network": False,
            "slots": {"dir": str(root / "slots"), "cpus": cpus}}))
    return job


def wait_for(predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def states(job: Path) -> dict[str, str | None]:
    answer = agent("poll", "none", str(job))["jobs"][str(job)]
    return {i: (s or {}).get("state") for i, s in answer["tasks"].items()}


def test_start_runs_tasks_detached_and_only_once(tmp_path):
    job = make_job(tmp_path, ["echo $SQUALL_TASK_INDEX > out/i", "echo x > out/i"])
    first = agent("start", str(job), "0", "1")
    again = agent("start", str(job), "0", "1")
    assert first["started"] == [0, 1] and again["started"] == [] and again["pids"] == first["pids"]
    wait_for(lambda: states(job) == {"0": "succeeded", "1": "succeeded"})
    assert (job / "task-0" / "out" / "i").read_text() == "0\n"
    assert json.loads((job / "launch.json").read_text())["pids"] == first["pids"]


def test_at_most_host_cpus_over_task_cpus_run_at_once(tmp_path):
    cpus = os.cpu_count() or 1
    job = make_job(tmp_path, ["sleep 1"] * 3, cpus=cpus)  # one slot on this host
    agent("start", str(job), "0", "1", "2")
    running = []
    while set(states(job).values()) != {"succeeded"}:
        running.append(sum(1 for s in states(job).values() if s == "running"))
        time.sleep(0.1)
    assert max(running) == 1


def test_a_runtime_killed_mid_task_is_named_dead(tmp_path):
    job = make_job(tmp_path, ["sleep 30", "true"])
    pids = agent("start", str(job), "0", "1")["pids"]
    wait_for(lambda: states(job)["0"] == "running")
    os.kill(pids["0"], 9)
    answer = wait_for(lambda: (a := agent("poll", "none", str(job))["jobs"][str(job)])["dead"] and a)
    assert answer["dead"] == ["0"]
    wait_for(lambda: states(job)["1"] == "succeeded")
    assert "1" not in agent("poll", "none", str(job))["jobs"][str(job)]["dead"]
    agent("stop", str(job))
    payload = json.loads((job / "task-0" / "status.json").read_text())["pgid"]
    wait_for(lambda: not pid_alive(payload))


def test_stop_kills_every_process_group_and_removes_the_folder(tmp_path):
    job = make_job(tmp_path, ["sleep 60 & sleep 60; wait"] * 2)
    pids = agent("start", str(job), "0", "1")["pids"]
    wait_for(lambda: set(states(job).values()) == {"running"})
    groups = [json.loads((job / f"task-{i}" / "status.json").read_text())["pgid"] for i in (0, 1)]
    answer = agent("stop", str(job), "remove")
    assert answer["stopped"] == 2 and not job.exists()
    for pid in [*pids.values(), *groups]:
        wait_for(lambda pid=pid: not pid_alive(pid))


def test_stop_refuses_what_is_not_a_job_folder(tmp_path):
    proc = subprocess.run([sys.executable, str(runtime_path()), "stop", str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "not a Squall job folder" in proc.stderr and tmp_path.exists()
