"""Multi-host part of the test bed: a head host and N job-node hosts, each in its own network namespace.

    controller (root namespace) 10.250.0.1 --veth-- 10.250.0.2 head (sshd :22, the jump host)
                                                    10.250.1.1 head's bridge = the job network 10.250.1.0/24
                                                      |-- 10.250.1.11 node-1 (sshd :22)  ...  10.250.1.1N node-N

Only the head is reachable from the controller. The head forwards, so without
a firewall a node could reach the controller's address: each node runs the
job-node nftables firewall rendered from the same template cloud-init uses
(in: SSH from the head and the job network; out: the job network only).
Each node's sshd runs in its own mount and UTS namespaces (its host name is
``node-N``; MPI tells hosts apart by it) where the service account's
home and the work root are that node's own folders, so a test can prove what
each node holds, and ``/var/lib/cloud`` is the node's own, holding the mark
cloud-init leaves when it has finished (``instance/boot-finished``; a test
removes it to play a node still booting). Everything made is recorded in ``nodes.json``; ``down``
removes it by that record.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

PREFIX = "sqtb"
HEAD_NS = f"{PREFIX}-head"
CONTROLLER_ADDR, HEAD_ADDR = "10.250.0.1", "10.250.0.2"
JOB_NET, HEAD_JOB_ADDR = "10.250.1.0/24", "10.250.1.1"
CLOUD_STATE = Path("/var/lib/cloud")


def node_addr(number: int) -> str:
    return f"10.250.1.{10 + number}"


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), check=check, text=True, capture_output=True)


def _in(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run("nsenter", f"--net=/run/netns/{ns}", *argv, check=check)


def firewall_rules() -> str:
    """The job-node firewall from the cloud-init template (the project's own code renders it)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from programs.cloud_init import firewall_rules as render

    return render(JOB_NET, (f"{HEAD_JOB_ADDR}/32",))


def _sshd_config(state: Path, name: str, address: str, user: str) -> str:
    return f"""# Written by tests/testbed/testbed: {name} of the multi-host test bed.
ListenAddress {address}
Port 22
HostKey {state}/keys/ssh_host_ed25519_key
PidFile {state}/run/sshd-{name}.pid
AllowUsers {user}
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
StrictModes yes
MaxStartups 100:30:200
MaxSessions 50
AllowTcpForwarding yes
Subsystem sftp internal-sftp
# each node its own runtime folder: rootless podman keeps its pause process (and so the mount namespace
# it loads and runs images in) there, and the nodes share this machine's /tmp
SetEnv XDG_RUNTIME_DIR={state}/nodes/{name}/run
"""


def _node_view(state: Path, name: str, user: str, key_pub: str, work_root: Path) -> Path:
    """The node's own home and work root (bound over the real paths inside its mount namespace)."""
    account = pwd.getpwnam(user)
    root = state / "nodes" / name
    home, work, cloud, run = root / "home", root / "work", root / "cloud", root / "run"
    (cloud / "instance").mkdir(parents=True, exist_ok=True)
    (cloud / "instance" / "boot-finished").write_text("booted by tests/testbed/nodes.py\n")
    CLOUD_STATE.mkdir(parents=True, exist_ok=True)  # the mount point (empty on this machine)
    for path, mode in ((root, 0o711), (home, 0o700), (home / ".ssh", 0o700), (work, 0o700), (run, 0o700)):
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)
        os.chown(path, account.pw_uid, account.pw_gid) if path != root else None
    keys = home / ".ssh" / "authorized_keys"
    keys.write_text(key_pub)
    os.chmod(keys, 0o600)
    os.chown(keys, account.pw_uid, account.pw_gid)
    return root


def up(state: Path, count: int, user: str, key: Path, work_root: Path) -> dict:
    """Make the namespaces, links, firewalls and sshds (idempotent: an existing set-up is kept)."""
    record = state / "nodes.json"
    if record.exists():
        facts = json.loads(record.read_text())
        namespaces = _run("ip", "netns", "list").stdout
        if facts.get("count") == count and "nodes" in facts and all(ns in namespaces for ns in facts["namespaces"]):
            for name, pid in facts["pids"].items():  # a host a test "killed": its sshd comes back
                if not _alive(pid):
                    facts["pids"][name] = _daemon(state, name, facts["argv"][name])
            record.write_text(json.dumps(facts, indent=2))
            _wait_for_sshds(count)
            return facts
        down(state)
    made: dict = {"count": count, "namespaces": [], "links": [], "routes": [], "pids": {}, "argv": {}}
    record.write_text(json.dumps(made))

    def save() -> None:
        record.write_text(json.dumps(made, indent=2))

    _run("ip", "netns", "add", HEAD_NS)
    made["namespaces"].append(HEAD_NS)
    save()
    _run("ip", "link", "add", f"{PREFIX}-h0", "type", "veth", "peer", "name", f"{PREFIX}-h1")
    made["links"].append(f"{PREFIX}-h0")
    save()
    _run("ip", "link", "set", f"{PREFIX}-h1", "netns", HEAD_NS)
    _run("ip", "addr", "add", f"{CONTROLLER_ADDR}/30", "dev", f"{PREFIX}-h0")
    _run("ip", "link", "set", f"{PREFIX}-h0", "up")
    _in(HEAD_NS, "ip", "addr", "add", f"{HEAD_ADDR}/30", "dev", f"{PREFIX}-h1")
    _in(HEAD_NS, "ip", "link", "set", f"{PREFIX}-h1", "up")
    _in(HEAD_NS, "ip", "link", "set", "lo", "up")
    _in(HEAD_NS, "ip", "link", "add", "br0", "type", "bridge")
    _in(HEAD_NS, "ip", "addr", "add", f"{HEAD_JOB_ADDR}/24", "dev", "br0")
    _in(HEAD_NS, "ip", "link", "set", "br0", "up")
    _in(HEAD_NS, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    _run("ip", "route", "replace", JOB_NET, "via", HEAD_ADDR)  # so only the firewall keeps nodes from us
    made["routes"].append(JOB_NET)
    save()
    rules = state / "etc" / "job-node-firewall.nft"
    rules.write_text(firewall_rules())
    key_pub = key.with_suffix(".pub").read_text()
    for number in range(1, count + 1):
        ns, name = f"{PREFIX}-n{number}", f"node-{number}"
        _run("ip", "netns", "add", ns)
        made["namespaces"].append(ns)
        save()
        _in(HEAD_NS, "ip", "link", "add", f"{PREFIX}-n{number}a", "type", "veth", "peer", "name", "eth0",
            "netns", ns)
        _in(HEAD_NS, "ip", "link", "set", f"{PREFIX}-n{number}a", "master", "br0", "up")
        _in(ns, "ip", "addr", "add", f"{node_addr(number)}/24", "dev", "eth0")
        _in(ns, "ip", "link", "set", "eth0", "up")
        _in(ns, "ip", "link", "set", "lo", "up")
        _in(ns, "ip", "route", "add", "default", "via", HEAD_JOB_ADDR)
        _in(ns, "nft", "-f", str(rules))
        view = _node_view(state, name, user, key_pub, work_root)
        config = state / "etc" / f"sshd-{name}.conf"
        config.write_text(_sshd_config(state, name, node_addr(number), user))
        home = pwd.getpwnam(user).pw_dir
        script = (f'hostname {name} && mount --bind "$1/home" {home} && mount --bind "$1/work" {work_root} '
                  f'&& mount --bind "$1/cloud" {CLOUD_STATE} && exec /usr/sbin/sshd -D -e -f {config}')
        made["argv"][name] = ["nsenter", f"--net=/run/netns/{ns}", "unshare", "--mount", "--uts", "--propagation",
                              "private", "sh", "-c", script, "sh", str(view)]
        made["pids"][name] = _daemon(state, name, made["argv"][name])
        save()
    config = state / "etc" / "sshd-head.conf"
    config.write_text(_sshd_config(state, "head", HEAD_ADDR, user).replace(
        f"ListenAddress {HEAD_ADDR}", f"ListenAddress {HEAD_ADDR}\nListenAddress {HEAD_JOB_ADDR}"))
    made["argv"]["head"] = ["nsenter", f"--net=/run/netns/{HEAD_NS}", "/usr/sbin/sshd", "-D", "-e", "-f", str(config)]
    made["pids"]["head"] = _daemon(state, "head", made["argv"]["head"])
    save()
    _wait_for_sshds(count)
    facts = {**made, "head": {"host": HEAD_ADDR, "port": 22},
             "nodes": {f"node-{n}": {"host": node_addr(n), "port": 22, "namespace": f"{PREFIX}-n{n}",
                                     "view": str(state / "nodes" / f"node-{n}")} for n in range(1, count + 1)},
             "controller": CONTROLLER_ADDR, "job_network": JOB_NET}
    record.write_text(json.dumps(facts, indent=2))
    return facts


def _daemon(state: Path, name: str, argv: list[str]) -> int:
    with open(state / "log" / f"sshd-{name}.out", "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    return proc.pid


def _wait_for_sshds(count: int, timeout: float = 30) -> None:
    """Each sshd answers its banner, seen from where it should be reachable (the head sees the nodes)."""
    probes = [("", HEAD_ADDR)] + [(HEAD_NS, node_addr(n)) for n in range(1, count + 1)]
    deadline = time.monotonic() + timeout
    for ns, address in probes:
        code = "import socket,sys; s=socket.create_connection((sys.argv[1], 22), 1); sys.exit(0 if s.recv(4) == b'SSH-' else 1)"
        while True:
            argv = ["python3", "-c", code, address]
            done = (_in(ns, *argv, check=False) if ns else _run(*argv, check=False)).returncode == 0
            if done:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"testbed: sshd at {address} did not come up within {timeout:.0f} s")
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def down(state: Path) -> None:
    """Stop the sshds and remove namespaces, links and routes, by what ``up`` recorded."""
    record = state / "nodes.json"
    if not record.exists():
        return
    made = json.loads(record.read_text())
    for pid in made.get("pids", {}).values():
        if _alive(pid):
            os.killpg(pid, signal.SIGTERM) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGTERM)
    for ns in made.get("namespaces", []):  # whatever still runs inside (tasks of the nodes)
        pids = _run("ip", "netns", "pids", ns, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    for route in made.get("routes", []):
        _run("ip", "route", "del", route, check=False)
    for link in made.get("links", []):
        _run("ip", "link", "del", link, check=False)
    for ns in reversed(made.get("namespaces", [])):
        _run("ip", "netns", "del", ns, check=False)
    shutil.rmtree(state / "nodes", ignore_errors=True)
    record.unlink()
