"""Slurm, as the runtime asks it on a login node: submit, records, cancel, test-only, limits, jobs.

Shipped beside ``squall_runtime.py`` (``schedulers/slurm.py``) and loaded by
name when an agent command names ``slurm``; the controller's half is
``squall.sites.executors.slurm``, which alone reads what these return. Standard
library only, Python 3.8 or newer, like the runtime.
"""

from __future__ import print_function

import os
import pwd
import re
import subprocess
import time

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
COMMANDS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo")  # what the site check looks for
RECORD_FIELDS = ("JobId", "ArrayJobId", "ArrayTaskId", "JobName", "JobState", "ExitCode", "Reason")
ASSOC_ACCOUNT = re.compile(r"^ClusterName=\S* Account=(\S+) UserName=(\S*)")
ASSOC_PARENT = re.compile(r"\bParentAccount=([^\s(]+)")  # "root(1)": the name before the id


def _user():
    return pwd.getpwuid(os.getuid()).pw_name


def submit(job_dir, name, queue=None, seconds=None):
    """Submit ``job_dir/job.sh`` as ``name`` unless a job called ``name`` exists: ``(job id, submitted now)``.
    ``queue`` and ``seconds`` (a partition and a time limit) are for a script that names neither (the health
    job); its output then goes to ``job_dir/scheduler.out``."""
    out = subprocess.run(["squeue", "-h", "-u", _user(), "--name", name, "-o", "%A"], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout.split()
    if out:
        return out[0], False
    options = ["--job-name=" + name]
    if queue:
        options += ["--partition=" + queue, "--time=%d" % max(1, (int(seconds) + 59) // 60),
                    "--chdir=" + job_dir, "--output=" + os.path.join(job_dir, "scheduler.out")]
    job = subprocess.run(["sbatch", "--parsable"] + options + [os.path.join(job_dir, "job.sh")],
                         stdout=subprocess.PIPE, env=batch_environment(), universal_newlines=True,
                         check=True).stdout.strip().split(";")[0]
    return job, True


def batch_environment():
    """What a job array starts with (it is submitted with ``--export=ALL``): Slurm's own variables, a plain
    PATH and who the user is — nothing else of this session. ``--export=NIL`` would give the same but costs
    Slurm a scheduling cycle (about a second) for most arrays: measured on the test bed, 3.0 s vs 2.0 s for
    four no-op tasks."""
    env = dict((key, value) for key, value in os.environ.items() if key.startswith("SLURM_"))
    account = pwd.getpwuid(os.getuid())
    env.update(PATH=DEFAULT_PATH, HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
    return env


def records():
    """``scontrol show job -o`` of Squall's jobs as dicts, and None with scontrol's complaint when Slurm
    does not answer (slurmctld restarting): no record then proves nothing about a task."""
    try:
        done = subprocess.run(["scontrol", "show", "job", "-o"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    if done.returncode != 0:
        return None, (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[0][:300]
    found = []
    for line in done.stdout.splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if "JobId" in fields and fields.get("JobName", "").startswith("squall-"):
            found.append(dict((key, fields.get(key)) for key in RECORD_FIELDS))
    return found, None


def cancel(name):
    """Cancel this account's jobs called ``name``."""
    subprocess.run(["scancel", "--user", _user(), "--name", name], check=False)


def test_only(script):
    """When Slurm would start ``script``: ``sbatch --test-only`` submits nothing."""
    done = subprocess.run(["sbatch", "--test-only"], input=script, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    said = (done.stderr + done.stdout).strip()
    found = re.search(r"to start at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", said)
    if done.returncode != 0 or not found:
        return {"wait_s": None, "message": said}
    start = time.mktime(time.strptime(found.group(1), "%Y-%m-%dT%H:%M:%S"))  # the login node's local time
    return {"wait_s": max(0.0, start - time.time()), "message": said}


def limits():
    """This account's Slurm association records and those of every account above them, as
    ``scontrol show assoc_mgr`` prints them (limits with what is used now). A cluster without accounting
    (no slurmdbd) has none: ``records`` is None and ``message`` says why."""
    user = _user()
    found, have, needed, ask = {}, set(), set(), "users=" + user
    while ask:
        done = subprocess.run(["scontrol", "show", "assoc_mgr", "flags=assoc", ask], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True)
        if done.returncode != 0:
            return {"records": None, "message": (done.stderr + done.stdout).strip()[-300:]}
        for record in re.split(r"\n(?=ClusterName=)", done.stdout):
            head = ASSOC_ACCOUNT.search(record.strip())
            if not head or head.group(2).split("(")[0] not in ("", user):  # UserName=NAME(UID), or an account's
                continue
            found[record.strip()] = True
            parent = ASSOC_PARENT.search(record)
            needed.update(a for a in (head.group(1), parent and parent.group(1)) if a)
            if not head.group(2):
                have.add(head.group(1))
        missing = sorted(needed - have)
        ask = "accounts=" + ",".join(missing) if missing and ask != "accounts=" + ",".join(missing) else None
    if not found:
        return {"records": None, "message": "no association for %s (is accounting enabled?)" % user}
    return {"records": list(found), "message": ""}


def jobs():
    """This account's jobs called squall-*: id, name, comment (the owner tags) and state."""
    try:
        out = subprocess.run(["squeue", "-h", "-u", _user(), "-o", "%A|%j|%k|%T"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    found = []
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 4 and parts[1].startswith("squall-"):
            found.append({"id": parts[0], "name": parts[1], "comment": parts[2], "state": parts[3]})
    return found
