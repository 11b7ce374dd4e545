"""Two servers — two processes, two homes — sharing one PostgreSQL store and driving jobs on the real Slurm
test bed: each job driven exactly once, the budget never overspent, nothing left for gc; a server killed
mid-job (its controllers with it) is taken over by the other, nothing lost."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.conftest import Squall
from tests.integration.conftest import leftovers
from tests.server.test_live_server import free_port, wait_until_up

pytestmark = pytest.mark.usefixtures("database")


@pytest.fixture
def database(postgres, monkeypatch) -> str:
    """PostgreSQL only: the shared store is the point here."""
    url = postgres.new_database()
    monkeypatch.setenv("SQUALL_DATABASE_URL", url)
    return url

PAYLOAD = 'sleep {sleep}; printf "task %s" "$SQUALL_TASK_INDEX" > "$SQUALL_OUTPUT_DIR/out.txt"'


class Server:
    """``squall server`` over one home, looking for jobs to take over every second."""

    def __init__(self, squall: Squall, spec_root: Path):
        self.squall, self.port = squall, free_port()
        self.process = squall.start("server", "--port", str(self.port), "--spec-root", str(spec_root),
                                    "--take-over-every", "1")
        wait_until_up(self.process, self.port)

    def submit(self, token: str, spec: Path) -> httpx.Response:
        return httpx.post(f"http://127.0.0.1:{self.port}/api/v1/jobs/from-path", timeout=120,
                          headers={"Authorization": f"Bearer {token}"},
                          json={"spec_path": str(spec), "site": "testbed"})

    def kill(self) -> None:
        """The server and every controller it started (their command lines name its home), as a machine dies."""
        self.process.kill()
        self.process.communicate()
        for pid in controllers_of(self.squall.home):
            os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.communicate(timeout=30)


def controllers_of(home: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError):
            continue
        if str(home).encode() in argv and b"attach" in argv:
            found.append(int(entry.name))
    return found


@pytest.fixture
def servers(hpc, tmp_path, make_spec):
    other = Squall(tmp_path / "home-b", tmp_path / "work", database=hpc.database)
    spec_root = tmp_path  # make_spec writes there
    code, made = hpc.json("token", "create", "--user", "ana", "--org", "acme", "--role", "admin")
    assert code == 0, made
    running = [Server(hpc, spec_root), Server(other, spec_root)]
    yield running, made["token"]
    for server in running:
        server.stop()


def payload(make_spec, name: str, sleep: int, split: int = 2) -> Path:
    return make_spec({"name": name, "split": split, "command": PAYLOAD.format(sleep=sleep),
                      "resources": {"walltime": "00:05:00"}}, folder=name)


def wait_done(squall: Squall, job_ids: list[str], timeout: float = 900) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    reports: dict[str, dict] = {}
    while time.monotonic() < deadline:
        reports = {job_id: squall.json("job", "status", job_id)[1] for job_id in job_ids}
        if all(r["phase"] == "done" for r in reports.values()):
            return reports
        time.sleep(2)
    raise AssertionError({k: (r["phase"], r["status"]) for k, r in reports.items()})


def outputs(report: dict) -> dict[str, str]:
    results = Path(report["results"])
    return {str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(results.glob("task-*/out.txt"))}


def expected_outputs(split: int) -> dict[str, str]:
    return {f"task-{i}/out.txt": hashlib.sha256(f"task {i}".encode()).hexdigest() for i in range(split)}


def driven_once(squall: Squall, job_id: str) -> None:
    """Every phase begun once and launched once: no second controller ever drove the job."""
    events = squall.query("SELECT phase, event FROM journal WHERE job_id = ? ORDER BY seq", job_id)
    begun = [phase for phase, event in events if event == "begin"]
    assert len(begun) == len(set(begun)), events
    assert sum(1 for phase, event in events if (phase, event) == ("launch", "end")) == 1, events


def test_two_servers_on_one_database_drive_each_of_20_jobs_once(servers, hpc, make_spec, remote, testbed):
    running, token = servers
    spec = payload(make_spec, "shared", sleep=1)
    max_cost = hpc.json("job", "estimate", str(spec), "--site", "testbed")[1]["sites"][0]["cost"]["max"]
    budget = Decimal(max_cost["amount"]) * 15  # room for 15 of the 20 at their maximum cost
    assert hpc.run("budget", "set", "org:acme", f"{budget} credits").returncode == 0
    with ThreadPoolExecutor(20) as pool:  # all at once, half to each server
        answers = list(pool.map(lambda i: running[i % 2].submit(token, spec), range(20)))
    accepted = [a.json()["data"]["id"] for a in answers if a.status_code == 202]
    refused = [a.json() for a in answers if a.status_code != 202]
    assert len(accepted) == 15 and len(refused) == 5, [a.text[:300] for a in answers]
    assert all("budget org:acme" in r["error_msgs"][0] and r["data"]["exit_code"] == 4 for r in refused), refused
    reports = wait_done(hpc, accepted)
    for job_id, report in reports.items():
        assert report["status"] == "succeeded", report["error"]
        assert outputs(report) == expected_outputs(2)
        driven_once(hpc, job_id)
    code, (state,) = hpc.json("budget", "show", "org:acme")
    assert Decimal(state["held"]["amount"]) == 0 and Decimal(state["settled"]["amount"]) <= budget
    assert len(hpc.json("usage")[1]) == 15
    for squall in (hpc, running[1].squall):  # gc, from either home, finds nothing
        code, found = squall.json("gc", "--dry-run")
        assert code == 0 and found["actions"] == [], found
    assert leftovers(remote, testbed) == ([], [])


def test_a_server_killed_mid_job_is_taken_over_by_the_other(servers, hpc, make_spec, remote, testbed):
    running, token = servers
    first, second = running
    spec = payload(make_spec, "takeover", sleep=8, split=3)
    answer = first.submit(token, spec)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["data"]["id"]
    hpc.wait_for("SELECT job_id FROM tasks WHERE job_id = ? AND status = 'running'", job_id, timeout=120)
    assert controllers_of(first.squall.home), "the first server's controller drives the job"
    first.kill()
    (report,) = wait_done(hpc, [job_id]).values()
    assert report["status"] == "succeeded", report
    assert outputs(report) == expected_outputs(3)  # nothing lost
    events = hpc.query("SELECT detail FROM journal WHERE job_id = ? AND event = 'taken-over'", job_id)
    assert events and f"pid {second.process.pid} " in json.loads(events[0][0])["by"], events
    assert not controllers_of(first.squall.home)
    assert leftovers(remote, testbed) == ([], [])
    code, found = second.squall.json("gc", "--dry-run")
    assert code == 0 and found["actions"] == [], found

