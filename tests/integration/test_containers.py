"""Containers that really run: podman from Debian, images from an archive next to the spec (no registry).

The image is the one ``examples/wind-stats-container/build-image.sh`` builds from this machine's own
python3 (the README's command), so the example's script is exercised too. On this machine podman runs
inside a container and needs the example's ``containers.conf`` (CONTAINERS_CONF) locally; the test bed's
inventory names the same settings as ``squall_containers_conf`` for rootless podman as ``squall-svc``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import checksums

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "wind-stats-container"
LOCAL_ENV = {"CONTAINERS_CONF": str(EXAMPLE / "containers.conf")}
PROBE = """
import json, os, socket
try:
    socket.create_connection(("127.0.0.1", int(os.environ["PROBE_PORT"])), timeout=2).close()
    reached = True
except OSError:
    reached = False
out = os.environ["SQUALL_OUTPUT_DIR"]
json.dump({"uid": os.getuid(), "env": sorted(os.environ), "cwd": os.getcwd(), "reached_host": reached,
           "os_release": os.path.exists("/etc/os-release"), "inputs": open("inputs.txt").read().split()},
          open(os.path.join(out, "probe.json"), "w"))
"""


@pytest.fixture(scope="session")
def job_image() -> Path:
    """The example's image archive, built once per session by the example's own script."""
    if shutil.which("podman") is None and subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        pytest.skip("podman is missing and only root can install it")
    proc = subprocess.run([str(EXAMPLE / "build-image.sh")], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return EXAMPLE / "wind-stats.oci.tar"


def container_spec(make_spec, job_image: Path, name: str, command: list[str], **fields) -> Path:
    spec = make_spec({"name": name, "image": "oci-archive:image.tar", "runtime": "podman", "command": command,
                      **fields}, folder=name)
    shutil.copyfile(job_image, spec.parent / "image.tar")
    return spec


def probe_spec(make_spec, job_image: Path, port: int, site: str) -> Path:
    files = {f"in/f{i}.txt": f"{i}\n" for i in range(4)}
    spec = make_spec({"name": "probe", "image": "oci-archive:image.tar", "runtime": "podman", "split": 2,
                      "inputs": ["in"], "site": site, "command": ["sh", "-c", f"PROBE_PORT={port} exec python3 -c "
                                                                                 f"'{PROBE}'"]},
                     files, folder=f"probe-{site}")
    shutil.copyfile(job_image, spec.parent / "image.tar")
    return spec


def listener() -> socket.socket:
    """A TCP port on this machine's loopback that a task with a network could reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


def squall_containers() -> list[str]:
    names = subprocess.run(["podman", "ps", "--all", "--format", "{{.Names}}"], capture_output=True, text=True,
                           env={"PATH": "/usr/bin:/bin", "HOME": "/root", **LOCAL_ENV}).stdout.split()
    return [name for name in names if name.startswith("squall-")]


def test_the_container_example_gives_the_plain_examples_results(squall, job_image, wind_example, tmp_path):
    example = tmp_path / "wind-stats-container"
    shutil.copytree(EXAMPLE, example)
    code, contained = squall.json("job", "run", str(example / "job.yaml"), "--results", str(tmp_path / "c"),
                                  env=LOCAL_ENV)
    assert code == 0, contained
    code, plain = squall.json("job", "run", str(wind_example), "--results", str(tmp_path / "p"))
    assert code == 0, plain
    ours = checksums(tmp_path / "c" / contained["id"])
    theirs = checksums(tmp_path / "p" / plain["id"])
    assert ours == theirs and len(ours) >= 8


def test_a_container_task_has_its_folder_and_scrubbed_environment_and_no_network(squall, job_image, make_spec):
    server = listener()
    try:
        spec = probe_spec(make_spec, job_image, server.getsockname()[1], "local")
        code, report = squall.json("job", "run", str(spec), "--results", str(spec.parent / "results"),
                                   env={**LOCAL_ENV, "MY_SECRET_TOKEN": "do-not-leak"})
    finally:
        server.close()
    assert code == 0, report
    for index in (0, 1):
        probe = json.loads((spec.parent / "results" / report["id"] / f"task-{index}" / "probe.json").read_text())
        assert probe["os_release"] is False  # the image's files, not this machine's
        assert probe["reached_host"] is False  # --network none
        assert "MY_SECRET_TOKEN" not in probe["env"] and "SQUALL_TASK_INDEX" in probe["env"]
        assert probe["cwd"].endswith(f"task-{index}") and len(probe["inputs"]) == 2
    assert all(task["network_isolated"] for task in report["tasks"])
    assert squall_containers() == []  # --rm


def test_the_walltime_kill_reaches_the_container(squall, job_image, make_spec):
    spec = container_spec(make_spec, job_image, "overrun", ["python3", "-c", "import time; time.sleep(300)"],
                          resources={"walltime": "00:00:03"})
    started = time.monotonic()
    code, report = squall.json("job", "run", str(spec), env=LOCAL_ENV)
    assert code != 0 and report["tasks"][0]["status"] == "timeout", report
    assert time.monotonic() - started < 60
    assert squall_containers() == []


def test_an_archive_needs_podman_or_docker_and_must_be_next_to_the_spec(squall, make_spec):
    apptainer = make_spec({"name": "a", "image": "oci-archive:image.tar", "runtime": "apptainer", "command": "true"},
                          folder="apptainer")
    proc = squall.run("job", "run", str(apptainer))
    assert proc.returncode == 2 and "does not load" in proc.stderr, proc.stderr
    missing = make_spec({"name": "m", "image": "docker-archive:gone.tar", "runtime": "podman", "command": "true"},
                        folder="missing")
    proc = squall.run("job", "run", str(missing))
    assert proc.returncode == 2 and "image: archive 'gone.tar' is not a file" in proc.stderr, proc.stderr
    outside = make_spec({"name": "o", "image": "oci-archive:../x.tar", "runtime": "podman", "command": "true"},
                        folder="outside")
    proc = squall.run("job", "run", str(outside))
    assert proc.returncode == 2 and "image" in proc.stderr and "'..'" in proc.stderr, proc.stderr
    assert squall.job_count() == 0


def test_rootless_on_the_test_bed_the_archive_is_sent_and_loaded_once(hpc, job_image, make_spec, remote, testbed):
    server = listener()
    try:
        spec = probe_spec(make_spec, job_image, server.getsockname()[1], "testbed")
        images = f"{testbed['work_root']}/images"
        remote(f"rm -rf {images}")
        code, first = hpc.json("job", "run", str(spec), "--results", str(spec.parent / "r1"))
        assert code == 0, first
        kept = remote(f"stat -c '%i %Y' {images}/sha256-*.tar; cat {images}/sha256-*.id").stdout
        code, second = hpc.json("job", "run", str(spec), "--results", str(spec.parent / "r2"))
        assert code == 0, second
    finally:
        server.close()
    assert remote(f"stat -c '%i %Y' {images}/sha256-*.tar; cat {images}/sha256-*.id").stdout == kept  # not again
    probe = json.loads((spec.parent / "r2" / second["id"] / "task-0" / "probe.json").read_text())
    uid = int(remote("id -u").stdout)
    assert probe["uid"] == uid != 0  # rootless, as the service account (--userns keep-id)
    assert probe["reached_host"] is False and probe["os_release"] is False
    assert remote("podman ps --all --format '{{.Names}}' | grep -c ^squall- || true").stdout.strip() == "0"


def test_rootless_on_plain_ssh_machines_behind_a_jump_host(squall, nodes, job_image, make_spec):
    server = listener()
    try:
        spec = probe_spec(make_spec, job_image, server.getsockname()[1], "testbed-nodes")
        code, report = squall.json("job", "run", str(spec), "--results", str(spec.parent / "r"))
    finally:
        server.close()
    assert code == 0, report
    for index in (0, 1):
        probe = json.loads((spec.parent / "r" / report["id"] / f"task-{index}" / "probe.json").read_text())
        assert probe["uid"] != 0 and probe["os_release"] is False and probe["reached_host"] is False
