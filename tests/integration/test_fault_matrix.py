"""The fault matrix of issue 10, with real processes on the real test bed: signals in every phase (local
and HPC, mid-collect repeated), a results folder that is full or read-only, two stores on one HPC
account, ``kill -9`` during ``down``, a job folder removed under a running job. The one promise
checked everywhere: no succeeded task's output is ever lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Squall, communicate_or_show_stacks, kill_quietly, run_then_kill_9
from tests.integration.conftest import TESTBED, leftovers
from tests.integration.test_ssh_nodes import NODES, left, nodes_up, site  # noqa: F401 (site: a fixture)
from tests.integration.test_ssh_nodes import SITE as NODE_SITE
from tests.testbed.nodes import HEAD_NS

MIB = 1 << 20
TESTBED_INVENTORY = Path(__file__).resolve().parents[2] / "inventories" / "testbed"
# Each task writes data.bin: SIZE bytes of its index's digit, so every output's sha256 is known here.
PAYLOAD = 'head -c {size} /dev/zero | tr "\\0" "$SQUALL_TASK_INDEX" > "$SQUALL_OUTPUT_DIR/data.bin"'


def expected_sha(index: int, size: int) -> str:
    return hashlib.sha256(str(index).encode() * size).hexdigest()


def payload_spec(make_spec, name: str, size: int = 8 * MIB, split: int = 2, before: str = "",
                 inputs: int = 0, walltime: str = "00:05:00") -> Path:
    files = {f"in/f{i:03d}.txt": f"input {i}\n" * 1000 for i in range(inputs)}
    fields = {"name": name, "split": split, "command": before + PAYLOAD.format(size=size),
              "resources": {"walltime": walltime}}
    if inputs:
        fields["inputs"] = ["in"]
    return make_spec(fields, files, folder=name)


def start(squall: Squall, spec: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return squall.start("job", "run", str(spec), "--output", "json", *args, env=env)


def last_seq(squall: Squall) -> int:
    if not (squall.home / "squall.db").exists():
        return 0
    return squall.query("SELECT COALESCE(MAX(seq), 0) FROM journal")[0][0]


def wait_event(squall: Squall, phase: str, event: str = "begin", timeout: float = 120, after: int = 0) -> str:
    """The job whose journal shows PHASE/EVENT after entry ``after`` (earlier jobs of the test excluded)."""
    return squall.wait_for("SELECT job_id FROM journal WHERE phase = ? AND event = ? AND seq > ?",
                           phase, event, after, timeout=timeout)[0]


def settle(squall: Squall, job_id: str, *attach_args: str) -> dict:
    """The job's final report; an incomplete job (outputs kept at the site) is attached to finish it."""
    code, report = squall.json("job", "status", job_id)
    if report["status"] == "incomplete":
        code, report = squall.json("job", "attach", job_id, *attach_args)
        assert code == 0, report
    assert report["phase"] == "done", report
    return report


def assert_no_output_lost(squall: Squall, job_id: str, size: int) -> int:
    """Every task the store calls succeeded has its exact output in the results folder; returns how many."""
    report = squall.json("job", "status", job_id)[1]
    results = Path(report["results"])
    succeeded = [t["index"] for t in report["tasks"] if t["status"] == "succeeded"]
    for index in succeeded:
        data = results / f"task-{index}" / "data.bin"
        assert data.is_file(), f"task {index} succeeded but {data} is missing: {report}"
        assert hashlib.sha256(data.read_bytes()).hexdigest() == expected_sha(index, size)
    assert not list(results.rglob("*.partial")), "half-written files left in the results folder"
    job_json = results / "job.json"
    if job_json.exists():
        assert json.loads(job_json.read_text())["id"] == job_id  # complete, never empty
    return len(succeeded)


def journal(squall: Squall, job_id: str) -> list[tuple[str, str]]:
    return squall.query("SELECT phase, event FROM journal WHERE job_id = ? ORDER BY seq", job_id)


def acted_on(squall: Squall, controller: subprocess.Popen, job_id: str, timeout: float = 60) -> bool:
    """Whether the job journaled its interrupt while CONTROLLER still runs (False: it ended first)."""
    deadline = time.monotonic() + timeout
    while controller.poll() is None and time.monotonic() < deadline:
        if squall.query("SELECT 1 FROM journal WHERE job_id = ? AND event = 'interrupted'", job_id):
            return True
        time.sleep(0.005)
    return False


def interrupt_at(squall: Squall, spec: Path, phase: str, *args: str, signals: int = 1,
                 event: str = "begin") -> tuple[str, int]:
    """Run SPEC, send SIGINT as soon as the journal shows PHASE; a second one, if asked, as soon as the
    journal shows the first was acted on (the salvage begins there: a fixed delay let it finish first)."""
    after = last_seq(squall)
    controller = start(squall, spec, *args)
    try:
        job_id = wait_event(squall, phase, event, after=after)
        controller.send_signal(signal.SIGINT)
        if signals > 1 and acted_on(squall, controller, job_id):
            controller.send_signal(signal.SIGINT)
        out, err = communicate_or_show_stacks(controller, timeout=120)
    finally:
        kill_quietly(controller)
    assert "Traceback" not in err and "internal error" not in err, err[-3000:]
    if out.strip():
        json.loads(out)  # stdout is exactly one JSON document
    return job_id, controller.returncode


# signals in every phase -----------------------------------------------------------------------

PHASES = ["up", "stage", "launch", "monitor", "collect", "down"]


def assert_interrupted(code: int, phase: str) -> None:
    """130; or 0 when the job could finish first (a signal at the very end of collect or down)."""
    assert code in ((0, 130) if phase in ("collect", "down") else (130,)), code


@pytest.mark.parametrize("phase", PHASES)
def test_local_signal_in_every_phase_loses_nothing(squall, make_spec, phase):
    spec = payload_spec(make_spec, f"sig-{phase}", size=16 * MIB, inputs=200,
                        before="sleep 1; " if phase == "monitor" else "")
    job_id, code = interrupt_at(squall, spec, phase)
    assert_interrupted(code, phase)
    settle(squall, job_id)
    assert_no_output_lost(squall, job_id, 16 * MIB)
    assert squall.work_areas() == []
    assert squall.query("SELECT COUNT(*) FROM leases WHERE released_at IS NULL") == [(0,)]


@pytest.mark.parametrize("phase", PHASES)
def test_hpc_signal_in_every_phase_loses_nothing(hpc, make_spec, remote, testbed, phase):
    spec = payload_spec(make_spec, f"sig-{phase}", size=16 * MIB, inputs=200,
                        before="sleep 2; " if phase == "monitor" else "")
    job_id, code = interrupt_at(hpc, spec, phase, "--site", "testbed")
    assert_interrupted(code, phase)
    settle(hpc, job_id)
    assert_no_output_lost(hpc, job_id, 16 * MIB)
    assert leftovers(remote, testbed) == ([], [])


def test_hpc_signals_mid_collect_never_lose_an_output(hpc, make_spec, remote, testbed):
    """Ten trials, SIGINT as collect begins; every other trial a second SIGINT stops the salvage too,
    so the job ends incomplete with its folder kept, and ``job attach`` finishes the collect."""
    size = 24 * MIB
    spec = payload_spec(make_spec, "mid-collect", size=size, split=4)
    caught, kept = 0, 0
    for trial in range(10):
        job_id, code = interrupt_at(hpc, spec, "collect", "--site", "testbed", signals=1 + trial % 2)
        assert_interrupted(code, "collect")
        events = journal(hpc, job_id)
        caught += ("collect", "interrupted") in events
        kept += ("down", "kept") in events
        report = settle(hpc, job_id)
        assert assert_no_output_lost(hpc, job_id, size) == 4, report
        assert leftovers(remote, testbed) == ([], [])
    assert caught >= 5, f"only {caught} of 10 signals landed mid-collect: the trial proves little"
    assert kept >= 1, "no trial kept the job folder for attach"


def test_local_signal_mid_collect_never_loses_an_output(squall, make_spec):
    size = 24 * MIB
    spec = payload_spec(make_spec, "mid-collect", size=size, split=4)
    for trial in range(10):
        job_id, code = interrupt_at(squall, spec, "collect", signals=1 + trial % 2)
        assert_interrupted(code, "collect")
        report = settle(squall, job_id)
        assert assert_no_output_lost(squall, job_id, size) == 4, [(t["status"], t["error"]) for t in report["tasks"]]
        assert squall.work_areas() == []


def wait_catching_sigterm(pid: int, timeout: float = 60) -> None:
    """Until process PID has a SIGTERM handler (bit 15 of SigCgt in /proc/PID/status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.002)
    raise AssertionError("the command never installed its SIGTERM handler")


def test_sigterm_in_the_first_moments_exits_130_and_leaves_no_pending_job(squall, make_spec):
    # the tasks sleep so that every delay lands before the job could end (a signal after the outcome is ignored)
    spec = payload_spec(make_spec, "early", size=1024, inputs=3000, split=50, before="sleep 3; ")
    for delay in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9):
        controller = start(squall, spec)
        try:
            wait_catching_sigterm(controller.pid)  # past interpreter start-up: the command's own code runs
            time.sleep(delay)
            controller.send_signal(signal.SIGTERM)
            _, err = controller.communicate(timeout=120)
        finally:
            kill_quietly(controller)
        # 130, or death by SIGINT, which a shell reports as the same 130: about 1 run in 20-100 ends that way
        # with nothing on stderr; the CPython path that turns the handled interrupt into it is not found yet
        # (see the closing notes). What must never happen is checked below: no pending job, no work area.
        assert controller.returncode in (130, -signal.SIGINT), err[:3000] + " ... " + err[-1000:]
        assert "Traceback" not in err
        if squall.job_count():  # (when the signal came before the store was made, nothing exists at all)
            assert squall.query("SELECT id, phase FROM jobs WHERE phase != 'done'") == []
        assert squall.work_areas() == []


def test_ctrl_c_during_launch_returns_promptly(squall, make_spec):
    spec = make_spec({"name": "launch", "split": 16, "command": "sleep 300"}, folder="launch")
    controller = start(squall, spec)
    try:
        wait_event(squall, "launch")
        controller.send_signal(signal.SIGINT)
        sent = time.monotonic()
        controller.communicate(timeout=120)
        took = time.monotonic() - sent
    finally:
        kill_quietly(controller)
    assert controller.returncode == 130
    assert took < 15, f"{took:.1f} s after Ctrl-C (it waited 30 s for tasks that never started)"
    assert squall.work_areas() == []


# the results folder -------------------------------------------------------------------------------

def test_results_folder_checked_at_plan_time(squall, make_spec, mounts):
    spec = payload_spec(make_spec, "plan-check", size=1024, inputs=100)
    read_only = mounts.tmpfs("ro")
    mounts.read_only(read_only)
    proc = squall.run("job", "run", str(spec), "--results", str(read_only / "new"))
    assert proc.returncode == 2 and "--results" in proc.stderr and str(read_only) in proc.stderr, proc.stderr
    tiny = mounts.tmpfs("tiny", size="64k")
    proc = squall.run("job", "run", str(spec), "--results", str(tiny))
    assert proc.returncode == 2 and "free" in proc.stderr and str(tiny) in proc.stderr, proc.stderr
    assert squall.job_count() == 0 and squall.work_areas() == []


def _full_then_attach(squall: Squall, spec: Path, mounts, tmp_path: Path, *site: str) -> str:
    full = mounts.tmpfs("full", size="3m")
    code, report = squall.json("job", "run", str(spec), "--results", str(full), *site)
    assert code == 6, report
    assert report["status"] == "incomplete" and str(full) in report["error"], report
    assert f"squall job attach {report['id']}" in report["error"]
    assert not list(full.rglob("*.partial"))
    for report_file in full.rglob("job.json"):  # written whole where it fit, never empty
        assert json.loads(report_file.read_text())["status"] == "incomplete"
    code, done = squall.json("job", "attach", report["id"], "--results", str(tmp_path / "new"))
    assert code == 0 and done["status"] == "succeeded", done
    assert Path(done["results"]) == tmp_path / "new" / report["id"]
    assert assert_no_output_lost(squall, report["id"], 2 * MIB) == 2
    return report["id"]


def _read_only_then_attach(squall: Squall, spec: Path, mounts, tmp_path: Path, *site: str) -> str:
    results = mounts.tmpfs("turns-ro", size="64m")
    controller = start(squall, spec, "--results", str(results), *site)
    try:
        squall.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=120)
        mounts.read_only(results)
        out, err = communicate_or_show_stacks(controller, timeout=120)
    finally:
        kill_quietly(controller)
    report = json.loads(out)
    assert controller.returncode == 6 and report["status"] == "incomplete", err[-2000:]
    assert str(results) in report["error"] and "Read-only" in report["error"]
    code, done = squall.json("job", "attach", report["id"], "--results", str(tmp_path / "new"))
    assert code == 0 and done["status"] == "succeeded", done
    assert assert_no_output_lost(squall, report["id"], 2 * MIB) == 2
    return report["id"]


def test_local_results_folder_full_or_read_only_then_attach(squall, make_spec, mounts, tmp_path):
    _full_then_attach(squall, payload_spec(make_spec, "full", size=2 * MIB), mounts, tmp_path / "a")
    assert squall.work_areas() == []
    spec = payload_spec(make_spec, "ro", size=2 * MIB, before="sleep 2; ")
    _read_only_then_attach(squall, spec, mounts, tmp_path / "b")
    assert squall.work_areas() == []


def test_hpc_results_folder_full_or_read_only_then_attach(hpc, make_spec, mounts, tmp_path, remote, testbed):
    job_id = _full_then_attach(hpc, payload_spec(make_spec, "full", size=2 * MIB), mounts, tmp_path / "a",
                               "--site", "testbed")
    assert ("down", "kept") in journal(hpc, job_id)
    assert leftovers(remote, testbed) == ([], [])
    spec = payload_spec(make_spec, "ro", size=2 * MIB, before="sleep 3; ")
    _read_only_then_attach(hpc, spec, mounts, tmp_path / "b", "--site", "testbed")
    assert leftovers(remote, testbed) == ([], [])


# crashes and other stores -------------------------------------------------------------------------

def test_kill_9_during_down_after_a_complete_collect_is_not_abandoned(squall, make_spec):
    """Many staged inputs make ``down`` (removing the work area) long enough to be caught in."""
    spec = payload_spec(make_spec, "down", size=1024, inputs=4000, walltime="00:00:03")
    env = {"SQUALL_LEASE_MARGIN": "1"}
    for _attempt in range(5):
        controller = start(squall, spec, env=env)
        try:
            job_id = squall.wait_for("SELECT id FROM jobs WHERE phase = 'down'", timeout=120)[0]
            controller.send_signal(signal.SIGKILL)
            controller.wait()
        finally:
            kill_quietly(controller)
        if squall.query("SELECT phase FROM jobs WHERE id = ?", job_id) == [("down",)]:
            break
    else:
        pytest.fail("never caught a controller during down in 5 tries")
    assert ("collect", "end") in journal(squall, job_id)
    (expires,) = squall.query("SELECT MAX(expires_at) FROM leases WHERE job_id = ?", job_id)[0]
    time.sleep(max(0.0, expires - time.time()) + 0.5)  # past the lease: gc may act
    code, gc = squall.json("gc", "--yes", env=env)
    assert code == 0, gc
    assert {a["action"] for a in gc["actions"] if a["job_id"] == job_id} <= {"remove", "release"}, gc
    code, report = squall.json("job", "status", job_id)
    assert report["status"] == "succeeded" and report["error"] is None, report
    assert ("gc", "finished") in journal(squall, job_id)
    assert assert_no_output_lost(squall, job_id, 1024) == 2
    assert json.loads((Path(report["results"]) / "job.json").read_text())["status"] == "succeeded"
    assert squall.work_areas() == []


def test_gc_of_another_store_on_the_same_account_leaves_a_running_job_alone(hpc, make_spec, tmp_path, remote,
                                                                            testbed):
    other = Squall(tmp_path / "other-home", hpc.cwd)
    assert other.run("site", "add", "testbed", "--inventory", str(TESTBED_INVENTORY)).returncode == 0
    spec = payload_spec(make_spec, "shared", size=1024, before="sleep 6; ")
    controller = start(hpc, spec, "--site", "testbed")
    try:
        job_id = hpc.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=120)[0]
        code, gc = other.json("gc", "--yes")
        assert code == 0, gc
        mine = [a for a in gc["actions"] if a["site"] == "testbed"]
        assert {a["action"] for a in mine} == {"foreign"}, mine
        assert {a["kind"] for a in mine} - {"process"} == {"jobdir", "slurm"}  # and the tasks' runtimes
        code, gc = other.json("gc", "--yes", "--include-foreign-expired")  # not expired: still left alone
        assert {a["action"] for a in gc["actions"] if a["site"] == "testbed"} == {"foreign"}
        out, err = communicate_or_show_stacks(controller, timeout=120)
    finally:
        kill_quietly(controller)
    report = json.loads(out)
    assert controller.returncode == 0 and report["status"] == "succeeded", err[-2000:]
    assert assert_no_output_lost(hpc, job_id, 1024) == 2
    assert leftovers(remote, testbed) == ([], [])


def test_gc_removes_another_stores_folder_only_past_its_expiry_and_when_asked(hpc, tmp_path, remote, testbed):
    folder = f"{testbed['work_root']}/squall-261125-0ddba1"
    owner = json.dumps({"squall:store": "0123456789ab", "squall:expires": str(int(time.time()) - 60)})
    remote(f"mkdir -p {folder} && printf '%s' '{owner}' > {folder}/owner.json")
    unknown = f"{testbed['work_root']}/squall-261125-0ddba2"
    remote(f"mkdir -p {unknown}")
    assert hpc.run("site", "add", "testbed", "--inventory", str(TESTBED_INVENTORY)).returncode == 0
    try:
        code, gc = hpc.json("gc", "--yes")
        found = {a["resource"]: a for a in gc["actions"] if a["site"] == "testbed"}
        assert found[folder]["action"] == "foreign" and "--include-foreign-expired" in found[folder]["reason"]
        assert found[unknown]["action"] == "foreign" and "no expiry" in found[unknown]["reason"]
        code, gc = hpc.json("gc", "--yes", "--include-foreign-expired")
        found = {a["resource"]: a for a in gc["actions"] if a["site"] == "testbed"}
        assert found[folder]["action"] == "remove" and found[unknown]["action"] == "foreign"
        remaining = remote(f"ls -A {testbed['work_root']}").stdout.split()
        assert "squall-261125-0ddba1" not in remaining and "squall-261125-0ddba2" in remaining
    finally:
        remote(f"rm -rf {folder} {unknown}")


def test_a_job_whose_folder_vanished_says_so(hpc, make_spec, remote, testbed):
    spec = payload_spec(make_spec, "vanish", size=1024, before="sleep 5; ")
    controller = start(hpc, spec, "--site", "testbed")
    try:
        job_id = hpc.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=120)[0]
        remote(f"rm -rf {testbed['work_root']}/squall-{job_id}")
        out, err = communicate_or_show_stacks(controller, timeout=120)
    finally:
        kill_quietly(controller)
    report = json.loads(out)
    assert controller.returncode == 1 and report["status"] == "failed", err[-2000:]
    assert "vanished" in report["error"] and f"squall-{job_id}" in report["error"]
    assert leftovers(remote, testbed) == ([], [])


def test_hpc_results_are_exactly_the_payloads_files(hpc, make_spec, remote, testbed):
    spec = payload_spec(make_spec, "exact", size=1024, split=1)
    code, report = hpc.json("job", "run", str(spec), "--site", "testbed")
    assert code == 0, report
    task = Path(report["results"]) / "task-0"
    assert sorted(p.name for p in task.iterdir()) == ["data.bin"]  # no .keep, as on the local site


def test_the_batch_script_carries_the_store_in_its_owner_tags(hpc, make_spec, remote, testbed):
    spec = payload_spec(make_spec, "tags", size=1024, split=1, before="sleep 3; ")
    controller = start(hpc, spec, "--site", "testbed", env={"SQUALL_ORG": "acme"})
    try:
        job_id = hpc.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=120)[0]
        comment = remote(f"squeue -h -n squall-{job_id} -o %k").stdout.split()[0]
        marker = json.loads(remote(f"cat {testbed['work_root']}/squall-{job_id}/owner.json").stdout)
        controller.communicate(timeout=300)
    finally:
        kill_quietly(controller)
    store_id = hpc.query("SELECT value FROM meta WHERE key = 'store_id'")[0][0]
    assert "org=acme" in comment and f"store={store_id}" in comment
    assert marker["squall:store"] == store_id and marker["squall:org"] == "acme"


# nobody reading (second round: a closed pipe, a closed terminal) -------------------------------

CLOSED = {"stdout and stderr gone": ("text", ()), "json reader gone": ("json", ()),
          "stderr closed before start": ("text", ("--verbose",))}


def run_unread(squall: Squall, spec: Path, case: str, *args: str) -> tuple[int, str]:
    """``squall job run`` whose readers are gone from the start (``| head -c 0``), or whose stderr is a
    closed descriptor (``2>&-``); returns its exit code and the job's id."""
    output, extra = CLOSED[case]
    after = last_seq(squall)
    closing_fd2 = case == "stderr closed before start"
    controller = subprocess.Popen(
        squall.argv("job", "run", str(spec), "--output", output, *extra, *args), cwd=squall.cwd, env=squall.env,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL if closing_fd2 else subprocess.PIPE,
        stderr=subprocess.DEVNULL if closing_fd2 else subprocess.PIPE,
        preexec_fn=(lambda: os.close(2)) if closing_fd2 else None)
    if not closing_fd2:
        controller.stdout.close()  # the reader went away: every write from now on is EPIPE
        controller.stderr.close()
    try:
        code = controller.wait(timeout=300)
    finally:
        kill_quietly(controller)
    return code, wait_event(squall, "plan", "end", after=after)


@pytest.mark.parametrize("case", CLOSED)
def test_local_nobody_reading_never_stops_or_fails_a_job(squall, make_spec, case):
    spec = payload_spec(make_spec, "unread", size=MIB, split=8)  # one digit per task: see PAYLOAD
    code, job_id = run_unread(squall, spec, case)
    report = squall.json("job", "status", job_id)[1]
    assert code == 0 and report["status"] == "succeeded", report
    assert assert_no_output_lost(squall, job_id, MIB) == 8
    assert squall.work_areas() == []


def test_hpc_nobody_reading_never_stops_or_fails_a_job(hpc, make_spec, remote, testbed):
    spec = payload_spec(make_spec, "unread", size=MIB, split=8)  # one digit per task: see PAYLOAD
    for case in CLOSED:
        code, job_id = run_unread(hpc, spec, case, "--site", "testbed")
        report = hpc.json("job", "status", job_id)[1]
        assert code == 0 and report["status"] == "succeeded", (case, report)
        assert assert_no_output_lost(hpc, job_id, MIB) == 8
    assert leftovers(remote, testbed) == ([], [])


def hang_up_while_running(squall: Squall, spec: Path, *args: str, env: dict | None = None) -> tuple[str, int]:
    """SIGHUP to ``job run`` once a task has finished and others run, its terminal gone with it (the pipes'
    readers close); returns the job's id and the controller's exit code."""
    after = last_seq(squall)
    # SIGHUP as a terminal sends it: its default action, whatever this test process inherited (nohup, CI)
    controller = subprocess.Popen(squall.argv("job", "run", str(spec), *args), cwd=squall.cwd,
                                  env={**squall.env, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    try:
        job_id = wait_event(squall, "monitor", after=after)
        squall.wait_for("SELECT 1 FROM tasks WHERE job_id = ? AND status = 'succeeded'", job_id, timeout=120)
        controller.stdout.close()
        controller.stderr.close()
        controller.send_signal(signal.SIGHUP)
        code = controller.wait(timeout=120)
    finally:
        kill_quietly(controller)
    return job_id, code


def test_local_closed_terminal_collects_what_finished_and_ends_the_job(squall, make_spec):
    # two tasks, each its own slot on two cores: task 0 ends at once, task 1 still runs when the terminal closes
    spec = payload_spec(make_spec, "hangup", size=MIB, split=2, before='[ "$SQUALL_TASK_INDEX" -lt 1 ] || sleep 30; ')
    job_id, code = hang_up_while_running(squall, spec)
    assert code == 130
    assert ("monitor", "interrupted") in journal(squall, job_id)
    report = squall.json("job", "status", job_id)[1]
    assert report["phase"] == "done" and report["status"] == "cancelled", report
    assert assert_no_output_lost(squall, job_id, MIB) >= 1
    assert squall.work_areas() == []


def test_hpc_closed_terminal_collects_what_finished_and_ends_the_job(hpc, make_spec, remote, testbed):
    spec = payload_spec(make_spec, "hangup", size=MIB, split=2, before='[ "$SQUALL_TASK_INDEX" -lt 1 ] || sleep 60; ')
    job_id, code = hang_up_while_running(hpc, spec, "--site", "testbed")
    assert code == 130
    report = hpc.json("job", "status", job_id)[1]
    assert report["phase"] == "done" and report["status"] == "cancelled", report
    assert assert_no_output_lost(hpc, job_id, MIB) >= 1
    assert leftovers(remote, testbed) == ([], [])


def test_a_detached_controller_ignores_a_hangup(squall, make_spec):
    spec = payload_spec(make_spec, "detached", size=MIB, split=2, before="sleep 2; ")
    code, started = squall.json("job", "run", str(spec), "--detach")
    assert code == 0, started
    squall.wait_for("SELECT 1 FROM tasks WHERE job_id = ? AND status = 'running'", started["id"], timeout=60)
    controllers = [pid for pid in processes_running_with(["job", "attach", started["id"]])]
    assert controllers, "no background controller found"
    for pid in controllers:
        os.kill(pid, signal.SIGHUP)
    squall.wait_for("SELECT 1 FROM jobs WHERE id = ? AND phase = 'done'", started["id"], timeout=120)
    assert squall.json("job", "status", started["id"])[1]["status"] == "succeeded"
    assert assert_no_output_lost(squall, started["id"], MIB) == 2


def processes_running_with(words: list[str]) -> list[int]:
    """This machine's processes whose command line ends with ``words``."""
    found = []
    for folder in Path("/proc").iterdir():
        try:
            argv = (folder / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
        except OSError:
            continue
        if folder.name.isdigit() and argv[-len(words):] == words:
            found.append(int(folder.name))
    return found


# an orphaned job's outputs: collected by attach, kept by gc -------------------------------------

def orphan_in_down(squall: Squall, make_spec, name: str) -> str:
    """A job whose controller died (kill -9) while its tasks ran, journaled in ``down`` with nothing collected
    (where a closed pipe used to leave it); returns its id once every task has finished at the site."""
    spec = payload_spec(make_spec, name, size=MIB, split=4, before="sleep 1; ")
    job_id = run_then_kill_9(squall, str(spec))
    squall.query("UPDATE jobs SET phase = 'down' WHERE id = ?", job_id)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and task_states(squall, job_id) != ["succeeded"] * 4:
        time.sleep(0.1)
    assert task_states(squall, job_id) == ["succeeded"] * 4
    return job_id


def task_states(squall: Squall, job_id: str) -> list[str | None]:
    """What each task's runtime says in its status file at the site (the store never saw them end)."""
    states = []
    for status in sorted(squall.job_dir(job_id).glob("task-*/status.json")):
        try:
            states.append(json.loads(status.read_text()).get("state"))
        except ValueError:  # being replaced
            states.append(None)
    return states


def test_attach_collects_a_job_left_in_down_with_nothing_collected(squall, make_spec):
    job_id = orphan_in_down(squall, make_spec, "orphan-down")
    code, report = squall.json("job", "attach", job_id)
    assert code == 0 and report["status"] == "succeeded", report
    assert assert_no_output_lost(squall, job_id, MIB) == 4
    assert squall.work_areas() == []


def test_gc_keeps_an_expired_job_folder_until_its_outputs_are_collected_or_discarded(squall, make_spec):
    job_id = orphan_in_down(squall, make_spec, "orphan-gc")
    squall.query("UPDATE leases SET expires_at = 1 WHERE job_id = ?", job_id)  # past its lease
    code, swept = squall.json("gc", "--yes")
    mine = [a for a in swept["actions"] if a["job_id"] == job_id]
    assert code == 0 and mine and {a["action"] for a in mine} == {"uncollected"}, swept
    assert f"squall job attach {job_id}" in mine[0]["reason"]
    assert squall.work_areas() == [f"squall-{job_id}"]
    code, report = squall.json("job", "attach", job_id)
    assert code == 0 and assert_no_output_lost(squall, job_id, MIB) == 4
    assert squall.work_areas() == []

    discarded = orphan_in_down(squall, make_spec, "orphan-discard")
    squall.query("UPDATE leases SET expires_at = 1 WHERE job_id = ?", discarded)
    code, swept = squall.json("gc", "--yes", "--discard-uncollected")
    assert code == 0 and {a["action"] for a in swept["actions"] if a["job_id"] == discarded} == {"remove"}, swept
    assert squall.work_areas() == []


# the results folder removed or moved while collect runs -----------------------------------------

@pytest.mark.parametrize("fault", ["removed", "moved"])
def test_local_results_folder_gone_mid_collect_is_collected_again(squall, make_spec, fault):
    """Six trials: the results folder removed (or moved) as collect runs. The job collects again into a
    folder made anew, or ends incomplete (exit 6) keeping its work area for attach; never 'succeeded' with an
    output missing. A fault that lands after collect ended is the user's own doing and checked for that."""
    size = 16 * MIB
    spec = payload_spec(make_spec, f"gone-{fault}", size=size, split=8)
    mid_collect = 0
    for trial in range(6):
        after = last_seq(squall)
        controller = start(squall, spec)
        try:
            job_id = wait_event(squall, "collect", after=after)
            results = Path(squall.query("SELECT results_dir FROM jobs WHERE id = ?", job_id)[0][0])
            time.sleep(0.03 * (trial % 3))  # some files in, some not
            struck = time.time()
            moved = results.with_name(f"{results.name}.moved")
            if fault == "removed":
                shutil.rmtree(results, ignore_errors=True)
            elif results.exists():
                results.rename(moved)
            out, err = communicate_or_show_stacks(controller, timeout=120)
        finally:
            kill_quietly(controller)
        report = json.loads(out)
        ended = squall.query("SELECT ts FROM journal WHERE job_id = ? AND phase = 'collect' AND event = 'end'",
                             job_id)
        if ended and ended[0][0] < struck and report["status"] == "succeeded":  # the fault came after the end
            if fault == "moved":
                assert len(list(moved.glob("task-*/data.bin"))) == 8
            continue
        mid_collect += 1
        assert (controller.returncode, report["status"]) in ((0, "succeeded"), (6, "incomplete")), \
            (report["error"], [(t["status"], t["error"]) for t in report["tasks"]])
        if controller.returncode == 6:
            assert "cannot write results" in report["error"] or "vanished" in report["error"]
            code, report = squall.json("job", "attach", job_id)
            assert code == 0 and report["status"] == "succeeded", report["error"]
        assert assert_no_output_lost(squall, job_id, size) == 8
        assert squall.work_areas() == []
    assert mid_collect >= 2, "too few faults landed mid-collect: the trial proves little"


# --- a passing outage, a silent node (the SSH-node site behind its jump host) --------------------------------
WRITES_OK = 'sleep {seconds}; echo ok > "$SQUALL_OUTPUT_DIR/ok"'


def jump_host_down() -> None:
    """Every process of the jump host ends at once (its sshd and the sessions through it): what a restart or
    a crash of the head looks like from here. ``nodes_up`` brings its sshd back."""
    pids = subprocess.run(["ip", "netns", "pids", HEAD_NS], capture_output=True, text=True).stdout.split()
    subprocess.run(["kill", "-9", *pids], check=False)


def silence(nodes: dict, name: str, on: bool) -> None:
    """Node ``name`` drops every packet it receives (a network gone quiet, not a refusal), or stops doing so."""
    namespace = f"--net=/run/netns/{nodes['nodes'][name]['namespace']}"
    if on:
        rules = "table inet outage {\n chain input {\n  type filter hook input priority -10; policy drop;\n }\n}\n"
        subprocess.run(["nsenter", namespace, "nft", "-f", "-"], input=rules, text=True, check=True)
    else:
        subprocess.run(["nsenter", namespace, "nft", "delete", "table", "inet", "outage"], check=False)


def test_ssh_nodes_a_passing_outage_of_the_jump_host_loses_nothing(site, nodes, make_spec):
    """The jump host down for 40 s while the tasks finish behind it: every task was declared lost after 30 s
    and the job failed with 0 outputs. Silence proves nothing: the job waits, then collects everything."""
    spec = make_spec({"name": "outage", "split": 3, "outputs": ["ok"],
                      "command": WRITES_OK.format(seconds=8)})
    controller = site.start("job", "run", str(spec), "--site", NODE_SITE, "--output", "json")
    try:
        site.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=90)
        jump_host_down()
        down_at = time.monotonic()
        lost = site.wait_for("SELECT error FROM tasks WHERE status = 'lost'", timeout=60)
        assert "has not answered since" in lost[0] and "concludes nothing" in lost[0], lost
        time.sleep(max(0.0, 40 - (time.monotonic() - down_at)))
        nodes_up(nodes)
        out, err = communicate_or_show_stacks(controller, timeout=300)
    finally:
        kill_quietly(controller)
    report = json.loads(out)
    assert controller.returncode == 0, err[-3000:]
    assert [t["status"] for t in report["tasks"]] == ["succeeded"] * 3, report
    assert all((Path(report["results"]) / f"task-{i}" / "ok").read_text() == "ok\n" for i in range(3))
    assert left(nodes) == {name: [] for name in NODES}


def test_ssh_nodes_a_silent_node_is_reported_and_ctrl_c_keeps_its_outputs(site, nodes, make_spec):
    """One node's network silent: the controller said nothing for 5 minutes, then Ctrl-C skipped collecting
    and removed the healthy nodes' folders (0 of 3 outputs). Now the node is reported within a poll or two,
    Ctrl-C collects what the others finished and keeps every folder, and attach collects the rest."""
    spec = make_spec({"name": "silent", "split": 3, "outputs": ["ok"], "command": WRITES_OK.format(seconds=6)})
    controller = site.start("job", "run", str(spec), "--site", NODE_SITE, "--output", "json")
    try:
        job_id = site.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=90)[0]
        silence(nodes, "node-2", True)
        quiet_at = time.monotonic()
        lost = site.wait_for("SELECT idx, error FROM tasks WHERE status = 'lost'", timeout=90)
        reported_after = time.monotonic() - quiet_at
        site.wait_for("SELECT idx FROM tasks WHERE status = 'succeeded'", timeout=60)
        time.sleep(2)  # the two healthy nodes' tasks have ended
        controller.send_signal(signal.SIGINT)
        communicate_or_show_stacks(controller, timeout=120)
    finally:
        kill_quietly(controller)
        silence(nodes, "node-2", False)
    assert "node-2" in lost[1] and reported_after < 60, (lost, reported_after)
    code, status = site.json("job", "status", job_id)
    kept = [t for t in status["tasks"] if t["outputs"] is None]
    assert status["status"] == "incomplete" and [t["index"] for t in kept] == [lost[0]], status
    assert all(name in left(nodes)[node] for node in NODES for name in [f"squall-{job_id}"]), left(nodes)
    code, attached = site.json("job", "attach", job_id)
    assert code == 0 and attached["status"] == "succeeded", attached
    assert all((Path(attached["results"]) / f"task-{i}" / "ok").read_text() == "ok\n" for i in range(3))
    assert left(nodes) == {name: [] for name in NODES}


def test_ssh_nodes_an_outage_longer_than_the_tasks_exits_5_and_attach_collects_everything(site, nodes,
                                                                                           make_spec):
    """No host answers for longer than the tasks could run (walltime 5 s, kill grace 5 s, lease margin 3 s):
    the job says the site is unreachable (exit 5), concludes nothing about its tasks and removes nothing;
    once the site is back, attach collects every output."""
    spec = make_spec({"name": "long-outage", "split": 3, "outputs": ["ok"], "resources": {"walltime": "00:05"},
                      "command": WRITES_OK.format(seconds=2)})
    controller = site.start("job", "run", str(spec), "--site", NODE_SITE, "--output", "json",
                            env={"SQUALL_LEASE_MARGIN": "3"})
    try:
        job_id = site.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=90)[0]
        jump_host_down()
        out, err = communicate_or_show_stacks(controller, timeout=240)
    finally:
        kill_quietly(controller)
        nodes_up(nodes)
    report = json.loads(out)
    assert controller.returncode == 5 and report["status"] == "incomplete", (report, err[-2000:])
    assert "unreachable" in report["error"] and "attach" in report["error"], report
    assert not [t for t in report["tasks"] if t["status"] == "failed"], report  # nothing concluded
    assert all(f"squall-{job_id}" in left(nodes)[node] for node in NODES), left(nodes)
    code, attached = site.json("job", "attach", job_id)
    assert code == 0 and attached["status"] == "succeeded", attached
    assert all((Path(attached["results"]) / f"task-{i}" / "ok").read_text() == "ok\n" for i in range(3))
    assert left(nodes) == {name: [] for name in NODES}


# --- a full Squall home --------------------------------------------------------------------------------------

def home_on_a_small_disk(squall: Squall, mounts, tmp_path: Path) -> Path:
    """``squall``'s home on its own small file system; the local site's work area stays on another, so the
    payloads never notice when the home fills."""
    home = mounts.tmpfs("home", "16m")
    work = tmp_path / "work-elsewhere"
    work.mkdir()
    (home / "sites" / "local" / "work").mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(work), str(home / "sites" / "local" / "work")], check=True)
    squall.home, squall.env["SQUALL_HOME"] = home, str(home)
    return home


def fill(folder: Path) -> Path:
    """Write ``folder``'s file system full, to its last byte; the filler's path."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    size = 1 << 20
    while size:
        try:
            os.write(fd, b"\0" * size)
        except OSError:
            size //= 2
    os.close(fd)
    return filler


def test_a_home_full_for_a_while_delays_the_job_and_loses_nothing(squall, make_spec, mounts, tmp_path):
    """The home filled while 4 tasks run, then freed 8 s later: the store's writes wait for the space and
    the job succeeds with every output (before: 'internal error: database or disk is full', exit 1)."""
    home = home_on_a_small_disk(squall, mounts, tmp_path)
    spec = make_spec({"name": "full-home", "split": 4, "outputs": ["ok"], "command": WRITES_OK.format(seconds=3)})
    controller = squall.start("job", "run", str(spec), "--output", "json", env={"SQUALL_STORE_WAIT": "120"})
    try:
        squall.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=60)
        filler = fill(home)
        time.sleep(8)
        filler.unlink()
        out, err = communicate_or_show_stacks(controller, timeout=180)
    finally:
        kill_quietly(controller)
    report = json.loads(out)
    assert controller.returncode == 0 and report["status"] == "succeeded", (report, err[-2000:])
    assert all((Path(report["results"]) / f"task-{i}" / "ok").read_text() == "ok\n" for i in range(4))
    assert "is full" in err and str(home) in err, err[-2000:]


def test_a_home_that_stays_full_stops_the_job_with_exit_7_and_attach_finishes_it(squall, make_spec, mounts,
                                                                                  tmp_path):
    home = home_on_a_small_disk(squall, mounts, tmp_path)
    spec = make_spec({"name": "full-home", "split": 4, "outputs": ["ok"], "command": WRITES_OK.format(seconds=3)})
    controller = squall.start("job", "run", str(spec), "--output", "json", env={"SQUALL_STORE_WAIT": "3"})
    try:
        job_id = squall.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=60)[0]
        filler = fill(home)
        out, err = communicate_or_show_stacks(controller, timeout=180)
    finally:
        kill_quietly(controller)
    filler.unlink()
    assert controller.returncode == 7, err[-2000:]
    said = out + err
    assert "is full" in said and str(home) in said and "attach" in said, said[-2000:]
    code, attached = squall.json("job", "attach", job_id)
    assert code == 0 and attached["status"] == "succeeded", attached
    assert all((Path(attached["results"]) / f"task-{i}" / "ok").read_text() == "ok\n" for i in range(4))


# --- the scheduler restarted mid-monitor -------------------------------------------------------------------

@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_hpc_slurmctld_restarted_mid_monitor_loses_nothing(hpc, make_spec, remote, testbed, how):
    """slurmctld stopped (SIGTERM or SIGKILL) for 15 s while 2 tasks run and 2 wait, then started again: the job
    waits and reconciles with what Slurm and the runtime's status files say."""
    spec = payload_spec(make_spec, "ctld", size=MIB, split=4, before="sleep 10; ")
    controller = start(hpc, spec, "--site", "testbed")
    try:
        job_id = hpc.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=120)[0]
        # slurmctld saves its state within seconds of a change: killed sooner, it forgets it started the
        # tasks, starts them again, finds them on the node and drains it (Slurm's doing, not Squall's)
        time.sleep(6)
        status = subprocess.run([str(TESTBED), "status"], capture_output=True, text=True, timeout=60)
        os.kill(json.loads(status.stdout)["daemons"]["slurmctld"], how)
        time.sleep(15)
        up = subprocess.run([str(TESTBED), "up"], capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stderr[-2000:]
        out, err = communicate_or_show_stacks(controller, timeout=300)
    finally:
        kill_quietly(controller)
    assert controller.returncode == 0, (out[-2000:], err[-3000:])
    assert assert_no_output_lost(hpc, job_id, MIB) == 4
    assert leftovers(remote, testbed) == ([], [])


def test_hpc_slurm_silent_longer_than_a_pending_task_may_go_unlisted(hpc, make_spec, remote, testbed):
    """The test bed's one node is taken, so both tasks wait in Slurm's queue; slurmctld is then killed for
    longer than a task may go without a Slurm record (5 s here). Before, scontrol's failure read as "no
    record" and both tasks were failed; now they show lost while Slurm is silent, and the job succeeds once
    it answers again and the node is free."""
    blocker = remote("sbatch --parsable --exclusive -N1 -J fault-blocker -o /dev/null --wrap 'sleep 600'").stdout
    spec = payload_spec(make_spec, "ctld-long", size=MIB, split=2)
    controller = start(hpc, spec, "--site", "testbed", env={"SQUALL_SLURM_LOST_AFTER": "5"})
    try:
        job_id = hpc.wait_for("SELECT job_id FROM journal WHERE phase = 'monitor' AND event = 'begin'",
                              timeout=120)[0]
        time.sleep(6)  # slurmctld saves its state within seconds: killed sooner, it forgets the array
        status = subprocess.run([str(TESTBED), "status"], capture_output=True, text=True, timeout=60)
        os.kill(json.loads(status.stdout)["daemons"]["slurmctld"], signal.SIGKILL)
        lost = hpc.wait_for("SELECT error FROM tasks WHERE job_id = ? AND status = 'lost'", job_id, timeout=90)
        time.sleep(10)
        up = subprocess.run([str(TESTBED), "up"], capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stderr[-2000:]
        remote(f"scancel {blocker.strip()}")
        out, err = communicate_or_show_stacks(controller, timeout=300)
    finally:
        kill_quietly(controller)
        remote(f"scancel {blocker.strip()}", check=False)
    assert "Slurm has not answered since" in lost[0], lost
    assert controller.returncode == 0, (out[-2000:], err[-3000:])
    assert assert_no_output_lost(hpc, job_id, MIB) == 2
    assert leftovers(remote, testbed) == ([], [])


def test_hpc_a_full_work_root_says_the_disk_is_full(hpc, make_spec, remote, testbed):
    """The site's work root fills up while the payload writes its output. Before, the runtime died writing the
    manifest and the task read "Slurm ended the task: FAILED" with an empty stderr; now it says no space was
    left on the device and where."""
    root = testbed["work_root"]
    owner = os.stat(root)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=2m,mode=0700,uid={owner.st_uid},"
                              f"gid={owner.st_gid}", "tmpfs", root], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"this machine refuses mounts (needed for a full work root): {mounted.stderr.strip()}")
    try:
        spec = payload_spec(make_spec, "full-root", size=8 * MIB, split=1)
        proc = hpc.run("job", "run", str(spec), "--output", "json", "--site", "testbed")
        report = json.loads(proc.stdout)
        remains = leftovers(remote, testbed)
    finally:
        subprocess.run(["umount", "-l", root], check=False)
    assert proc.returncode == 1 and report["status"] == "failed", (proc.stdout[-2000:], proc.stderr[-2000:])
    error = report["tasks"][0]["error"]
    assert error.startswith("no space left on device: the file system of ") and root in error, error
    assert remains == ([], [])


def strays(remote, marker: str) -> list[str]:
    """The service account's processes whose command line holds ``marker``."""
    return [line for line in remote("ps -u $(id -u) -o pid=,args=").stdout.splitlines() if marker in line]


def test_hpc_down_ends_a_payload_that_left_its_process_group(hpc, make_spec, remote, testbed):
    """A payload starts a helper in a session of its own (setsid): Slurm's linuxproc tracking loses it and
    the runtime's group kill misses it. Before, it outlived the job at the site; now down ends every
    process still working in the job folder before removing it."""
    spec = make_spec({"name": "escapes", "split": 1, "resources": {"walltime": "00:05:00"},
                      "command": 'setsid sleep 421 </dev/null >/dev/null 2>&1 & echo ok > "$SQUALL_OUTPUT_DIR/x"'})
    try:
        proc = hpc.run("job", "run", str(spec), "--output", "json", "--site", "testbed")
        left = strays(remote, "sleep 421")
    finally:
        remote("pkill -u $(id -u) -f 'sleep 421'", check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert left == []
    assert leftovers(remote, testbed) == ([], [])


def test_hpc_gc_ends_this_stores_leftover_processes_only(hpc, make_spec, remote, testbed):
    """A job kept at the site (--keep-remote) has a process still working in its folder, and so has a folder
    of another store: gc ends the first (its job is over) and leaves the other alone."""
    spec = make_spec({"name": "kept", "split": 1, "command": 'echo ok > "$SQUALL_OUTPUT_DIR/x"'})
    code, report = hpc.json("job", "run", str(spec), "--site", "testbed", "--keep-remote")
    assert code == 0, report
    root = testbed["work_root"]
    ours, theirs = f"{root}/squall-{report['id']}", f"{root}/squall-261207-0ther5"
    remote(f"mkdir -p {theirs} && printf '%s' '{{\"squall:store\": \"0therstore12\"}}' > {theirs}/owner.json")
    for folder, seconds in ((ours, 431), (theirs, 432)):
        remote(f"cd {folder} && (setsid sleep {seconds} </dev/null >/dev/null 2>&1 &)")
    try:
        code, answer = hpc.json("gc", "--yes")
        actions = answer["actions"]
        left_ours, left_theirs = strays(remote, "sleep 431"), strays(remote, "sleep 432")
    finally:
        remote("pkill -u $(id -u) -f 'sleep 43[12]'", check=False)
        remote(f"rm -rf {theirs}", check=False)
    ended = [a for a in actions if a["kind"] == "process" and a["action"] == "remove"]
    assert [a["job_id"] for a in ended] == [report["id"]], actions
    assert left_ours == [] and len(left_theirs) == 1, (left_ours, left_theirs)
    assert any(a["kind"] == "process" and a["action"] == "foreign" for a in actions), actions


def test_hpc_a_job_cancelled_behind_squalls_back_says_so_at_once(hpc, make_spec, remote, testbed):
    """The site's admin runs scancel on Squall's array: the tasks said 'cancelled (exit -15)' with no reason
    (in the issue's trial, 'failed (exit None)' two minutes later). Now each says at once that it was
    cancelled at the site, not by Squall, with what Slurm said; the job failed (exit 1)."""
    spec = payload_spec(make_spec, "scancelled", size=MIB, split=2, before="sleep 60; ")
    controller = start(hpc, spec, "--site", "testbed")
    try:
        job_id = hpc.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=120)[0]
        remote(f"scancel --name=squall-{job_id}")
        cancelled_at = time.monotonic()
        out, err = communicate_or_show_stacks(controller, timeout=300)
    finally:
        kill_quietly(controller)
    ended_after = time.monotonic() - cancelled_at
    report = json.loads(out)
    assert ended_after < 60 and controller.returncode == 1 and report["status"] == "failed", (ended_after, report)
    assert all(t["status"] == "cancelled" and t["error"].startswith("cancelled at the site, not by Squall")
               and "Slurm: " in t["error"] for t in report["tasks"]), report["tasks"]
    assert leftovers(remote, testbed) == ([], [])
