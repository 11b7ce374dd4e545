"""The ``ssh`` site kind on the multi-host test bed: three job nodes behind a head host (the jump host),
each in its own network namespace, with its own sshd, its own home and work root, and the job-node
firewall from the cloud-init template. Nothing is mocked: real sshd, real nftables, real processes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import kill_quietly, run_then_kill_9
from tests.integration.conftest import TESTBED, checksums

SITE = "testbed-nodes"
NODES = ("node-1", "node-2", "node-3")
CANARY = "/tmp/sq-canary"
EVIL = f"x; touch {CANARY}; $(touch {CANARY}) `touch {CANARY}` 'q' \"dq\" sp ace"


@pytest.fixture
def site(squall, nodes):
    """A fresh home using the enrolled nodes; asserts no job folder is left on any node after the test."""
    for name in NODES:
        for folder in work(nodes, name).glob("squall-*"):
            subprocess.run(["rm", "-rf", str(folder)], check=False)
    yield squall
    nodes_up(nodes)


def work(nodes: dict, name: str) -> Path:
    """What node ``name`` holds in its work root (its own, seen from here)."""
    return Path(nodes["nodes"][name]["view"]) / "work"


def left(nodes: dict) -> dict[str, list[str]]:
    return {name: sorted(p.name for p in work(nodes, name).glob("squall-*")) for name in NODES}


def nodes_up(nodes: dict) -> None:
    proc = subprocess.run([sys.executable, str(TESTBED), "up", "--nodes", "3"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr


def as_service_account_on(nodes: dict, name: str, code: str) -> subprocess.CompletedProcess:
    """Run Python as the service account inside node ``name``'s network namespace."""
    return subprocess.run(["nsenter", f"--net=/run/netns/{nodes['nodes'][name]['namespace']}", "setpriv",
                           "--reuid=squall-svc", "--regid=squall-svc", "--init-groups", "/usr/bin/python3", "-c", code],
                          capture_output=True, text=True, timeout=60)


LIST_NODE = ("import os, json; d = os.environ['SQUALL_TASK_DIR']; "
             "json.dump({'tasks': sorted(n for n in os.listdir(os.path.dirname(d)) if n.startswith('task-')), "
             "'inputs': sorted(os.listdir(os.environ['SQUALL_INPUT_DIR']))}, "
             "open(os.environ['SQUALL_OUTPUT_DIR'] + '/node.json', 'w'))")


def test_wind_stats_through_the_jump_host_matches_the_local_site(site, nodes, wind_example):
    code, report = site.json("job", "run", str(wind_example), "--site", SITE, "--results", "nodes")
    assert code == 0 and report["status"] == "succeeded", report
    assert all(t["network_isolated"] for t in report["tasks"])
    code, local = site.json("job", "run", str(wind_example), "--results", "local")
    assert checksums(Path(report["results"])) == checksums(Path(local["results"]))
    assert left(nodes) == {name: [] for name in NODES}


def test_tasks_are_spread_and_each_node_holds_only_its_own(site, nodes, make_spec):
    files = {f"in/f{i}.txt": "x" * (1000 * (i + 1)) for i in range(6)}
    spec = make_spec({"name": "spread", "split": 6, "inputs": ["in"], "outputs": ["node.json"],
                      "command": ["python3", "-c", LIST_NODE]}, files)
    code, report = site.json("job", "run", str(spec), "--site", SITE)
    assert code == 0, report
    seen = [json.loads((Path(report["results"]) / f"task-{i}" / "node.json").read_text()) for i in range(6)]
    groups = {tuple(s["tasks"]) for s in seen}
    assert len(groups) == 3  # every node got tasks, and no node saw another node's task folders
    assert sorted(t for g in groups for t in g) == [f"task-{i}" for i in range(6)]
    assert all(len(s["inputs"]) == 1 for s in seen)  # a task folder holds only its own input
    assert left(nodes) == {name: [] for name in NODES}


def test_the_job_node_firewall_lets_in_only_the_head_and_out_only_the_job_network(site, nodes):
    listener = socket.socket()
    listener.bind((nodes["controller"], 0))
    listener.listen()
    port = listener.getsockname()[1]
    probe = ("import socket, sys\n"
             "def reach(host, port):\n"
             "    try:\n"
             "        socket.create_connection((host, port), 2).close(); return 'open'\n"
             "    except OSError as exc: return type(exc).__name__\n"
             f"print(reach({nodes['controller']!r}, {port}), reach({nodes['head']['host']!r}, 22), "
             f"reach({nodes['nodes']['node-2']['host']!r}, 22))")
    try:
        proc = as_service_account_on(nodes, "node-1", probe)
    finally:
        listener.close()
    to_controller, to_head_outside, to_job_network = proc.stdout.split()
    assert to_controller != "open" and to_head_outside != "open", proc.stdout
    assert to_job_network == "open"
    with socket.socket() as direct:  # the controller cannot reach a node except through the head
        direct.settimeout(2)
        assert direct.connect_ex((nodes["nodes"]["node-1"]["host"], 22)) != 0


def test_a_payload_cannot_reach_the_controller(site, nodes, make_spec):
    reach = ("import socket, sys\n"
             "try:\n"
             f"    socket.create_connection(({nodes['controller']!r}, 22), 3); print('reached')\n"
             "except OSError as exc:\n"
             "    print('blocked', exc); sys.exit(3)\n")
    spec = make_spec({"name": "escape", "command": ["python3", "-c", reach]})
    code, report = site.json("job", "run", str(spec), "--site", SITE)
    assert code == 1 and report["tasks"][0]["exit_code"] == 3, report
    assert report["tasks"][0]["network_isolated"] is True
    assert left(nodes) == {name: [] for name in NODES}


def test_kill_9_then_attach_completes(site, nodes, make_spec):
    spec = make_spec({"name": "sleepy", "split": 3,
                      "command": 'sleep 3; echo "done $SQUALL_TASK_INDEX" > "$SQUALL_OUTPUT_DIR/done"'})
    job_id = run_then_kill_9(site, str(spec), "--site", SITE)
    assert any(left(nodes).values())
    code, report = site.json("job", "attach", job_id)
    assert code == 0 and report["status"] == "succeeded", report
    assert [(Path(report["results"]) / f"task-{i}" / "done").read_text() for i in range(3)] == \
        [f"done {i}\n" for i in range(3)]
    assert left(nodes) == {name: [] for name in NODES}


def test_kill_9_then_gc_after_expiry_kills_the_tasks_on_every_node(site, nodes, make_spec):
    spec = make_spec({"name": "orphan", "split": 3, "command": "sleep 300", "resources": {"walltime": "00:00:03"}})
    job_id = run_then_kill_9(site, str(spec), "--site", SITE, env={"SQUALL_LEASE_MARGIN": "1"})
    assert sum(1 for held in left(nodes).values() if held) == 3
    code, plan = site.json("gc", "--yes", "--dry-run")
    assert {a["action"] for a in plan["actions"]} == {"keep"}, plan
    expires = site.query("SELECT MAX(expires_at) FROM leases WHERE job_id = ?", job_id)[0][0]
    time.sleep(max(0.0, expires - time.time()) + 0.5)
    code, kept = site.json("gc", "--yes")  # the tasks ended at the sites and nobody collected them
    assert code == 0 and [a["action"] for a in kept["actions"] if a["kind"] == "jobdir"] == ["uncollected"] * 3, kept
    code, done = site.json("gc", "--yes", "--discard-uncollected")
    assert code == 0, done
    removed = [a for a in done["actions"] if a["kind"] == "jobdir" and a["action"] == "remove"]
    assert len(removed) == 3, done
    assert left(nodes) == {name: [] for name in NODES}
    sleeping = subprocess.run(["pgrep", "-u", "squall-svc", "-f", "sleep 300"], capture_output=True, text=True)
    assert sleeping.stdout == ""


def test_a_node_that_dies_mid_job_fails_its_tasks_only(site, nodes, make_spec):
    """A node silent for longer than its tasks could run (walltime, kill grace, lease margin) is given up
    on: its tasks fail, naming it, and its folder waits for gc; the other nodes' tasks are collected."""
    spec = make_spec({"name": "dies", "split": 3, "resources": {"walltime": "00:15"},
                      "command": 'sleep 4; echo ok > "$SQUALL_OUTPUT_DIR/ok"'})
    controller = site.start("job", "run", str(spec), "--site", SITE, "--output", "json",
                            env={"SQUALL_LEASE_MARGIN": "5"})
    try:
        site.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=60)
        namespace = nodes["nodes"]["node-2"]["namespace"]
        pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout.split()
        subprocess.run(["kill", "-9", *pids], check=False)  # its sshd, the runtimes and the payloads
        lost = site.wait_for("SELECT idx FROM tasks WHERE status = 'lost'", timeout=60)  # first lost, then failed
        out, err = controller.communicate(timeout=300)
    finally:
        kill_quietly(controller)
    report = json.loads(out)
    assert controller.returncode == 1, err[-2000:]
    states = {t["index"]: t for t in report["tasks"]}
    failed = [t for t in states.values() if t["status"] == "failed"]
    assert len(failed) == 1 and "node-2" in failed[0]["error"] and failed[0]["index"] == lost[0], report
    ok = [i for i, t in states.items() if t["status"] == "succeeded"]
    assert len(ok) == 2 and all((Path(report["results"]) / f"task-{i}" / "ok").exists() for i in ok)
    assert left(nodes)["node-1"] == [] and left(nodes)["node-3"] == []
    assert left(nodes)["node-2"] == [f"squall-{report['id']}"]  # its folder waits for gc, under a lease
    assert site.query("SELECT COUNT(*) FROM leases WHERE job_id = ?", report["id"])[0][0] >= 1
    nodes_up(nodes)
    for folder in work(nodes, "node-2").glob("squall-*"):
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_ctrl_c_during_staging_to_three_nodes_leaves_nothing(site, nodes, make_spec):
    spec = make_spec({"name": "big", "split": 3, "command": "true", "inputs": ["blobs"]})
    blobs = spec.parent / "blobs"
    blobs.mkdir()
    for i in range(48):
        (blobs / f"b{i:02d}.bin").write_bytes(bytes([i]) * (4 << 20))
    controller = site.start("job", "run", str(spec), "--site", SITE)
    try:
        site.wait_for("SELECT job_id FROM journal WHERE phase = 'stage' AND event = 'begin'", timeout=60)
        time.sleep(0.5)
        controller.send_signal(signal.SIGINT)
        controller.communicate(timeout=120)
    finally:
        kill_quietly(controller)
    assert controller.returncode == 130
    assert left(nodes) == {name: [] for name in NODES}


def test_hostile_names_inputs_and_arguments_never_reach_a_shell_on_any_node(site, nodes, make_spec):
    Path(CANARY).unlink(missing_ok=True)
    files = {f"data/{EVIL.replace('/', '_')}-{i}.txt": f"payload {i}\n" for i in range(3)}
    spec = make_spec({
        "name": EVIL, "split": 3, "inputs": ["data/*"],
        "command": ["python3", "-c", "import os,sys,json; open(os.environ['SQUALL_OUTPUT_DIR']+'/argv.json','w')"
                    ".write(json.dumps(sys.argv[1:]))", EVIL, f"$(touch {CANARY})"],
    }, files)
    code, report = site.json("job", "run", str(spec), "--site", SITE)
    assert code == 0, report
    for i in range(3):
        argv = json.loads((Path(report["results"]) / f"task-{i}" / "argv.json").read_text())
        assert argv == [EVIL, f"$(touch {CANARY})"]
    for name in NODES:  # /tmp is shared by the namespaces: one look covers every node
        check = as_service_account_on(nodes, name, f"import os; print(os.path.exists({CANARY!r}))")
        assert check.stdout.strip() == "False"
    assert not Path(CANARY).exists()


def test_an_unreachable_jump_host_exits_5_within_10_s_naming_the_hop(site, nodes, tmp_path, make_spec):
    import shutil

    import yaml

    from tests.integration.conftest import REPO_INVENTORIES

    folder = tmp_path / "inventories" / "closed-jump"
    shutil.copytree(REPO_INVENTORIES / SITE, folder)
    group_vars = folder / "group_vars" / "all.yml"
    data = yaml.safe_load(group_vars.read_text())
    data["squall_jump_host"]["port"] = 1
    group_vars.write_text(yaml.safe_dump(data))
    assert site.run("site", "add", "closed-jump", "--inventory", str(folder)).returncode == 0
    started = time.monotonic()
    proc = site.run("job", "run", str(make_spec({"name": "x", "command": "true"})), "--site", "closed-jump")
    took = time.monotonic() - started
    assert proc.returncode == 5 and "jump host squall-svc@10.250.0.2:1" in proc.stderr, proc.stderr
    assert took < 10, took
    assert site.job_count() == 0
