#!/usr/bin/env python3
"""Read-only compliance check of an HPC login node, run by the squall_site_check role.

Prints one JSON object: {"checks": [{"name", "status", "value", "hint", "required"}],
"facts": {...}}. Standard library only, Python 3.6 or newer, so that it can run (and
report) on an old login node. The only thing it writes is the output file of its probe
job, inside the work root, which it removes.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import time

MIN_PYTHON = (3, 8)
PROBE = r"""
import json, socket, sys
target = sys.argv[1] if len(sys.argv) > 1 else ""
result = {"python": ".".join(map(str, sys.version_info[:3])), "network": "skipped"}
if target:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        result["network"] = "reachable"
    except OSError as exc:
        result["network"] = "none (%s)" % exc.__class__.__name__
print(json.dumps(result))
"""


class Report(object):
    def __init__(self):
        self.checks = []
        self.facts = {}

    def add(self, name, ok, value, hint="", required=True, status=None):
        self.checks.append({
            "name": name,
            "status": status or ("ok" if ok else ("failed" if required else "warn")),
            "value": value,
            "hint": "" if ok else hint,
            "required": required,
        })
        return ok


def run(argv, timeout=60):
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def version_text(info):
    return ".".join(str(part) for part in info)


def check_commands(report, scheduler, commands):
    """The scheduler's client commands (Squall passes the list its runtime module declares)."""
    missing = [c for c in commands if shutil.which(c) is None]
    return report.add(scheduler + "_commands", not missing,
                      "missing: " + ", ".join(missing) if missing else "all found",
                      "install the scheduler's client commands or set squall_remote_path to where they are")


def check_partitions(report, wanted):
    rc, out, err = run(["sinfo", "-h", "-o", "%R %a %G"])
    if rc != 0:
        return report.add("partitions", False, err.strip() or "sinfo failed", "is slurmctld reachable?")
    seen = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            gres = seen.get(parts[0], {}).get("gres", set())
            if len(parts) > 2 and parts[2] != "(null)":
                gres.add(parts[2])
            seen[parts[0]] = {"state": parts[1], "gres": gres}
    problems = []
    for partition in wanted:
        state = seen.get(partition["name"], {}).get("state")
        if state is None:
            problems.append("%s missing" % partition["name"])
        elif state != "up":
            problems.append("%s is %s" % (partition["name"], state))
    report.facts["partitions"] = {name: info["state"] for name, info in sorted(seen.items())}
    report.facts["gres"] = {name: sorted(info["gres"]) for name, info in sorted(seen.items())}
    value = "; ".join(problems) if problems else ", ".join(p["name"] for p in wanted) + " up"
    ok = report.add("partitions", not problems, value, "fix squall_partitions or ask the centre to open them")
    gpu_problems = []
    for partition in wanted:
        gres = ",".join(report.facts["gres"].get(partition["name"], []))
        if partition.get("gpus_per_node", 0) and "gpu" not in gres:
            gpu_problems.append("%s: no gpu gres" % partition["name"])
    gpus = {p["name"]: ",".join(report.facts["gres"].get(p["name"], [])) or "none" for p in wanted}
    report.add("gpus", not gpu_problems, "; ".join(gpu_problems) or json.dumps(gpus, sort_keys=True),
               "squall_partitions claims GPUs that Slurm's gres does not show")
    return ok


def discover_associations(report):
    """The account's Slurm associations (accounts, partitions, QoS, limits), as sacctmgr lists them; a centre
    without accounting (no slurmdbd) has none to list, and the report says why."""
    fields = ("Account", "Partition", "QOS", "DefaultQOS", "GrpTRES", "MaxTRES", "MaxWall", "MaxJobs")
    user = os.environ.get("USER") or str(os.getuid())
    rc, out, err = run(["sacctmgr", "--noheader", "--parsable2", "show", "associations", "user=" + user,
                        "format=" + ",".join(fields)], timeout=30)
    if rc != 0:
        report.facts["slurm_associations"] = {"available": False, "reason": (err or out).strip()[-300:]}
        return
    rows = [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]
    report.facts["slurm_associations"] = {"available": True, "associations": [
        {key.lower(): value for key, value in row.items() if value} for row in rows]}


def describe_machine(report):
    """CPUs, memory and GPUs of a machine with no scheduler (shown by ``squall site show``)."""
    report.facts["cpus"] = os.cpu_count() or 1
    with open("/proc/meminfo") as handle:
        report.facts["memory_mb"] = int(handle.readline().split()[1]) // 1024
    rc, out, _ = run(["nvidia-smi", "-L"])
    report.facts["gpus"] = len([line for line in out.splitlines() if line.startswith("GPU ")]) if rc == 0 else 0
    return report.add("machine", True, "%(cpus)d CPUs, %(memory_mb)d MB, %(gpus)d GPUs" % report.facts, "")


def check_python_login(report):
    ok = sys.version_info[:2] >= MIN_PYTHON
    report.facts["python_login"] = version_text(sys.version_info[:3])
    return report.add("python_login", ok, report.facts["python_login"], "the runtime needs python3 >= 3.8")


def check_work_root(report, work_root, min_free_gb, min_free_inodes):
    if not os.path.isdir(work_root):
        return report.add("work_root", False, "%s does not exist" % work_root,
                          "create it (writable by this account) or change squall_work_root")
    writable = os.access(work_root, os.W_OK | os.X_OK)
    report.add("work_root", writable, work_root + (" writable" if writable else " not writable"),
               "the service account must be able to write there")
    stat = os.statvfs(work_root)
    free_gb = stat.f_bavail * stat.f_frsize / float(1 << 30)
    report.add("work_root_free_space", free_gb >= min_free_gb, "%.1f GiB free" % free_gb,
               "below squall_min_free_gb=%s" % min_free_gb)
    report.add("work_root_free_inodes", stat.f_favail >= min_free_inodes, "%d inodes free" % stat.f_favail,
               "below squall_min_free_inodes=%s" % min_free_inodes)
    return writable


def check_runtimes(report, allowed):
    found = [r for r in ("apptainer", "singularity", "podman", "docker") if shutil.which(r)]
    report.facts["container_runtimes"] = found
    missing = [r for r in allowed if r not in found]
    value = "found: %s" % (", ".join(found) or "none")
    if missing:
        value += "; allowed but missing: " + ", ".join(missing)
    report.add("container_runtimes", not missing, value,
               "jobs with an image cannot run until these are installed", required=False)


def probe_compute(report, work_root, partition, network_target):
    """A tiny job through Slurm: python3 on compute nodes, and (optionally) outbound network."""
    out_file = os.path.join(work_root, "squall-probe-%d.out" % os.getpid())
    wrap = "python3 -c %s %s" % (shlex.quote(PROBE), shlex.quote(network_target))
    started = time.time()
    rc, out, err = run(["sbatch", "--parsable", "--export=NIL", "--partition", partition, "--time", "00:02:00",
                        "--job-name", "squall-probe", "--comment", "squall:probe", "--output", out_file,
                        "--wrap", wrap])
    if rc == 0:
        rc = wait_for_job(out.strip().split(";")[0], timeout=180)
    try:
        with open(out_file) as handle:
            result = json.loads(handle.read().strip().splitlines()[-1])
    except (IOError, OSError, ValueError, IndexError):
        result = None
    finally:
        if os.path.exists(out_file):
            os.remove(out_file)
    if rc != 0 or result is None:
        report.add("python_compute", False, (err or out).strip() or "probe job failed (exit %d)" % rc,
                   "the probe job could not run python3 on a compute node")
        return
    report.facts["probe_seconds"] = round(time.time() - started, 2)
    major_minor = tuple(int(p) for p in result["python"].split(".")[:2])
    report.facts["python_compute"] = result["python"]
    report.add("python_compute", major_minor >= MIN_PYTHON, result["python"], "the runtime needs python3 >= 3.8")
    network = result["network"]
    report.add("compute_network", True, network, required=False,
               status="skipped" if network == "skipped" else "ok")


def wait_for_job(job_id, timeout):
    """Poll scontrol (every 0.2 s; sbatch --wait sleeps seconds) until the job ends; 0 if it completed."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        rc, out, _ = run(["scontrol", "show", "job", "-o", job_id])
        state = next((f.split("=", 1)[1] for f in out.split() if f.startswith("JobState=")), None)
        if rc != 0 or state in ("COMPLETED",):
            return 0
        if state in ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL"):
            return 1
        time.sleep(0.2)
    run(["scancel", job_id])
    return 124


def main():
    config = json.loads(sys.argv[1])
    if config.get("remote_path"):
        os.environ["PATH"] = config["remote_path"]
    report = Report()
    scheduler = config.get("scheduler", "none")  # "none": a plain machine, what it has is what tasks get
    slurm = scheduler == "slurm"  # the partition, association and compute-node checks are Slurm's only so far
    commands_ok = scheduler != "none" and check_commands(report, scheduler, config.get("scheduler_commands") or [])
    partitions_ok = slurm and commands_ok and check_partitions(report, config["partitions"])
    if slurm and commands_ok:
        discover_associations(report)
    check_python_login(report)
    work_root_ok = check_work_root(report, config["work_root"], config["min_free_gb"], config["min_free_inodes"])
    check_runtimes(report, config["container_runtimes"])
    if scheduler == "none":
        describe_machine(report)
    elif not slurm:
        report.add("partitions", True, "not checked for %s (its health job runs in the first queue)" % scheduler,
                   status="skipped", required=False)
    elif partitions_ok and work_root_ok:
        probe_compute(report, config["work_root"], config["partitions"][0]["name"], config["network_probe"])
    else:
        report.add("python_compute", False, "not probed", "fix the failed checks above first")
    print(json.dumps({"checks": report.checks, "facts": report.facts}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
