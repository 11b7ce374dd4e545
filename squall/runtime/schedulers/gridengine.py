"""Grid Engine (Son of Grid Engine, Debian's ``gridengine-*``), as the runtime asks it on a submit host:
submit, records, cancel, test-only, limits, jobs.

Shipped beside ``squall_runtime.py`` (``schedulers/gridengine.py``) and loaded
by name; the controller's half is ``squall.sites.executors.gridengine``. A job
is an array (``qsub -t 1-N``: Grid Engine counts tasks from 1) named
``squall-<job id>`` whose context (``-ac``) carries the owner tags. Standard
library only, Python 3.8 or newer, like the runtime.
"""

from __future__ import print_function

import os
import pwd
import subprocess
import time
import xml.etree.ElementTree as ElementTree

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
COMMANDS = ("qsub", "qstat", "qdel")  # what the site check looks for
TIMEOUT = 60
CANCEL_WAIT = 30  # seconds ``cancel`` waits for deleted tasks to leave the queue (their runtimes stopping)


def _user():
    return pwd.getpwuid(os.getuid()).pw_name


def _environment():
    """What ``qsub`` runs with: Grid Engine's own variables, a plain PATH and who the user is."""
    env = dict((key, value) for key, value in os.environ.items() if key.startswith("SGE_"))
    account = pwd.getpwuid(os.getuid())
    env.update(PATH=DEFAULT_PATH, HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
    return env


def _qstat(*args):
    """``qstat``'s output, or None with its complaint when the qmaster does not answer."""
    try:
        done = subprocess.run(["qstat"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=TIMEOUT, env=_environment())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    if done.returncode != 0:
        return None, (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[0][:300]
    return done.stdout, None


def _listed():
    """This account's jobs as ``qstat -xml`` lists them: one dict per running task or pending range."""
    out, complaint = _qstat("-u", _user(), "-xml")
    if out is None:
        return None, complaint
    found = []
    for job in ElementTree.fromstring(out).iter("job_list"):
        name = job.findtext("JB_name") or ""
        if name.startswith("squall-"):
            found.append({"JobId": job.findtext("JB_job_number"), "JobName": name,
                          "State": job.findtext("state") or "", "Tasks": job.findtext("tasks") or ""})
    return found, None


def submit(job_dir, name, queue=None, seconds=None):
    """Submit ``job_dir/job.sh`` as ``name`` unless a job called ``name`` exists: ``(job id, submitted now)``.
    ``queue`` and ``seconds`` (a cluster queue and a hard runtime) are for a script that names neither (the
    health job); its output then goes to ``job_dir/scheduler.out``."""
    listed, complaint = _listed()
    if listed is None:
        raise OSError("qstat: %s" % complaint)
    for record in listed:
        if record["JobName"] == name:
            return record["JobId"], False
    options = ["-N", name]
    if queue:
        options += ["-q", queue, "-l", "h_rt=%d" % int(seconds), "-S", "/bin/sh", "-wd", job_dir, "-j", "y",
                    "-o", os.path.join(job_dir, "scheduler.out")]
    done = subprocess.run(["qsub", "-terse"] + options + [os.path.join(job_dir, "job.sh")], stdout=subprocess.PIPE,
                          env=_environment(), universal_newlines=True, check=True, cwd=job_dir)
    return done.stdout.strip().split(".")[0], True  # "12.1-4:1" for an array


def records():
    """Squall's jobs as Grid Engine lists them (a task that ended is no longer listed), and None with
    qstat's complaint when the qmaster does not answer: no record then proves nothing about a task."""
    return _listed()


def _ids(name):
    listed, _ = _listed()
    return sorted(set(r["JobId"] for r in listed or [] if r["JobName"] == name))


def cancel(name, wait=CANCEL_WAIT):
    """Delete this account's jobs called ``name`` and wait (at most ``wait`` seconds) until Grid Engine no
    longer lists them: a deleted task stays listed (``dr``) while its runtime stops, and a job folder removed
    under it would leave the runtime nowhere to write."""
    ids = _ids(name)
    if ids:
        subprocess.run(["qdel"] + ids, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                       env=_environment())
    deadline = time.time() + wait
    while ids and time.time() < deadline:
        time.sleep(0.2)
        ids = _ids(name)


def test_only(script):
    """Grid Engine cannot say when a job would start (``qsub -w v`` only says whether it could)."""
    return {"wait_s": None, "message": "Grid Engine gives no start-time estimate"}


def limits():
    """Grid Engine keeps no per-account limits Squall reads (resource quotas are not read yet)."""
    return {"records": None, "message": "Grid Engine: no account limits are read"}


def _contexts(ids):
    """Each job's context (``-ac`` variables) from ``qstat -j``, by job id."""
    out, _ = _qstat("-j", ",".join(ids))
    contexts, job = {}, None
    for line in (out or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "job_number":
            job = value.strip()
        elif key.strip() == "context" and job:
            contexts[job] = value.strip()
    return contexts


def jobs():
    """This account's jobs called squall-*: id, name, comment (the owner tags, from the context) and state."""
    listed, _ = _listed()
    first = {}
    for record in listed or []:
        first.setdefault(record["JobId"], record)
    contexts = _contexts(sorted(first)) if first else {}
    return [{"id": job, "name": r["JobName"], "comment": contexts.get(job, ""), "state": r["State"]}
            for job, r in sorted(first.items())]
