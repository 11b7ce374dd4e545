"""Jobs on the real Slurm test bed through the ``hpc`` site, via the real CLI."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path



from tests.conftest import kill_quietly, run_then_kill_9
from tests.integration.conftest import checksums, leftovers, runtime_copy

REPO = Path(__file__).resolve().parents[2]
TESTBED = REPO / "tests" / "testbed" / "testbed"


def test_wind_stats_runs_as_one_array_with_the_local_checksums(hpc, wind_example, remote, testbed):
    code, on_hpc = hpc.json("job", "run", str(wind_example), "--site", "testbed", "--results", "hpc")
    assert code == 0, on_hpc
    assert on_hpc["status"] == "succeeded" and on_hpc["site"] == "testbed"
    code, local = hpc.json("job", "run", str(wind_example), "--results", "local")
    assert code == 0
    hpc_sums = checksums(Path(on_hpc["results"]))
    assert len(hpc_sums) == 16 and hpc_sums == checksums(Path(local["results"]))
    launches = [e for e in hpc.json("job", "status", on_hpc["id"])[1]["journal"] if e["phase"] == "launch"
                and e["event"] == "end"]
    assert len(launches) == 1
    array = launches[0]["detail"]["slurm_job"]
    comp = Path(testbed["dir"], "log", "jobcomp.txt").read_text().splitlines()
    elements = sorted(int(line.split()[0].removeprefix("JobId=")) for line in comp
                      if f"Name=squall-{on_hpc['id']} " in line)
    # one submission: the array's id, then its 4 elements numbered from it
    assert elements == list(range(int(array), int(array) + 4))
    assert leftovers(remote, testbed) == ([], [])


def test_batch_script_passes_shellcheck(hpc, wind_example, tmp_path):
    from squall.jobs import new_plan
    from squall.sites.registration import open_site
    from squall.spec import load_spec
    from squall.store import Store

    store = Store(hpc.home)
    site = open_site("testbed", hpc.home, store)
    try:
        plan = new_plan(load_spec(wind_example), "261123-abcdef", tmp_path, store.store_id)
        script = tmp_path / "job.sh"
        script.write_text(site.executor.batch_script(plan, time.time() + 3600))
    finally:
        site.close()
    text = script.read_text()
    assert "#SBATCH --array=0-3" in text and "#SBATCH --mem=256M" in text
    assert "#SBATCH --job-name=squall-261123-abcdef" in text and "squall-job=261123-abcdef" in text
    proc = subprocess.run(["shellcheck", "--shell=bash", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_payload_failure_time_limit_and_cancel_leave_nothing(hpc, make_spec, remote, testbed):
    failing = make_spec({"name": "fails", "split": 2, "command":
                         'if [ "$SQUALL_TASK_INDEX" = 1 ]; then echo bad >&2; exit 7; fi; echo ok > "$SQUALL_OUTPUT_DIR/ok"'},
                        folder="fails")
    code, report = hpc.json("job", "run", str(failing), "--site", "testbed")
    assert code == 1 and report["status"] == "failed"
    assert [(t["status"], t["exit_code"]) for t in report["tasks"]] == [("succeeded", 0), ("failed", 7)]
    assert "bad" in report["tasks"][1]["stderr_tail"]
    assert leftovers(remote, testbed) == ([], [])

    slow = make_spec({"name": "slow", "command": "sleep 300", "resources": {"walltime": "00:00:02"}}, folder="slow")
    code, report = hpc.json("job", "run", str(slow), "--site", "testbed")
    assert code == 1 and report["status"] == "timeout"
    assert leftovers(remote, testbed) == ([], [])

    code, report = hpc.json("job", "run", str(slow), "--site", "testbed", "--detach")
    hpc.wait_for("SELECT job_id FROM tasks WHERE job_id = ? AND status = 'running'", report["id"])
    slow.write_text(slow.read_text())  # (the spec is not read again: the store has it)
    code, report = hpc.json("job", "cancel", report["id"])
    assert code == 0 and report["status"] == "cancelled"
    assert leftovers(remote, testbed) == ([], [])


def test_kill_9_then_attach_collects(hpc, make_spec, remote, testbed):
    spec = make_spec({"name": "sleepy", "split": 2, "command": 'sleep 3; echo "done $SQUALL_TASK_INDEX" > "$SQUALL_OUTPUT_DIR/done"'})
    job_id = run_then_kill_9(hpc, str(spec), "--site", "testbed")
    code, report = hpc.json("job", "attach", job_id)
    assert code == 0 and report["status"] == "succeeded"
    assert (Path(report["results"]) / "task-1" / "done").read_text() == "done 1\n"
    assert leftovers(remote, testbed) == ([], [])


def test_kill_9_then_gc_after_expiry_cancels_and_removes(hpc, make_spec, remote, testbed):
    spec = make_spec({"name": "orphan", "command": "sleep 300", "resources": {"walltime": "00:00:03"}})
    job_id = run_then_kill_9(hpc, str(spec), "--site", "testbed", env={"SQUALL_LEASE_MARGIN": "1"})
    assert leftovers(remote, testbed)[0] == [f"squall-{job_id}"]
    code, plan = hpc.json("gc", "--yes", "--dry-run")
    assert {a["action"] for a in plan["actions"]} == {"keep"}
    expires = hpc.query("SELECT MAX(expires_at) FROM leases WHERE job_id = ?", job_id)[0][0]
    time.sleep(max(0.0, expires - time.time()) + 0.5)
    code, kept = hpc.json("gc", "--yes")  # its task ended at the site and nobody collected it
    assert ("jobdir", "uncollected") in {(a["kind"], a["action"]) for a in kept["actions"] if a["job_id"] == job_id}
    assert leftovers(remote, testbed)[0] == [f"squall-{job_id}"]
    code, done = hpc.json("gc", "--yes", "--discard-uncollected")
    removed = {(a["kind"], a["action"]) for a in done["actions"] if a["job_id"] == job_id}
    assert ("jobdir", "remove") in removed
    assert leftovers(remote, testbed) == ([], [])
    assert hpc.json("job", "status", job_id)[1]["status"] == "failed"


CANARY = "/tmp/sq-canary"
EVIL = f"x; touch {CANARY}; $(touch {CANARY}) `touch {CANARY}` 'q' \"dq\" sp ace\nnew line"
EVIL_FILE = EVIL.replace("/", "_").replace("\n", " ")


def test_hostile_names_inputs_and_arguments_never_reach_a_shell(hpc, make_spec, remote):
    remote(f"rm -f {CANARY}")
    Path(CANARY).unlink(missing_ok=True)
    # (an input name with a line break is refused outright: the input list has one name per line)
    files = {f"data/{EVIL_FILE}.txt": "payload data\n", "data/plain.txt": "plain\n",
             "data/--to-command=false -rf.txt": "an option to tar, if names were read as options\n"}
    spec = make_spec({
        "name": EVIL,
        "command": ["python3", "-c",
                    "import os,sys,json; open(os.environ['SQUALL_OUTPUT_DIR']+'/argv.json','w').write(json.dumps(sys.argv[1:]));"
                    "open(os.environ['SQUALL_OUTPUT_DIR']+'/inputs.txt','w').write(open(os.environ['SQUALL_INPUT_LIST']).read())",
                    EVIL, "$(touch " + CANARY + ")"],
        "inputs": ["data/*"],
    }, files)
    code, report = hpc.json("job", "run", str(spec), "--site", "testbed")
    assert code == 0, report
    out = Path(report["results"]) / "task-0"
    assert json.loads((out / "argv.json").read_text()) == [EVIL, "$(touch " + CANARY + ")"]
    staged = (out / "inputs.txt").read_text()
    assert EVIL_FILE in staged and "--to-command=false -rf.txt" in staged
    assert remote(f"test -e {CANARY} && echo yes || echo no").stdout.strip() == "no"
    assert not Path(CANARY).exists()
    assert hpc.json("job", "list")[1][0]["name"] == EVIL


def test_staging_survives_sshd_being_killed_and_restarted(hpc, make_spec, remote, testbed):
    files = {}
    spec = make_spec({"name": "big", "command": "true", "inputs": ["blobs"], "split": 2}, files)
    blobs = spec.parent / "blobs"
    blobs.mkdir()
    for i in range(64):
        (blobs / f"b{i:02d}.bin").write_bytes(bytes([i]) * (8 << 20))
    controller = hpc.start("job", "run", str(spec), "--site", "testbed", "--output", "json")
    try:
        job_id, = hpc.wait_for("SELECT job_id FROM journal WHERE phase = 'stage' AND event = 'begin'", timeout=60)
        job_dir, = hpc.wait_for("SELECT json_extract(detail, '$.resource') FROM journal WHERE job_id = ? "
                                "AND phase = 'up' AND event = 'lease' AND json_extract(detail, '$.kind') = 'jobdir'",
                                job_id)
        deadline = time.monotonic() + 60  # killed while the upload's stream is under way (the scratch is local)
        while not any(Path(job_dir).glob("task-*/in/blobs/*")) and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = int(Path(testbed["dir"], "run", "sshd.pid").read_text())
        subprocess.run(["kill", "-9", str(pid)], check=True)
        subprocess.run(["pkill", "-9", "-f", "sshd: squall-svc"], check=False)
        time.sleep(2)
        arrived = {p.name: p.stat().st_size for p in Path(job_dir).glob("task-*/in/blobs/*")}
        subprocess.run([str(TESTBED), "up"], capture_output=True, check=True)
        out, err = controller.communicate(timeout=300)
    finally:
        kill_quietly(controller)
    report = json.loads(out)
    assert controller.returncode == 0 and report["status"] == "succeeded", err[-2000:]
    # the cut left no input short under its own name: only under its upload name, resumed from there
    assert {name: size for name, size in arrived.items() if not name.endswith(".squall-part")
            and size != 8 << 20} == {}, arrived
    assert "Socket exception" not in err  # paramiko's noise goes through logging, not onto the user's stderr
    (staged_from,), (staged_to,) = hpc.query(
        "SELECT ts FROM journal WHERE job_id = ? AND phase IN ('stage', 'launch') AND event = 'begin' ORDER BY seq",
        report["id"])
    retries = hpc.query("SELECT ts FROM journal WHERE phase = 'ssh' AND event = 'retry'")
    assert any(staged_from < ts < staged_to for (ts,) in retries), "the connection never dropped during staging"
    assert report["tasks"][0]["status"] == "succeeded"  # the runtime found every input (verified by sha256)
    assert leftovers(remote, testbed) == ([], [])


def test_fifty_jobs_complete_and_status_calls_stay_flat(hpc, make_spec):
    spec = make_spec({"name": "many", "command": "sleep 1"})
    runs = [hpc.start("job", "run", str(spec), "--site", "testbed", "--output", "json") for _ in range(50)]
    try:
        reports = [json.loads(proc.communicate(timeout=600)[0]) for proc in runs]
    finally:
        for proc in runs:
            kill_quietly(proc)
    assert [r["status"] for r in reports] == ["succeeded"] * 50
    (calls, span), = hpc.query("SELECT calls, at - since FROM site_polls WHERE site = 'testbed'")
    assert span > 2
    # poll interval is 1 s: one remote status call per interval for all 50 jobs (50 would be 50/s)
    assert calls / span <= 1.6, (calls, span)
    assert hpc.query("SELECT COUNT(*) FROM journal WHERE phase = 'poll'")[0][0] == 0  # counted, not journaled


def test_logs_follow_over_ssh_and_no_controller_secret_reaches_the_site(hpc, make_spec):
    spec = make_spec({"name": "talk", "command":
                      'for i in 1 2 3; do echo "line $i"; sleep 0.5; done; env > "$SQUALL_OUTPUT_DIR/env.txt"'})
    secret = "dummy-controller-secret-93f1"
    controller = hpc.start("job", "run", str(spec), "--site", "testbed", "--output", "json",
                           env={"AWS_SECRET_ACCESS_KEY": secret})
    try:
        job_id = hpc.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=60)[0]
        follow = hpc.run("job", "logs", job_id, "--follow")
        report = json.loads(controller.communicate(timeout=120)[0])
    finally:
        kill_quietly(controller)
    assert follow.stdout == "line 1\nline 2\nline 3\n"
    env = (Path(report["results"]) / "task-0" / "env.txt").read_text()
    assert secret not in env and "AWS_SECRET_ACCESS_KEY" not in env


def test_refuses_a_site_whose_runtime_differs_with_a_hint_to_enrol(hpc, wind_example, tmp_path):
    from squall.runtime import runtime_version

    other = runtime_copy(tmp_path / "other", f"8.8.8-{runtime_version()}")
    assert hpc.run("site", "enrol", "testbed", "--runtime-file", str(other)).returncode == 0
    try:
        proc = hpc.run("job", "run", str(wind_example), "--site", "testbed")
        assert proc.returncode == 3, proc.stderr
        assert "this controller needs" in proc.stderr and "squall site enrol testbed" in proc.stderr
        assert hpc.job_count() == 0
    finally:
        assert hpc.run("site", "enrol", "testbed", "--rollback").returncode == 0
