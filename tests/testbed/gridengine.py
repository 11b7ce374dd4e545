"""A real Grid Engine cell on this machine (``testbed up --scheduler gridengine``): Debian's qmaster and execd,
one cluster queue ``squall.q`` of 2 slots on ``localhost`` with an ``smp`` parallel environment, submitted to
by the same unprivileged account over the same sshd as the Slurm site (the site ``testbed-gridengine``).

Debian's packages keep the cell in /var/lib/gridengine/default and its spool in /var/spool/gridengine; their
post-install leaves the master's host name empty (it asks debconf), so ``up`` writes it (``localhost``, with
this machine's name as an alias: the qmaster refuses a client whose address resolves to another name than
the one it calls itself). Both daemons run in the foreground (``SGE_ND``) so their pids are known.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ["gridengine-master", "gridengine-exec", "gridengine-client"]
BINARIES = ["sge_qmaster", "sge_execd", "qsub"]
SGE_ROOT = Path("/var/lib/gridengine")
CELL = SGE_ROOT / "default" / "common"
DAEMONS = {"sge_qmaster": "/usr/lib/gridengine/sge_qmaster", "sge_execd": "/usr/lib/gridengine/sge_execd"}
QUEUE = "squall.q"
SLOTS = 2  # the Slurm site's node has 2 CPUs too
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SGE_ROOT": str(SGE_ROOT), "SGE_CELL": "default"}


def installed() -> bool:
    return all(Path("/usr/sbin", b).exists() or Path("/usr/bin", b).exists() for b in BINARIES)


def qconf(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["qconf", *args], capture_output=True, text=True, env=ENV, timeout=60)
    if check and done.returncode != 0:
        raise SystemExit(f"testbed: qconf {' '.join(args)} failed: {(done.stderr or done.stdout).strip()}")
    return done


def _from_file(option: str, text: str) -> None:
    """``qconf -Aq/-Ap FILE``: add an object described in a file."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as handle:
        handle.write(text)
        handle.flush()
        qconf(option, handle.name)


def name_the_master() -> None:
    (CELL / "act_qmaster").write_text("localhost\n")
    (CELL / "host_aliases").write_text(f"localhost {socket.gethostname()}\n")


def answers() -> bool:
    return qconf("-sh", check=False).returncode == 0


def executing() -> bool:
    done = subprocess.run(["qhost", "-h", "localhost"], capture_output=True, text=True, env=ENV, timeout=60)
    lines = [line.split() for line in done.stdout.splitlines() if line.startswith("localhost")]
    return done.returncode == 0 and bool(lines) and lines[0][6] != "-"  # the execd has reported its load


def configure() -> None:
    """The host's roles, the ``smp`` environment, the queue (each added once) and a quick scheduler."""
    if "localhost" not in qconf("-ss", check=False).stdout.split():
        qconf("-as", "localhost")
    if "smp" not in qconf("-spl", check=False).stdout.split():
        _from_file("-Ap", f"pe_name smp\nslots {SLOTS}\nuser_lists NONE\nxuser_lists NONE\nstart_proc_args NONE\n"
                          "stop_proc_args NONE\nallocation_rule $pe_slots\ncontrol_slaves FALSE\n"
                          "job_is_first_task TRUE\nurgency_slots min\naccounting_summary FALSE\nqsort_args NONE\n")
    if QUEUE not in qconf("-sql", check=False).stdout.split():
        template = qconf("-sq").stdout  # Grid Engine's own template, with this queue's values
        values = {"qname": QUEUE, "hostlist": "localhost", "slots": str(SLOTS), "load_thresholds": "NONE",
                  "pe_list": "smp", "h_rt": "04:00:00", "shell_start_mode": "unix_behavior"}
        lines = [f"{key} {values[key]}" if (key := line.split(" ", 1)[0]) in values else line
                 for line in template.splitlines()]
        _from_file("-Aq", "\n".join(lines) + "\n")
    qconf("-rattr", "queue", "pe_list", "smp", QUEUE)  # also on a queue an earlier configuration left
    # schedule at once (Debian's default waits up to 15 s per scheduling run): the tests wait for tasks
    quick = {"schedule_interval": "0:0:1", "flush_submit_sec": "1", "flush_finish_sec": "1"}
    lines = [f"{key} {quick[key]}" if (key := line.split(" ", 1)[0]) in quick else line
             for line in qconf("-ssconf").stdout.splitlines()]
    _from_file("-Msconf", "\n".join(lines) + "\n")

def up(start, wait_until) -> dict:
    """Start the qmaster and the execd (``start(name, argv, env)``), configure the cell; its facts."""
    name_the_master()
    start("sge_qmaster", [DAEMONS["sge_qmaster"]], {**ENV, "SGE_ND": "1"})
    wait_until("sge_qmaster", answers)
    if "localhost" not in qconf("-sh", check=False).stdout.split():
        qconf("-ah", "localhost")
    spool = Path("/var/spool/gridengine/execd")
    spool.mkdir(parents=True, exist_ok=True)
    os.chown(spool, *_admin())
    start("sge_execd", [DAEMONS["sge_execd"]], {**ENV, "SGE_ND": "1"})
    wait_until("sge_execd", executing, timeout=60)
    configure()
    return {"sge_root": str(SGE_ROOT), "queue": QUEUE, "slots": SLOTS}


def _admin() -> tuple[int, int]:
    import pwd

    account = pwd.getpwnam("sgeadmin")
    return account.pw_uid, account.pw_gid


def cancel_jobs(user: str) -> None:
    if answers():
        subprocess.run(["qdel", "-u", user], capture_output=True, env=ENV, timeout=60)
        time.sleep(0.5)
