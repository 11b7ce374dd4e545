"""The Kubernetes executor: each job's tasks are the completion indexes of one Indexed Job (made by the
job stack, ``kubernetes_stack``), watched through the Kubernetes API.

Each task is one completion index; the pod runs the spec's command in the
spec's image with ``SQUALL_TASK_INDEX`` set, or — when the job has files in a
volume (``kubernetes_files.JobVolume``) — the runtime from the stack's
ConfigMap (the image needs python3) runs the task in its folder, as on every
other site. The Job of a job with files is created suspended and resumed at
launch, once the files are there. What a pod without files prints is
collected as the task's log. A NetworkPolicy is only enforced by some CNIs:
tasks are reported network isolated only when the site was registered with
the CNI that enforces it (``--network-policy-cni``).
"""

from __future__ import annotations

import shlex

from squall.runtime import runtime_version
from squall.job_types import CollectedTask, JobPlan, TaskState
from squall.sites.kubernetes_api import Cluster, task_states
from squall.sites.transports.kubernetes_volume import TASK_MOUNT, has_files

RUNTIME_IN_POD = f"/opt/squall/runtime/{runtime_version()}/squall_runtime.py"  # the job stack's ConfigMap
# The user's command is passed as an argument of a fixed script: it is never pasted into shell text.
TASK_SCRIPT = ('export SQUALL_TASK_INDEX="$JOB_COMPLETION_INDEX" SQUALL_OUTPUT_DIR=/tmp/squall-output; '
               'mkdir -p "$SQUALL_OUTPUT_DIR"; exec sh -c "$1"')


class IndexedJob:
    def __init__(self, site: str, cluster: Cluster, network_policy_cni: str | None):
        self.site, self.cluster, self.network_policy_cni = site, cluster, network_policy_cni

    def check(self, plan: JobPlan) -> list[str]:
        """What in the spec an Indexed Job of this organisation's pool cannot run (empty: nothing)."""
        spec, pool = plan.spec, self.cluster.settings().org.pools[0]
        problems = []
        if not spec.image:
            problems.append("image: a Kubernetes job runs in a container image; set one")
        if not spec.command and not spec.script:
            problems.append("command: required on Kubernetes sites")
        if spec.resources.gpus > pool.gpus_per_node or spec.resources.cpus > pool.cpus_per_node:
            problems.append(f"resources: more than a node of pool {pool.name} ({pool.cpus_per_node} cpus, "
                            f"{pool.gpus_per_node} GPUs)")
        return problems

    def max_duration(self, plan: JobPlan) -> float:
        return plan.walltime + 60

    def work(self, plan: JobPlan) -> dict:
        """What the job stack's Indexed Job runs: the runtime in each task's folder, or the command itself."""
        if has_files(plan):
            return {"image": plan.spec.image, "command": ["python3", RUNTIME_IN_POD, "run", TASK_MOUNT],
                    "walltime": plan.walltime}
        command = plan.spec.command
        shown = command if isinstance(command, str) else shlex.join(command or [])
        return {"image": plan.spec.image, "command": ["sh", "-c", TASK_SCRIPT, "squall-task", shown],
                "walltime": plan.walltime}

    def launch(self, plan: JobPlan) -> dict:
        """The Indexed Job started when the stack created it, or (files staged) now."""
        if has_files(plan):
            self.cluster.api.resume(self.cluster.namespace, self.cluster.job_name(plan))
        isolation = (f"NetworkPolicy enforced by {self.network_policy_cni}" if self.network_policy_cni else
                     f"site {self.site!r} names no NetworkPolicy-enforcing CNI (site add --network-policy-cni): "
                     "the job's NetworkPolicy may not be enforced")
        return {"kubernetes_job": f"{self.cluster.namespace}/{self.cluster.job_name(plan)}",
                "network_isolated": self.network_policy_cni is not None, "network_isolation": isolation}

    def poll(self, plans: list[JobPlan]) -> dict[str, list[TaskState]]:
        isolated = self.network_policy_cni is not None
        return {plan.job_id: task_states(self.cluster.api.job_status(self.cluster.namespace,
                                                                     self.cluster.job_name(plan)),
                                         len(plan.tasks), isolated)
                for plan in plans}

    def collect_logs(self, plan: JobPlan, indexes: list[int]) -> list[CollectedTask]:
        """A job without files: each index's pod log is its output."""
        collected = []
        for index in indexes:
            log = self.read_log(plan, index, "stdout", 0)
            target = plan.results_dir / f"task-{index}"
            target.mkdir(parents=True, exist_ok=True)
            if log is None:
                collected.append(CollectedTask(index, 0, 0, error="no pod log"))
                continue
            (target / "log.txt").write_bytes(log)
            collected.append(CollectedTask(index, 1, len(log)))
        return collected

    def read_log(self, plan: JobPlan, index: int, stream: str, offset: int) -> bytes | None:
        log = self.cluster.api.pod_log(self.cluster.namespace, self.cluster.job_name(plan), index)
        return None if log is None else log[offset:]

