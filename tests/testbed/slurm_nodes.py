"""Multi-node part of the Slurm test bed: N compute hosts, each a network namespace with its own slurmd.

    slurmctld, slurmdbd, the login sshd (root namespace)  10.251.0.1 on bridge sqsl0
        |-- 10.251.0.11 sqc1 (slurmd, in namespace sqsl-c1)  ...  10.251.0.1N sqcN

Every host sees this machine's file system, so the work root and the service
account's home are shared under the same paths, as an HPC centre's parallel
file system would be; each host has its own network stack (MPI ranks on two
hosts talk over the bridge as over a cluster's network), its own host name and
its own /tmp. slurmd runs under ``nsenter --net=…`` (``ip netns exec`` remounts
/sys and breaks slurmd). OpenMPI and mpi4py come from Debian; Slurm's
``mpi/pmix`` plugin starts the ranks (``srun --mpi=pmix``). What is made is recorded in ``slurm-nodes.json``; ``down`` removes it by that record.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

BRIDGE, CONTROLLER_ADDR = "sqsl0", "10.251.0.1"
PARTITION = "multi"
BILLING = "CPU=1.0"  # inventories/testbed states the same


def node_name(number: int) -> str:
    return f"sqc{number}"


def node_addr(number: int) -> str:
    return f"10.251.0.{10 + number}"


def namespace(number: int) -> str:
    return f"sqsl-c{number}"


def recorded_count(state: Path) -> int:
    record = state / "slurm-nodes.json"
    return json.loads(record.read_text())["count"] if record.exists() else 0


def node_lines(count: int, memory_mb: int) -> str:
    """The compute hosts for slurm.conf. They must come before the ``localhost`` node: while a single node is
    known, slurmctld 22.05 finds that node under any name and reports the next one as a duplicate."""
    return "".join(f"NodeName={node_name(n)} NodeHostname={node_name(n)} NodeAddr={node_addr(n)} CPUs=2 "
                   f"RealMemory={memory_mb} State=UNKNOWN\n" for n in range(1, count + 1))


def partition_line(count: int) -> str:
    names = ",".join(node_name(n) for n in range(1, count + 1))
    return (f"PartitionName={PARTITION} Nodes={names} Default=NO MaxTime=00:30:00 State=UP "
            f"TRESBillingWeights={BILLING}\n") if count else ""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), check=check, text=True, capture_output=True)


def _in(number: int, *argv: str) -> None:
    _run("nsenter", f"--net=/run/netns/{namespace(number)}", *argv)


def up_network(state: Path, count: int) -> None:
    """The bridge (always: slurm.conf names the controller by its address on it) and ``count`` hosts."""
    links = _run("ip", "-o", "link", "show").stdout
    if f" {BRIDGE}:" not in links:
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{CONTROLLER_ADDR}/24", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
    present = _run("ip", "netns", "list").stdout.split()
    for number in range(1, count + 1):
        if namespace(number) in present:
            continue
        _run("ip", "netns", "add", namespace(number))
        _run("ip", "link", "add", f"{namespace(number)}a", "type", "veth", "peer", "name", "eth0",
             "netns", namespace(number))
        _run("ip", "link", "set", f"{namespace(number)}a", "master", BRIDGE, "up")
        _in(number, "ip", "addr", "add", f"{node_addr(number)}/24", "dev", "eth0")
        _in(number, "ip", "link", "set", "eth0", "up")
        _in(number, "ip", "link", "set", "lo", "up")
    (state / "slurm-nodes.json").write_text(json.dumps({"count": count}))


def slurmd_argv(state: Path, conf: Path, number: int) -> list[str]:
    """slurmd in the host's network namespace, with its own host name (MPI tells hosts apart by it) and its
    own /tmp (PMIx and MPI keep per-node files there under names that would collide on a shared one)."""
    tmp = state / "slurm-nodes" / node_name(number) / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    tmp.chmod(0o1777)
    script = 'hostname "$3" && mount --bind "$1" /tmp && exec /usr/sbin/slurmd -D -f "$2" -N "$3"'
    return ["nsenter", f"--net=/run/netns/{namespace(number)}", "unshare", "--mount", "--uts", "--propagation",
            "private", "sh", "-c", script, "sh", str(tmp), str(conf), node_name(number)]


def down(state: Path) -> None:
    """Remove the hosts' namespaces and the bridge (their slurmds are stopped with the other daemons)."""
    present = _run("ip", "netns", "list").stdout.split()
    for name in present:
        if name.startswith("sqsl-c"):
            _run("ip", "netns", "delete", name, check=False)
    _run("ip", "link", "delete", BRIDGE, check=False)
    (state / "slurm-nodes.json").unlink(missing_ok=True)
