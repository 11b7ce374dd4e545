"""Jobs on a real Grid Engine cell (``tests/testbed/testbed up --scheduler gridengine``) through the site
``testbed-gridengine``, via the real CLI: the second scheduler, added as its executor, its runtime module,
its batch template and its test-bed script."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from squall.runtime import BUNDLE_DIGEST_SH, runtime_sha256
from tests.conftest import run_then_kill_9
from tests.integration.conftest import TESTBED, checksums

SITE = "testbed-gridengine"


@pytest.fixture(scope="session")
def gridengine(testbed) -> dict:
    """The Grid Engine qmaster and execd beside the Slurm test bed (stopped with it)."""
    proc = subprocess.run([sys.executable, str(TESTBED), "up", "--scheduler", "gridengine"], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return testbed


def queued(remote) -> list[str]:
    """The service account's Grid Engine jobs called squall-* (name and state)."""
    out = remote("qstat -u squall-svc -xml").stdout
    from xml.etree import ElementTree

    return [f"{j.findtext('JB_name')} {j.findtext('state')}" for j in ElementTree.fromstring(out).iter("job_list")
            if (j.findtext("JB_name") or "").startswith("squall-")]


def leftovers(remote, testbed) -> tuple[list[str], list[str]]:
    folders = remote(f"ls -A {testbed['work_root']}").stdout.split()
    return [f for f in folders if f.startswith("squall-")], queued(remote)


@pytest.fixture
def ge(squall, gridengine, remote):
    """A Squall home that runs jobs on the enrolled Grid Engine site; nothing left of earlier runs."""
    installed = remote(f"cd ~/.squall/runtime/current 2>/dev/null && {BUNDLE_DIGEST_SH} || true").stdout.split()
    if not installed or installed[0] != runtime_sha256():
        proc = squall.run("site", "enrol", SITE)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    remote(f"qdel -u squall-svc >/dev/null 2>&1; rm -rf {gridengine['work_root']}/squall-*", check=False)
    return squall


def test_enrol_checks_the_schedulers_commands_and_proves_it_with_a_health_job(squall, gridengine):
    code, report = squall.json("site", "enrol", SITE)
    assert code == 0, report
    checks = {c["name"]: c["status"] for c in report["checks"]}
    assert checks["gridengine_commands"] == "ok" and "slurm_commands" not in checks
    assert report["health"]["status"] == "ok" and report["health"]["scheduler_job_id"].isdigit()


def test_wind_stats_runs_as_one_array_job_with_the_local_checksums(ge, wind_example, remote, gridengine):
    code, on_ge = ge.json("job", "run", str(wind_example), "--site", SITE, "--results", "ge")
    assert code == 0, on_ge
    assert on_ge["status"] == "succeeded" and on_ge["site"] == SITE
    code, local = ge.json("job", "run", str(wind_example), "--results", "local")
    assert code == 0
    ge_sums = checksums(Path(on_ge["results"]))
    assert len(ge_sums) == 16 and ge_sums == checksums(Path(local["results"]))
    launches = [e for e in ge.json("job", "status", on_ge["id"])[1]["journal"] if e["phase"] == "launch"
                and e["event"] == "end"]
    assert len(launches) == 1  # one qsub
    array = launches[0]["detail"]["gridengine_job"]
    accounted = ""
    for _ in range(50):  # the qmaster writes its accounting file a moment after the tasks end
        accounted = remote(f"qacct -j {array}", check=False).stdout
        if accounted.count("taskid") == 4:
            break
        time.sleep(0.2)
    assert sorted(int(line.split()[1]) for line in accounted.splitlines() if line.startswith("taskid")) == [1, 2, 3, 4]
    assert f"squall-{on_ge['id']}" in accounted
    assert leftovers(remote, gridengine) == ([], [])


def test_the_estimate_is_priced_from_the_queue(ge, wind_example):
    code, plan = ge.json("job", "run", str(wind_example), "--site", SITE, "--dry-run")
    assert code == 0, plan
    estimate = plan["estimate"]
    assert estimate["partition"] == "squall.q"
    assert estimate["cost"]["price"]["per_job"] == "0.02" and estimate["cost"]["price"]["per_core_hour"] == "0.05"
    # the queue's price: 0.02 per job + 0.05 per core-hour x 4 tasks x 1 core x 5 minutes at most
    assert estimate["cost"]["max"]["amount"] == "0.04"
    assert "#$ -t 1-4" in plan["batch_script"] and "#$ -q squall.q" in plan["batch_script"]


def test_walltime_is_a_hard_runtime_limit_and_cancel_leaves_nothing(ge, make_spec, remote, gridengine):
    slow = make_spec({"name": "slow", "command": "sleep 300", "resources": {"walltime": "00:00:03"}})
    code, report = ge.json("job", "run", str(slow), "--site", SITE)
    assert code == 1 and report["status"] == "timeout"
    assert leftovers(remote, gridengine) == ([], [])

    longer = make_spec({"name": "slow", "command": "sleep 300", "resources": {"walltime": "00:01:00"}},
                       folder="longer")
    code, report = ge.json("job", "run", str(longer), "--site", SITE, "--detach")
    ge.wait_for("SELECT job_id FROM tasks WHERE job_id = ? AND status = 'running'", report["id"])
    limits = remote(f"qstat -j squall-{report['id']}").stdout
    assert "h_rt=90" in limits  # the walltime plus the margin the runtime ends the task within
    from squall.store import Store

    assert f"store={Store(ge.home).store_id}" in limits  # the owner tags ride in the job's context
    code, report = ge.json("job", "cancel", report["id"])
    assert code == 0 and report["status"] == "cancelled"
    assert leftovers(remote, gridengine) == ([], [])


def test_kill_9_then_gc_keeps_then_removes_the_array_job_and_finds_nothing_after(ge, make_spec, remote,
                                                                                 gridengine):
    spec = make_spec({"name": "orphan", "command": "sleep 300", "resources": {"walltime": "00:00:20"}})
    job_id = run_then_kill_9(ge, str(spec), "--site", SITE, env={"SQUALL_LEASE_MARGIN": "1"})
    assert leftovers(remote, gridengine)[0] == [f"squall-{job_id}"]
    code, plan = ge.json("gc", "--yes", "--dry-run")
    mine = {(a["kind"], a["action"]) for a in plan["actions"] if a["job_id"] == job_id}
    assert ("gridengine", "keep") in mine and ("jobdir", "keep") in mine  # its owner tags say it is alive
    expires = ge.query("SELECT MAX(expires_at) FROM leases WHERE job_id = ?", job_id)[0][0]
    time.sleep(max(0.0, expires - time.time()) + 0.5)
    code, done = ge.json("gc", "--yes", "--discard-uncollected")
    removed = {(a["kind"], a["action"]) for a in done["actions"] if a["job_id"] == job_id}
    assert ("jobdir", "remove") in removed
    assert leftovers(remote, gridengine) == ([], [])
    code, after = ge.json("gc", "--yes", "--dry-run")
    assert [a for a in after["actions"] if a["job_id"] == job_id] == []
