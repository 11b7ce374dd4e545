"""The runtime as a real process on real task folders."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from squall.runtime import runtime_path, runtime_version
from squall.runtime.squall_runtime import (build_manifest, can_isolate_network, container_argv, engine_argv, glob_regex,
                                          write_env_file)
from squall.sites.workarea import TASK_FORMAT

from tests.conftest import pid_alive


def make_task(tmp_path: Path, command: list[str], **extra) -> Path:
    task = tmp_path / "task-0"
    (task / "out").mkdir(parents=True)
    spec = {"format": TASK_FORMAT, "job_id": "j", "index": 0, "count": 1, "command": command, "walltime": 30,
            "kill_grace": 1, "outputs": ["**"], "heartbeat": 0.2, **extra}
    (task / "task.json").write_text(json.dumps(spec))
    return task


def run_runtime(task: Path, env: dict | None = None, timeout: float = 60) -> dict:
    subprocess.run([sys.executable, str(runtime_path()), "run", str(task)], env=env, timeout=timeout, check=False)
    return json.loads((task / "status.json").read_text())


def test_the_runtime_reads_the_task_format_the_controller_writes():
    from squall.runtime import squall_runtime

    assert squall_runtime.TASK_FORMAT == TASK_FORMAT
    health = Path(__file__).resolve().parents[2] / "roles" / "squall_health" / "tasks" / "main.yml"
    assert f"format: {TASK_FORMAT}  #" in health.read_text()  # the health job's task.json too


@pytest.mark.parametrize("content, message", [
    (None, "task.json has format 99"), ("[1, 2]", "not a mapping"), ("{not json", "cannot read"),
])
def test_a_task_of_another_format_or_no_task_at_all_is_a_clear_error(tmp_path, content, message):
    task = make_task(tmp_path, ["/bin/sh", "-c", "touch out/ran"], format=99)
    if content is not None:
        (task / "task.json").write_text(content)
    proc = subprocess.run([sys.executable, str(runtime_path()), "run", str(task)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert not (task / "out" / "ran").exists()
    if content is None:
        status = json.loads((task / "status.json").read_text())
        assert status["state"] == "failed" and message in status["error"] and "squall site enrol" in status["error"]
    else:
        assert message in proc.stderr


def test_success_records_metrics_and_a_checksummed_manifest(tmp_path):
    task = make_task(tmp_path, ["/bin/sh", "-c", "mkdir -p out/sub && printf hello > out/sub/a.txt && echo done"])
    status = run_runtime(task)
    assert status["state"] == "succeeded" and status["exit_code"] == 0
    assert status["wall_time"] > 0 and status["max_rss_kb"] > 0
    manifest = json.loads((task / "manifest.json").read_text())
    assert manifest["files"] == [{"path": "sub/a.txt", "size": 5, "sha256": hashlib.sha256(b"hello").hexdigest()}]
    assert (task / "stdout.log").read_text() == "done\n"


def test_failure_keeps_the_exit_code_and_stderr(tmp_path):
    task = make_task(tmp_path, ["/bin/sh", "-c", "echo boom >&2; exit 3"])
    status = run_runtime(task)
    assert (status["state"], status["exit_code"]) == ("failed", 3)
    assert (task / "stderr.log").read_text() == "boom\n"


def test_walltime_kills_the_whole_process_group(tmp_path):
    script = "sleep 300 & echo $! > out/child.pid; exec sleep 300"
    task = make_task(tmp_path, ["/bin/sh", "-c", script], walltime=1)
    started = time.monotonic()
    status = run_runtime(task)
    assert status["state"] == "timeout"
    assert time.monotonic() - started < 20
    child = int((task / "out" / "child.pid").read_text())
    deadline = time.monotonic() + 3
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child), "the payload's background child survived the walltime"


def test_sigterm_cancels(tmp_path):
    task = make_task(tmp_path, ["sleep", "300"])
    proc = subprocess.Popen([sys.executable, str(runtime_path()), "run", str(task)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (task / "status.json").exists() and json.loads((task / "status.json").read_text())["state"] == "running":
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    assert json.loads((task / "status.json").read_text())["state"] == "cancelled"


def test_environment_is_an_allow_list(tmp_path):
    task = make_task(tmp_path, ["/bin/sh", "-c", "env > out/env.txt; tr '\\0' '\\n' < /proc/$PPID/environ > out/parent.txt"])
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": "dummy-secret-4242", "SSH_AUTH_SOCK": "/tmp/agent"}
    run_runtime(task, env=env)
    payload_env = (task / "out" / "env.txt").read_text()
    assert "dummy-secret-4242" not in payload_env and "SSH_AUTH_SOCK" not in payload_env
    names = {line.split("=", 1)[0] for line in payload_env.splitlines() if "=" in line}
    assert {"SQUALL_INPUT_DIR", "SQUALL_OUTPUT_DIR", "SQUALL_TASK_INDEX", "HOME", "PATH"} <= names


def test_symlinks_in_the_output_are_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not collect")
    task = make_task(tmp_path, ["/bin/sh", "-c", f"ln -s {secret} out/leak.txt; echo ok > out/ok.txt"])
    run_runtime(task)
    manifest = json.loads((task / "manifest.json").read_text())
    assert [f["path"] for f in manifest["files"]] == ["ok.txt"]
    assert manifest["skipped"] == [{"path": "leak.txt", "reason": "not a regular file"}]


def test_network_is_cut_when_the_os_permits(tmp_path):
    isolated, note = can_isolate_network()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    probe = (
        "import socket,sys\n"
        f"try:\n socket.create_connection(('127.0.0.1', {port}), timeout=2); print('reached')\n"
        "except OSError as e:\n print('blocked', e)\n"
    )
    task = make_task(tmp_path, [sys.executable, "-c", probe])
    status = run_runtime(task)
    server.close()
    assert status["network_isolated"] is isolated and status["isolation_note"] == note
    output = (task / "stdout.log").read_text()
    if not isolated:
        pytest.skip(f"this kernel refuses network namespaces ({note}); isolation is recorded as not applied")
    assert output.startswith("blocked"), output


def test_glob_semantics():
    assert glob_regex("*.json").match("a.json") and not glob_regex("*.json").match("d/a.json")
    assert glob_regex("**/*.json").match("a.json") and glob_regex("**/*.json").match("d/e/a.json")
    assert glob_regex("**").match("x/y/z")


def test_manifest_filters_by_output_globs(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "b.tmp").write_text("x")
    assert [f["path"] for f in build_manifest(str(tmp_path), ["*.json"])["files"]] == ["a.json"]


@pytest.mark.parametrize("runtime", ["apptainer", "singularity"])
def test_container_command_keeps_the_task_folder(runtime):
    argv = container_argv(runtime, "img:1", "/w/task-0", {"PATH": "/bin", "SQUALL_TASK_INDEX": "0"}, ["run", "x"])
    assert argv[0] == runtime and argv[-3:] == ["img:1", "run", "x"]
    assert "/w/task-0:/w/task-0" in argv


@pytest.mark.parametrize("engine", ["podman", "docker"])
def test_engine_command_has_no_network_a_name_and_the_environment_only_in_a_file(engine, tmp_path):
    env_file = tmp_path / "env"
    write_env_file(str(env_file), {"PATH": "/bin", "SQUALL_TASK_INDEX": "0", "SPACED": "a b"})
    argv = engine_argv(engine, "img:1", "/w/task-0", str(env_file), "squall-x", ["run", "x"])
    assert argv[:2] == [engine, "run"] and argv[-3:] == ["img:1", "run", "x"]
    assert argv[argv.index("--network") + 1] == "none" and argv[argv.index("--name") + 1] == "squall-x"
    assert "/w/task-0:/w/task-0" in argv and argv[argv.index("--env-file") + 1] == str(env_file)
    assert not any("SQUALL_TASK_INDEX" in word for word in argv)
    assert env_file.read_text() == "PATH=/bin\nSPACED=a b\nSQUALL_TASK_INDEX=0\n"
    assert env_file.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError, match="BAD holds a newline"):
        write_env_file(str(env_file), {"BAD": "x\ny"})


def test_runtime_is_stdlib_only_and_versioned():
    from squall.runtime import bundle_files

    for file in bundle_files().values():
        source = file.read_text()
        assert "import squall" not in source and "from squall" not in source, file
    assert runtime_version() == "0.12.0"
    out = subprocess.run([sys.executable, "-I", "-S", str(runtime_path()), "version"], capture_output=True, text=True)
    assert out.stdout.strip() == runtime_version()


def test_runtime_and_its_scheduler_modules_parse_as_python_3_8():
    import ast

    from squall.runtime import bundle_files

    assert len(bundle_files()) >= 3  # the runtime, slurm and gridengine
    for file in bundle_files().values():
        ast.parse(file.read_text(), feature_version=(3, 8))


def test_the_bundle_digest_is_what_a_site_computes_with_coreutils_and_changes_with_any_file(tmp_path):
    """A site checks its installed runtime with ``sha256sum`` alone: the controller's digest must be the same,
    and a scheduler module changed (or missing) must change it."""
    import shutil

    from squall.runtime import BUNDLE_DIGEST_SH, bundle_files, runtime_sha256

    for name, file in bundle_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, tmp_path / name)
    site = subprocess.run(["sh", "-c", BUNDLE_DIGEST_SH], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert site.stdout.strip() == runtime_sha256() == runtime_sha256(tmp_path / "squall_runtime.py")
    with open(tmp_path / "schedulers" / "slurm.py", "a") as module:
        module.write("# changed\n")
    changed = runtime_sha256(tmp_path / "squall_runtime.py")
    assert changed != runtime_sha256()
    (tmp_path / "schedulers" / "slurm.py").unlink()
    assert runtime_sha256(tmp_path / "squall_runtime.py") not in (changed, runtime_sha256())


def test_every_scheduler_module_has_an_executor_and_answers_the_runtime_s_questions():
    """The runtime asks a scheduler module six things; the ``hpc`` kind opens ``squall.sites.executors.<name>``."""
    import importlib

    from squall.runtime import scheduler_names
    from squall.runtime.squall_runtime import load_scheduler
    from squall.sites.executors.batch import BatchExecutor

    assert {"slurm", "gridengine"} <= set(scheduler_names())
    for name in scheduler_names():
        module = load_scheduler(name)
        for question in ("submit", "records", "cancel", "test_only", "limits", "jobs"):
            assert callable(getattr(module, question)), (name, question)
        executor = importlib.import_module(f"squall.sites.executors.{name}").EXECUTOR
        assert issubclass(executor, BatchExecutor) and executor.scheduler == name
    for bad in ("../slurm", "Slurm", "", "none2/x"):
        with pytest.raises(ValueError):
            load_scheduler(bad)


def test_staging_paths_never_leave_the_job_folder(tmp_path):
    """``verify`` resolves each folder once; a path climbing out, or a symbolic link planted in the job folder
    pointing out, is refused; a file inside is found."""
    from squall.runtime.squall_runtime import verify

    job = tmp_path / "squall-j"
    (job / "task-0" / "in").mkdir(parents=True)
    (tmp_path / "outside").write_text("x")
    os.symlink(tmp_path / "outside", job / "task-0" / "in" / "planted")
    os.symlink(tmp_path, job / "task-0" / "up")
    entry = {"size": 1, "sha256": hashlib.sha256(b"x").hexdigest()}
    for rel in ("../outside", "task-0/../../outside", "task-0/in/planted", "task-0/up/outside", "/etc/passwd",
                "task-0/in/.."):
        with pytest.raises(ValueError):
            verify(str(job), [{**entry, "path": rel}])
    (job / "task-0" / "in" / "a").write_text("x")
    assert verify(str(job), [{**entry, "path": "task-0/in/a"}, {**entry, "path": "task-0/in/b"}])["missing"] \
        == ["task-0/in/b"]


def test_verify_hashes_many_files_at_once_and_names_each_that_differs(tmp_path):
    """Files hashed on several threads: each answer lands on its own entry (good, damaged, an upload cut short,
    absent, an upload arrived whole, one arrived wrong), and a second verify reads no content (the record of
    what was verified). Uploads travel under their part name: nothing short ever has the input's own name."""
    from squall.runtime.squall_runtime import STAGED_RECORD, part_of, verify

    job = tmp_path / "squall-j"
    (job / "task-0" / "in").mkdir(parents=True)
    entries = []
    for index in range(12):
        data = os.urandom(1000 + index)
        (job / "task-0" / "in" / f"f{index}").write_bytes(data)
        entries.append({"path": f"task-0/in/f{index}", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    (job / "task-0" / "in" / "f3").write_bytes(b"x" * entries[3]["size"])  # same size, other bytes
    five = job / "task-0" / "in" / "f5"
    (job / part_of("task-0/in/f5")).write_bytes(five.read_bytes()[:100])  # an upload cut short
    five.unlink()
    (job / "task-0" / "in" / "f7").unlink()
    eight, nine = job / "task-0" / "in" / "f8", job / "task-0" / "in" / "f9"
    eight.rename(job / part_of("task-0/in/f8"))  # arrived whole and right
    nine.unlink()
    (job / part_of("task-0/in/f9")).write_bytes(b"z" * entries[9]["size"])  # arrived whole, other bytes
    answer = verify(str(job), entries)
    assert answer == {"missing": ["task-0/in/f3", "task-0/in/f5", "task-0/in/f7", "task-0/in/f9"],
                      "partial": {"task-0/in/f5": 100}}
    assert hashlib.sha256(eight.read_bytes()).hexdigest() == entries[8]["sha256"]
    assert not five.exists() and not (job / part_of("task-0/in/f9")).exists()
    assert sorted(p.name for p in (job / "task-0" / "in").glob(".*")) == [".f5.squall-part"]
    record = json.loads((job / STAGED_RECORD).read_text())
    assert record["task-0/in/f0"][2] == entries[0]["sha256"] and "task-0/in/f7" not in record
    first = job / "task-0" / "in" / "f0"
    before = first.stat()
    first.write_bytes(b"y" * before.st_size)  # other bytes behind the same size and mtime: not read again
    os.utime(first, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert verify(str(job), entries)["missing"] == answer["missing"]


def test_wait_returns_when_a_task_changes_state_not_on_a_heartbeat(tmp_path):
    """The remote controller's wait: a status file replaced with the same state (a heartbeat) does not end it;
    a status written since the controller's last poll began, a new state, a new task's first status or the
    folder removed does."""
    import shutil
    import threading

    from squall.runtime.squall_runtime import wait_for_change, write_json

    job = tmp_path / "squall-j"
    for index in (0, 1):
        (job / f"task-{index}").mkdir(parents=True)
    write_json(str(job / "task-0" / "status.json"), {"state": "running", "heartbeat_at": 1})

    def later(action):
        timer = threading.Timer(0.3, action)
        timer.start()
        return timer

    (job / "launch.json").write_text("{}")
    polled = time.time() + 0.01  # a poll began after the first status was written
    time.sleep(0.02)
    later(lambda: write_json(str(job / "task-0" / "status.json"), {"state": "running", "heartbeat_at": 2}))
    assert wait_for_change(1.0, polled, [str(job)]) == {"changed": False}
    assert wait_for_change(1.0, 0.0, [str(job)]) == {"changed": True}  # written since that poll: at once
    polled = time.time() + 0.01
    time.sleep(0.02)
    later(lambda: write_json(str(job / "task-0" / "status.json"), {"state": "succeeded"}))
    assert wait_for_change(5.0, polled, [str(job)]) == {"changed": True}
    polled = time.time() + 0.01
    time.sleep(0.02)
    later(lambda: write_json(str(job / "task-1" / "status.json"), {"state": "running"}))
    assert wait_for_change(5.0, polled, [str(job)]) == {"changed": True}
    later(lambda: shutil.rmtree(job))
    assert wait_for_change(5.0, time.time() + 1, [str(job)]) == {"changed": True}
    assert wait_for_change(0.2, time.time(), [str(job)]) == {"changed": True}  # gone: the poll must say so


def test_wait_is_an_agent_call_with_a_bounded_timeout(tmp_path):
    """Through the command line as the agent takes it: a timeout that is not a plain number is refused."""
    job = tmp_path / "squall-j"
    (job / "task-0").mkdir(parents=True)
    (job / "launch.json").write_text("{}")
    out = subprocess.run([sys.executable, "-I", "-S", str(runtime_path()), "wait", "0.100", "1700000000.25",
                          str(job)], capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout) == {"changed": False}
    for bad in (["1e9", "0"], ["-1", "0"], ["inf", "0"], ["1;true", "0"], ["1", "nan"], ["1", "-5"]):
        assert subprocess.run([sys.executable, "-I", "-S", str(runtime_path()), "wait", *bad, str(job)],
                              capture_output=True).returncode == 2
def test_a_job_array_is_submitted_with_slurms_variables_a_plain_path_and_nothing_else(monkeypatch):
    """``--export=ALL`` of this environment: the submitting session's own variables never reach the job."""
    import pwd

    from squall.runtime.squall_runtime import DEFAULT_PATH, load_scheduler

    batch_environment = load_scheduler("slurm").batch_environment

    monkeypatch.setenv("SLURM_CONF", "/etc/slurm/site.conf")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "never-in-a-job")
    monkeypatch.setenv("PATH", "/home/someone/bin:/usr/bin")
    env = batch_environment()
    me = pwd.getpwuid(os.getuid())
    assert env == {**{k: v for k, v in os.environ.items() if k.startswith("SLURM_")}, "PATH": DEFAULT_PATH,
                   "HOME": me.pw_dir, "USER": me.pw_name, "LOGNAME": me.pw_name}
    assert env["SLURM_CONF"] == "/etc/slurm/site.conf"


def test_a_task_that_met_a_full_file_system_says_so_even_where_nothing_new_can_be_written(tmp_path, monkeypatch):
    """In the runtime's own process: the file system reports no room and new files cannot be made (the
    manifest, the status's temporary file); the status is written over its own blocks and names the cause."""
    from types import SimpleNamespace

    from squall.runtime import squall_runtime

    task_dir = make_task(tmp_path, ["true"])
    task = squall_runtime.Task(str(task_dir))
    task.save(state="running")
    monkeypatch.setattr(squall_runtime.os, "statvfs", lambda path: SimpleNamespace(
        f_bavail=0, f_frsize=4096, f_files=100, f_favail=90))

    def no_room(path, data, mode=0o644):
        raise OSError(28, "No space left on device", path)

    monkeypatch.setattr(squall_runtime, "write_bytes_atomically", no_room)
    assert task.finish(0, 1.0, 10, None) == 1
    status = json.loads((task_dir / "status.json").read_text())
    assert status["state"] == "failed"
    assert status["error"].startswith(f"no space left on device: the file system of {task_dir} is full (0 bytes")
    assert not (task_dir / "manifest.json").exists()


def test_a_runtime_that_could_not_even_write_its_status_is_read_from_slurms_exit_code():
    from squall.sites.executors.slurm import DISK_FULL_EXIT, _task_state
    from squall.runtime import squall_runtime

    assert DISK_FULL_EXIT == squall_runtime.DISK_FULL_EXIT
    state = _task_state(0, {"state": "running"}, {"JobState": "FAILED", "ExitCode": f"{DISK_FULL_EXIT}:0"}, lost=False)
    assert state.state == "failed" and state.error.startswith("no space left on device")
