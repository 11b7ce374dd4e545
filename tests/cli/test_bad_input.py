"""Every bad spec, inventory, key and home found under fault injection: a clear message naming the
file and field, the documented exit code, nothing created, never "internal error" (issue 10)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TESTBED_INVENTORY = REPO / "inventories" / "testbed"


def assert_nothing_created(squall) -> None:
    assert squall.job_count() == 0
    assert not (squall.cwd / "squall-results").exists()
    assert squall.work_areas() == []


def assert_clear(proc: subprocess.CompletedProcess, code: int, *names: str) -> None:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    for name in names:
        assert name in proc.stderr, (name, proc.stderr)


# spec text (or fields), extra files, what the message must name
def _spec_cases(tmp: Path) -> list[tuple[str, str, dict[str, bytes | None], list[str]]]:
    ok = "name: x\ncommand: 'true'\n"
    return [
        ("nul-in-command", yaml.safe_dump({"name": "x", "command": ["echo", "a\0b"]}), {}, ["command", "NUL"]),
        ("nul-in-shell-line", yaml.safe_dump({"name": "x", "command": "echo a\0b"}), {}, ["command", "NUL"]),
        ("nul-in-label", ok + yaml.safe_dump({"labels": {"team": "a\0b"}}), {}, ["labels.team", "NUL"]),
        ("memory-400-digits", ok + f"resources: {{memory: '{'9' * 400}M'}}\n", {}, ["resources.memory"]),
        ("memory-over-1-pib", ok + "resources: {memory: '2000T'}\n", {}, ["resources.memory", "1 PiB"]),
        ("walltime-past-timestamps", ok + "resources: {walltime: '9999-00:00:00'}\n", {},
         ["resources.walltime", "365 days"]),
        ("walltime-huge-hours", ok + f"resources: {{walltime: '{'9' * 30}:00:00'}}\n", {}, ["resources.walltime"]),
        ("deep-nesting", ok + "labels: " + "[" * 3000 + "]" * 3000 + "\n", {}, ["nested too deeply"]),
        ("duplicate-key", "name: x\ncommand: 'true'\nsplit: 2\nsplit: 3\n", {}, ["'split' is given twice", "line 4"]),
        ("symlink-loop", ok + "inputs: [data]\n", {"data/loop": None}, ["inputs[0]", "data/loop"]),
        ("empty-folder", ok + "inputs: [data]\n", {"data/": None}, ["inputs[0]", "holds no files"]),
        ("newline-in-input-name", ok + "inputs: [data]\n", {"data/a\nb.csv": b"1"}, ["inputs[0]", "line break"]),
        ("over-1-mib", ok + "# " + "x" * (1 << 20) + "\n", {}, ["larger than 1 MiB"]),
        ("control-character", ok + "labels: {a: \"\x04\"}\n", {}, ["not valid YAML", "#x0004"]),
        ("memory-without-unit", ok + "resources: {memory: 1024}\n", {},
         ["resources.memory", "K, M, G or T", "'1024M'"]),
        ("walltime-a-number", ok + "resources: {walltime: 600}\n", {}, ["resources.walltime", "D-HH:MM:SS"]),
        ("walltime-out-of-range", ok + "resources: {walltime: '25:61:00'}\n", {}, ["resources.walltime", "61 minutes"]),
        ("walltime-zero", ok + "resources: {walltime: '0'}\n", {}, ["resources.walltime", "positive"]),
        ("sbatch-option-not-allowed", ok + "slurm: {options: ['--output=/etc/passwd']}\n", {},
         ["slurm.options[0]", "'--output' is not an sbatch option"]),
        ("sbatch-flag-with-value", ok + "slurm: {options: ['--exclusive=user']}\n", {},
         ["slurm.options[0]", "takes no value"]),
        ("account-injection", ok + "slurm: {account: 'a\\n#SBATCH --uid=0'}\n", {}, ["slurm.account"]),
        ("yaml-syntax", "name: x\ncommand: [true\n  bad: : :\n", {}, ["job.yaml", "line 2, column 10"]),
    ]


CASE_IDS = [case[0] for case in _spec_cases(Path("."))]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_bad_spec_exits_2_naming_the_field_and_creates_nothing(squall, tmp_path, case_id):
    _, text, files, names = next(c for c in _spec_cases(tmp_path) if c[0] == case_id)
    folder = tmp_path / "job"
    folder.mkdir()
    for rel, content in files.items():
        path = folder / rel
        if rel.endswith("/"):
            path.mkdir(parents=True)
        elif content is None:  # a symlink pointing at itself
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(path.name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    spec = folder / "job.yaml"
    spec.write_text(text)
    proc = squall.run("job", "run", str(spec))
    assert_clear(proc, 2, *names)
    assert_nothing_created(squall)
    code, report = squall.json("job", "run", str(spec))
    assert code == 2 and report["exit_code"] == 2 and "internal error" not in report["error"]


@pytest.mark.parametrize("org", ["acme\n#SBATCH --wrap=touch /tmp/canary", "Acme", "a b", "", "x" * 64])
def test_an_organisation_that_could_reach_a_batch_script_is_refused(squall, make_spec, org):
    spec = make_spec({"name": "x", "command": "true"})
    proc = squall.run("job", "run", str(spec), env={"SQUALL_ORG": org})
    assert_clear(proc, 2, "SQUALL_ORG")
    assert_nothing_created(squall)


def test_batch_directives_refuse_values_that_would_end_the_line():
    from squall.errors import InvalidInput
    from squall.templating import directive

    assert directive("squall-job=1,org=a,expires=2") == "squall-job=1,org=a,expires=2"
    for bad in ("a\nb", "a b", "a;b", "$(x)", ""):
        with pytest.raises(InvalidInput):
            directive(bad)


def _inventory(tmp_path: Path, hosts: str | None = None, group_vars: bytes | None = None,
               source: Path = TESTBED_INVENTORY, name: str = "bad-site") -> Path:
    folder = tmp_path / "inventories" / name
    shutil.copytree(source, folder)
    if hosts is not None:
        (folder / "hosts.yml").write_text(hosts)
    if group_vars is not None:
        (folder / "group_vars" / "all.yml").write_bytes(group_vars)
    return folder


GOOD_VARS = (TESTBED_INVENTORY / "group_vars" / "all.yml").read_bytes()
INVENTORIES = [
    ("all-is-a-list", "all: [a, b]\n", None, ["hosts.yml", "all must be a mapping"]),
    ("hosts-is-a-list", "all: {children: {login: {hosts: [h1]}}}\n", None,
     ["hosts.yml", "all.children.login.hosts must be a mapping"]),
    ("host-vars-a-string", "all: {children: {login: {hosts: {h1: 'ansible_host=x'}}}}\n", None,
     ["hosts.yml", "all.children.login.hosts.h1 must be a mapping"]),
    ("binary-group-vars", None, b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", ["all.yml", "not a text file"]),
    ("integer-key", None, GOOD_VARS + b"42: answer\n", ["all.yml", "42", "keys must be names"]),
    ("integer-host-name", "all: {children: {login: {hosts: {7: {ansible_host: x}}}}}\n", None,
     ["hosts.yml", "keys must be names"]),
    ("qos-with-a-space", None, GOOD_VARS + b"squall_slurm: {qos: 'normal; rm -rf ~'}\n",
     ["squall_slurm.qos", "should match pattern"]),
    ("sbatch-option-not-allowed", None, GOOD_VARS + b"squall_slurm: {options: ['--export=ALL']}\n",
     ["squall_slurm.options[0]", "'--export' is not an sbatch option"]),
    ("unknown-slurm-field", None, GOOD_VARS + b"squall_slurm: {qoss: normal}\n", ["squall_slurm.qoss"]),
    ("setup-not-a-command", None, GOOD_VARS + b"squall_slurm: {setup: ['$(reboot)']}\n",
     ["squall_slurm.setup[0]", "starting with a command name"]),
]


@pytest.mark.parametrize("case_id, hosts, group_vars, names", INVENTORIES, ids=[c[0] for c in INVENTORIES])
def test_bad_inventory_exits_2_naming_the_file_and_field(squall, tmp_path, case_id, hosts, group_vars, names):
    folder = _inventory(tmp_path, hosts, group_vars)
    proc = squall.run("site", "add", "bad-site", "--inventory", str(folder))
    assert_clear(proc, 2, *names)
    assert squall.run("site", "list", "--output", "json").stdout.count("bad-site") == 0


def test_an_inventory_copied_outside_the_project_gets_the_common_defaults(tmp_path):
    from squall.sites.inventories import load_site_inventory

    folder = tmp_path / "elsewhere" / "copied"
    shutil.copytree(TESTBED_INVENTORY, folder)
    inventory = load_site_inventory("copied", folder)
    assert inventory.layers == (REPO / "inventories" / "common", folder.resolve())
    assert inventory.vars.squall_min_free_gb == 1  # from the common layer, which Ansible gets too


@pytest.mark.parametrize("key", ["missing", "folder"])
def test_a_missing_or_unreadable_ssh_key_fails_at_once_naming_it(squall, make_spec, tmp_path, key):
    folder = tmp_path / "inventories" / "nokey"
    shutil.copytree(TESTBED_INVENTORY, folder)
    key_path = tmp_path / "keys" / "id_missing"
    if key == "folder":
        key_path.mkdir(parents=True)
    hosts = (folder / "hosts.yml").read_text().replace("/var/tmp/squall-testbed/keys/id_ed25519", str(key_path))
    (folder / "hosts.yml").write_text(hosts.replace("2222", "1"))  # and nothing listens there
    assert squall.run("site", "add", "nokey", "--inventory", str(folder)).returncode == 0
    spec = make_spec({"name": "x", "command": "true"})
    started = time.monotonic()
    proc = squall.run("job", "run", str(spec), "--site", "nokey")
    elapsed = time.monotonic() - started
    assert_clear(proc, 2, "ansible_ssh_private_key_file", str(key_path))
    assert elapsed < 20  # not 31 s of retries (the figure itself is in the closing note, not asserted tight)
    assert squall.job_count() == 0
    check = squall.run("site", "check", "nokey", "--output", "json")
    assert check.returncode == 2 and str(key_path) in check.stdout


def test_a_home_that_is_a_file_or_a_store_that_is_a_folder_or_corrupt(squall, make_spec, tmp_path):
    spec = make_spec({"name": "x", "command": "true"})
    as_file = tmp_path / "home-file"
    as_file.write_text("not a folder")
    proc = squall.run("job", "run", str(spec), env={"SQUALL_HOME": str(as_file)})
    assert_clear(proc, 7, str(as_file))

    folder_db = tmp_path / "home-dir-db"
    (folder_db / "squall.db").mkdir(parents=True)
    proc = squall.run("job", "list", env={"SQUALL_HOME": str(folder_db)})
    assert_clear(proc, 7, str(folder_db / "squall.db"))

    corrupt = tmp_path / "home-corrupt"
    corrupt.mkdir()
    (corrupt / "squall.db").write_bytes(b"this is not an SQLite database" * 100)
    for args in (("job", "list"), ("job", "run", str(spec))):
        proc = squall.run(*args, env={"SQUALL_HOME": str(corrupt)})
        assert_clear(proc, 7, str(corrupt / "squall.db"))
    code, report = squall.json("job", "list", env={"SQUALL_HOME": str(corrupt)})
    assert code == 7 and report["exit_code"] == 7


@pytest.fixture
def read_only_view(tmp_path):
    """A read-only bind mount of a folder (root only: permission bits do not stop root)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root; CI runs as root")
    mounts = []

    def make(source: Path) -> Path:
        view = tmp_path / f"ro-{source.name}"
        view.mkdir()
        proc = subprocess.run(["mount", "--bind", str(source), str(view)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"this machine refuses mounts (needed for a read-only home): {proc.stderr.strip()}")
        mounts.append(view)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        return view

    yield make
    for view in reversed(mounts):
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_a_read_only_home_still_lists_jobs_and_refuses_runs_clearly(squall, make_spec, read_only_view):
    spec = make_spec({"name": "x", "command": "true"})
    code, report = squall.json("job", "run", str(spec))
    assert code == 0
    view = read_only_view(squall.home)
    env = {"SQUALL_HOME": str(view)}
    code, jobs = squall.json("job", "list", env=env)
    assert code == 0 and [j["id"] for j in jobs] == [report["id"]]
    code, status = squall.json("job", "status", report["id"], env=env)
    assert code == 0 and status["status"] == "succeeded"
    proc = squall.run("job", "run", str(spec), env=env)
    assert_clear(proc, 7, str(view))
    assert squall.job_count() == 1


def test_one_broken_site_registration_does_not_stop_gc(squall, tmp_path):
    folder = tmp_path / "inventories" / "gone"
    shutil.copytree(TESTBED_INVENTORY, folder)
    assert squall.run("site", "add", "gone", "--inventory", str(folder)).returncode == 0
    shutil.rmtree(folder)
    stray = squall.job_dir("stray-job")
    stray.mkdir(parents=True)
    code, report = squall.json("gc", "--yes")
    assert code == 5, report  # one site could not be checked; the rest was still collected
    by_site = {a["site"]: a for a in report["actions"]}
    assert by_site["gone"]["action"] == "error" and "hosts.yml" in by_site["gone"]["reason"]
    assert by_site["local"]["action"] == "remove" and not stray.exists()


def test_unreachable_sites_are_listed_in_parallel_within_a_time_limit(squall, tmp_path):
    key = tmp_path / "id_key"
    key.write_text("not really a key, never used: nothing listens on port 1\n")
    names = [f"down-{i}" for i in range(5)]
    for name in names:
        folder = tmp_path / "inventories" / name
        shutil.copytree(TESTBED_INVENTORY, folder)
        hosts = (folder / "hosts.yml").read_text().replace("2222", "1")
        (folder / "hosts.yml").write_text(hosts.replace("/var/tmp/squall-testbed/keys/id_ed25519", str(key)))
        assert squall.run("site", "add", name, "--inventory", str(folder)).returncode == 0
    code, report = squall.json("gc", "--yes", env={"SQUALL_GC_SITE_TIMEOUT": "2"})
    assert code == 5
    errors = {a["site"]: a["reason"] for a in report["actions"] if a["action"] == "error"}
    assert sorted(errors) == names
    # one deadline for all (in parallel), not one per site after another
    assert set(errors.values()) <= {"no answer within 2 s"} | {r for r in errors.values() if "unreachable" in r}


def test_gc_closes_a_job_whose_controller_stopped_before_up(squall, make_spec):
    from squall.runner import Runner
    from squall.spec import load_spec
    from squall.store import Store

    spec = make_spec({"name": "x", "command": "true"})
    store = Store(squall.home)
    try:  # planned and recorded, then the controller is gone before up (as after kill -9 there)
        job_id = Runner(store, squall.home).submit(load_spec(spec), "local", squall.cwd / "results").job_id
    finally:
        store.close()
    code, gc = squall.json("gc", "--yes")
    assert code == 0 and not [a for a in gc["actions"] if a["action"] == "close"]  # too recent to judge
    squall.query("UPDATE jobs SET created_at = created_at - 120 WHERE id = ?", job_id)
    code, gc = squall.json("gc", "--yes")
    assert [(a["action"], a["job_id"]) for a in gc["actions"]] == [("close", job_id)]
    code, report = squall.json("job", "status", job_id)
    assert report["status"] == "cancelled" and report["phase"] == "done" and "never started" in report["error"]


JUMP_HOSTS = [
    ({"host": "bastion", "prot": 22, "user": "svc", "private_key_file": "/k"}, "did you mean 'port'"),
    ({"host": "bastion", "user": "svc"}, "squall_jump_host.private_key_file: required"),
    ({"host": "bastion\nProxyCommand x", "user": "svc", "private_key_file": "/k"}, "squall_jump_host.host"),
    ({"host": "bastion", "user": "Svc -oProxyCommand=x", "private_key_file": "/k"}, "squall_jump_host.user"),
    ({"host": "bastion", "port": 0, "user": "svc", "private_key_file": "/k"}, "squall_jump_host.port"),
    ("bastion:22", "squall_jump_host"),
]


@pytest.mark.parametrize("jump, message", JUMP_HOSTS, ids=[m for _, m in JUMP_HOSTS])
def test_a_bad_jump_host_exits_2_naming_the_field(squall, tmp_path, jump, message):
    folder = _inventory(tmp_path)
    group_vars = folder / "group_vars" / "all.yml"
    group_vars.write_text(group_vars.read_text() + yaml.safe_dump({"squall_jump_host": jump}))
    proc = squall.run("site", "add", "bad-site", "--inventory", str(folder))
    assert_clear(proc, 2, message)


def test_a_missing_jump_host_key_fails_at_once_naming_it(squall, make_spec, tmp_path):
    folder = _inventory(tmp_path)
    missing = tmp_path / "no-such-key"
    group_vars = folder / "group_vars" / "all.yml"
    group_vars.write_text(group_vars.read_text() + yaml.safe_dump({"squall_jump_host": {
        "host": "127.0.0.1", "port": 1, "user": "svc", "private_key_file": str(missing)}}))
    key = tmp_path / "id_key"
    key.write_text("a key file that exists\n")
    hosts = (folder / "hosts.yml").read_text().replace("/var/tmp/squall-testbed/keys/id_ed25519", str(key))
    (folder / "hosts.yml").write_text(hosts)
    assert squall.run("site", "add", "bad-site", "--inventory", str(folder)).returncode == 0
    proc = squall.run("job", "run", str(make_spec({"name": "x", "command": "true"})), "--site", "bad-site")
    assert_clear(proc, 2, "squall_jump_host.private_key_file", str(missing))


NODES_INVENTORY = TESTBED_INVENTORY.parent / "testbed-nodes"
NODE = "{ansible_host: 10.250.1.11}"
SSH_INVENTORIES = [
    ("unknown-key", "all: {children: {nodes: {hosts: {n1: {ansible_host: 10.250.1.11, squall_cpu: 2}}}}}\n",
     None, ["all.children.nodes.hosts.n1.squall_cpu", "did you mean 'squall_cpus'"]),
    ("cpus-0", "all: {children: {nodes: {hosts: {n1: {ansible_host: 10.250.1.11, squall_cpus: 0}}}}}\n", None,
     ["all.children.nodes.hosts.n1", "squall_cpus"]),
    ("duplicate-host", f"all: {{children: {{nodes: {{hosts: {{n1: {NODE}, n2: {NODE}}}}}}}}}\n", None,
     ["all.children.nodes.hosts.n2", "the same machine as n1", "10.250.1.11:22"]),
    ("no-hosts", "all: {children: {nodes: {hosts: {}}}}\n", None, ["all.children.nodes.hosts", "at least one"]),
    ("site-variable-on-a-machine",
     "all: {children: {nodes: {hosts: {n1: {ansible_host: 10.250.1.11, squall_work_root: /x}}}}}\n", None,
     ["n1.squall_work_root", "group_vars"]),
    ("partitions-without-scheduler", None,
     (NODES_INVENTORY / "group_vars" / "all.yml").read_bytes()
     + b"squall_partitions: [{name: debug, max_walltime: '01:00:00', max_cpus_per_task: 1, "
       b"price: {per_job: 0, per_core_hour: 0}}]\n", ["squall_partitions", "no partitions"]),
    ("jump-host-without-key", None,
     (NODES_INVENTORY / "group_vars" / "all.yml").read_bytes().split(b"squall_jump_host:")[0]
     + b"squall_jump_host: {host: 10.250.0.2, user: squall-svc}\n", ["squall_jump_host.private_key_file"]),
]


@pytest.mark.parametrize("case_id, hosts, group_vars, names", SSH_INVENTORIES, ids=[c[0] for c in SSH_INVENTORIES])
def test_bad_ssh_site_inventory_exits_2_naming_the_field(squall, tmp_path, case_id, hosts, group_vars, names):
    folder = _inventory(tmp_path, hosts, group_vars, source=NODES_INVENTORY, name="bad-nodes")
    proc = squall.run("site", "add", "bad-nodes", "--inventory", str(folder))
    assert_clear(proc, 2, *names)


DESTRUCTIVE = [("gc",), ("env", "down", "ci-1"), ("org", "down", "zephy"), ("site", "unenrol", "testbed"),
               ("bank", "release", "zephy", "cfd", "1")]


@pytest.mark.parametrize("argv", DESTRUCTIVE, ids=[" ".join(a[:2]) for a in DESTRUCTIVE])
def test_destructive_commands_need_yes_when_not_on_a_terminal(squall, argv):
    proc = squall.run(*argv, "--output", "json")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    body = json.loads(proc.stdout)
    assert "asks for confirmation" in body["error"] and "--yes" in body["hint"]


def test_gc_asks_on_a_terminal_and_a_no_changes_nothing(squall):
    import pty

    primary, secondary = pty.openpty()
    proc = subprocess.Popen(squall.argv("gc"), cwd=squall.cwd, env=squall.env, stdin=secondary,
                            stdout=subprocess.PIPE, stderr=secondary)
    os.close(secondary)
    asked = b""
    while b"?" not in asked:
        asked += os.read(primary, 1024)
    os.write(primary, b"n\n")
    proc.wait(timeout=60)
    os.close(primary)
    assert b"remove what crashed jobs left behind" in asked and proc.returncode == 1
    assert proc.stdout.read() == b""


def test_site_show_and_check_register_nothing_and_list_shows_what_was_found(squall):
    assert squall.run("site", "show", "testbed").returncode == 0
    squall.run("site", "check", "testbed", "--output", "json")  # whether or not the test bed is up
    rows = {r["site"]: r for r in squall.json("site", "list")[1]}
    assert rows["local"]["registered"] and rows["testbed"]["registered"] is False
    assert rows["testbed"]["inventory"].endswith("inventories/testbed")
    text = squall.run("site", "list").stdout
    assert text.split()[:4] == ["SITE", "KIND", "LAST", "INVENTORY"] and "(found, not registered)" in text


def test_site_remove_forgets_a_site_but_not_while_it_has_unfinished_jobs(squall, tmp_path):
    import time as clock

    from squall.store import JobRow, Store

    folder = _inventory(tmp_path, name="old-centre")
    assert squall.run("site", "add", "old-centre", "--inventory", str(folder)).returncode == 0
    store = Store(squall.home)
    now = clock.time()
    store.create_job(JobRow("261125-aaaaaa", "x", "default", "old-centre", {}, "/s", "/r", "monitor", "running", None,
                            False, None, now, now, None), [[]])
    store.close()
    proc = squall.run("site", "remove", "old-centre")
    assert_clear(proc, 4, "1 unfinished job", "261125-aaaaaa")
    store = Store(squall.home)
    store.update_job("261125-aaaaaa", phase="done", status="failed", finished_at=now)
    store.close()
    assert squall.run("site", "remove", "old-centre").returncode == 0
    assert "old-centre" not in {r["site"] for r in squall.json("site", "list")[1] if r["registered"]}
    assert_clear(squall.run("site", "remove", "old-centre"), 2, "not registered")


@pytest.mark.parametrize("url, says", [
    ("postgresql://ana:s3cret-pw@127.0.0.1:1/squall", "postgresql://ana:***@127.0.0.1:1/squall: connection failed"),
    ("mysql://ana:s3cret-pw@db/squall", "SQUALL_DATABASE_URL: 'mysql' is not a database Squall can use"),
])
def test_a_database_url_that_cannot_be_used_exits_7_naming_it_without_its_password(squall, url, says):
    proc = squall.run("job", "list", env={"SQUALL_DATABASE_URL": url})
    assert proc.returncode == 7 and says in proc.stderr, proc.stderr
    assert "s3cret-pw" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert not (squall.home / "squall.db").exists()  # nothing made in the home's place either


def test_a_duration_variable_that_is_not_seconds_stops_the_command_before_anything_is_made(squall, wind_example):
    """``SQUALL_LEASE_MARGIN=x``: exit 2 naming the variable, no job recorded (before: the job was created and
    failed halfway, at its lease)."""
    proc = squall.run("job", "run", str(wind_example), env={"SQUALL_LEASE_MARGIN": "x"})
    assert proc.returncode == 2 and "SQUALL_LEASE_MARGIN='x'" in proc.stderr, proc.stderr
    assert squall.job_count() == 0
    assert squall.run("job", "list", env={"SQUALL_GC_SITE_TIMEOUT": ""}).returncode == 2  # set but empty
    assert squall.run("job", "run", str(wind_example), env={"SQUALL_LEASE_MARGIN": "30"}).returncode == 0
