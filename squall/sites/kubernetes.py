"""The ``kubernetes`` site: each job is an ephemeral job stack holding one Indexed Job, watched through the
Kubernetes API, and destroyed in every case.

Each task is one completion index; the pod runs the spec's command in the
spec's image with ``SQUALL_TASK_INDEX`` set, no network but its own job's pods
(the stack's NetworkPolicy), and what it prints is collected as the task's log.
A job with input files or a script gets a volume (the organisation's
``job_stack.volume_class``) and a stager pod: each task's folder is staged
there through the API (``squall.sites.kubernetes_files``), the Job, created
suspended, is resumed, the runtime (from the stack's ConfigMap; the image
needs python3) runs each task in its folder as on every other site, and the
outputs come back checked against the runtime's manifest.
A NetworkPolicy is only enforced by some CNIs: tasks are reported network
isolated only when the site was registered with the CNI that enforces it
(``--network-policy-cni``), otherwise not, and the launch journal says why.
The job stack's provider is pinned to the site's kubeconfig context, so the
program and the site's watcher talk to the same cluster.
"""

from __future__ import annotations

import math
import re
import shlex
import time
from functools import cached_property
from pathlib import Path
from typing import Callable

from squall.errors import Refused, SiteUnreachable
from squall.runtime import runtime_version
from squall.infra import records
from squall.infra.driver import Engine, StackName
from squall.infra.job_stacks import JobStacks
from squall.sites.base import Capability, Claim, CollectedTask, JobPlan, LiveResource, Reporter, Site, TaskState
from squall.sites.kubernetes_api import JobApi, task_states
from squall.sites.job_stack import task_resources
from squall.sites.kubernetes_files import TASK_MOUNT, collect_task, stage_task
from squall.store import Store

STAGER_WAIT = 300  # seconds for the stager pod to run (volume bound, image pulled)
RUNTIME_IN_POD = f"/opt/squall/runtime/{runtime_version()}/squall_runtime.py"  # the job stack's ConfigMap
# The user's command is passed as an argument of a fixed script: it is never pasted into shell text.
TASK_SCRIPT = ('export SQUALL_TASK_INDEX="$JOB_COMPLETION_INDEX" SQUALL_OUTPUT_DIR=/tmp/squall-output; '
               'mkdir -p "$SQUALL_OUTPUT_DIR"; exec sh -c "$1"')


class KubernetesSite(Site):
    kind = "kubernetes"
    capabilities = frozenset({Capability.CONTAINERS, Capability.GPUS, Capability.NETWORK_ISOLATION})
    shared_poll = True
    poll_interval = 2.0

    def __init__(self, name: str, home: Path, store: Store, org_stack: StackName, engine: Engine,
                 connect: Callable[[], JobApi], context: str | None = None, network_policy_cni: str | None = None):
        super().__init__(name)
        self.store, self.org_stack, self._connect = store, org_stack, connect
        self.context, self.network_policy_cni = context, network_policy_cni
        self.job_stacks = JobStacks(store, engine)

    @cached_property
    def api(self) -> JobApi:
        """The cluster, reached (credentials looked up) only once a step needs it: after the spec checks."""
        return self._connect()

    def _settings(self):
        from squall.programs.stack_files import load_stack

        return load_stack(str(self.org_stack))

    def namespace(self) -> str:
        return f"squall-{self.org_stack.org}"

    def job_name(self, plan: JobPlan) -> str:
        org = self._settings().org
        return f"{org.org}-{org.cluster}-job-{plan.job_id}"

    def check(self, plan: JobPlan) -> None:
        self.check_processes(plan)
        spec, org = plan.spec, self._settings().org
        if org.cloud != "kubernetes":
            raise Refused(f"site {self.name!r}: {self.org_stack} is a {org.cloud} organisation, not kubernetes")
        problems = []
        if not spec.image:
            problems.append("image: a Kubernetes job runs in a container image; set one")
        if self._staged(plan) and not (org.job_stack and org.job_stack.volume_class):
            problems.append(f"inputs/script: staging files needs a job volume; organisation {org.org} names no "
                            "job_stack.volume_class (a ReadWriteMany storage class)")
        if not spec.command and not spec.script:
            problems.append("command: required on Kubernetes sites")
        pool = org.pools[0]
        if spec.resources.gpus > pool.gpus_per_node or spec.resources.cpus > pool.cpus_per_node:
            problems.append(f"resources: more than a node of pool {pool.name} ({pool.cpus_per_node} cpus, "
                            f"{pool.gpus_per_node} GPUs)")
        if problems:
            raise Refused(f"site {self.name!r} cannot run this job: " + "; ".join(problems))

    def max_duration(self, plan: JobPlan) -> float:
        return plan.walltime + 60

    @staticmethod
    def _staged(plan: JobPlan) -> bool:
        """Whether the job has files to stage (then it gets a volume and the runtime runs each task)."""
        return bool(plan.spec.inputs or plan.spec.script)

    def up(self, plan: JobPlan, claim: Claim) -> None:
        stack = self.job_stacks.name(self.org_stack, plan.job_id)
        claim("stack", str(stack))
        spec = plan.spec
        if self._staged(plan):  # the runtime runs the task in its folder of the job volume, as on every site
            command = ["python3", RUNTIME_IN_POD, "run", TASK_MOUNT]
            staged = sum(item.size for task in plan.tasks for item in task.inputs)
            volume = {"volume_gib": max(1, math.ceil(3 * staged / (1 << 30)))}  # inputs, outputs, room
        else:
            shown = spec.command if isinstance(spec.command, str) else shlex.join(spec.command or [])
            command, volume = ["sh", "-c", TASK_SCRIPT, "squall-task", shown], {}
        self.job_stacks.create(self.org_stack, plan.job_id, len(plan.tasks), work={
            "image": spec.image, "command": command, "walltime": plan.walltime, "kube_context": self.context,
            **volume, **task_resources(plan)})

    def stage(self, plan: JobPlan, reporter: Reporter) -> None:
        """Each task's folder into the job volume through the stager pod (nothing for a job without files)."""
        if not self._staged(plan):
            return
        pod = f"{self.job_name(plan)}-stager"
        deadline = time.monotonic() + STAGER_WAIT
        while not self.api.pod_running(self.namespace(), pod):
            if time.monotonic() > deadline:
                raise SiteUnreachable(f"site {self.name!r}: the stager pod {self.namespace()}/{pod} did not run "
                                      f"within {STAGER_WAIT} s", hint="is the volume's storage class ReadWriteMany?")
            time.sleep(2)
        total = sum(item.size for task in plan.tasks for item in task.inputs)
        sent = 0
        for task in plan.tasks:
            sent += stage_task(self.api, self.namespace(), pod, plan, task.index)
            reporter.bytes_staged(min(sent, total), total)

    def launch(self, plan: JobPlan) -> dict:
        """The Indexed Job started when the stack created it, or (files staged) now."""
        if self._staged(plan):
            self.api.resume(self.namespace(), self.job_name(plan))
        isolation = (f"NetworkPolicy enforced by {self.network_policy_cni}" if self.network_policy_cni else
                     f"site {self.name!r} names no NetworkPolicy-enforcing CNI (site add --network-policy-cni): "
                     "the job's NetworkPolicy may not be enforced")
        return {"kubernetes_job": f"{self.namespace()}/{self.job_name(plan)}",
                "network_isolated": self.network_policy_cni is not None, "network_isolation": isolation}

    def poll(self, plans: list[JobPlan]) -> dict[str, list[TaskState]]:
        isolated = self.network_policy_cni is not None
        return {plan.job_id: task_states(self.api.job_status(self.namespace(), self.job_name(plan)), len(plan.tasks),
                                         isolated)
                for plan in plans}

    def cancel(self, plan: JobPlan) -> None:
        """Deleting the stack deletes the Job and its pods; ``down`` does it (and is safe to repeat)."""
        self.down(plan)

    def collect(self, plan: JobPlan, indexes: list[int], reporter: Reporter) -> list[CollectedTask]:
        if self._staged(plan):
            pod = f"{self.job_name(plan)}-stager"
            return [collect_task(self.api, self.namespace(), pod, plan, index) for index in indexes]
        collected = []
        for index in indexes:
            log = self.api.pod_log(self.namespace(), self.job_name(plan), index)
            target = plan.results_dir / f"task-{index}"
            target.mkdir(parents=True, exist_ok=True)
            if log is None:
                collected.append(CollectedTask(index, 0, 0, error="no pod log"))
                continue
            (target / "log.txt").write_bytes(log)
            collected.append(CollectedTask(index, 1, len(log)))
        return collected

    def down(self, plan: JobPlan) -> None:
        self.job_stacks.destroy(self.job_stacks.name(self.org_stack, plan.job_id), plan.job_id)

    def live_resources(self) -> list[LiveResource]:
        return [LiveResource(self.name, "stack", r.name, r.job_id, store_id=self.store.store_id)
                for r in records.stacks(self.store, "job") if r.org == self.org_stack.org and r.state != "destroyed"]

    def remove(self, resource: LiveResource) -> None:
        self.job_stacks.destroy(StackName.parse(resource.resource), resource.job_id)

    def read_log(self, plan: JobPlan, index: int, stream: str, offset: int) -> bytes | None:
        log = self.api.pod_log(self.namespace(), self.job_name(plan), index)
        return None if log is None else log[offset:]


def add_kubernetes_site(store: Store, name: str, org_stack: str, context: str | None,
                        network_policy_cni: str | None = None) -> dict:
    """Register a Kubernetes site: which organisation stack's namespace it runs in, which kubeconfig context
    (it must agree with the stack file's ``kubernetes:context``), and which CNI enforces NetworkPolicies."""
    from squall.errors import InvalidInput
    from squall.programs.stack_files import load_stack
    from squall.sites import check_site_name

    check_site_name(name)
    stack = StackName.parse(org_stack)
    cloud = load_stack(str(stack)).org.cloud
    if cloud != "kubernetes":
        raise InvalidInput(f"--org-stack {org_stack}: a {cloud} organisation; a kubernetes site needs a kubernetes one")
    from squall.infra.orgs import provider_config

    pinned = provider_config(stack).values.get("kubernetes:context")
    if context and pinned and context != pinned:
        raise InvalidInput(f"--context {context}: the stack file of {org_stack} pins kubernetes:context {pinned}; "
                           "the site and its jobs' stacks must use the same cluster")
    if network_policy_cni is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.-]{0,62}", network_policy_cni):
        raise InvalidInput(f"--network-policy-cni {network_policy_cni!r}: a CNI name like calico or cilium")
    config = {"org_stack": str(stack), "context": context or pinned, "network_policy_cni": network_policy_cni}
    store.set_site(name, "kubernetes", config)
    return {"site": name, "kind": "kubernetes", **config}
