"""The ``kubernetes`` site: each job is an ephemeral job stack holding one Indexed Job, watched through the
Kubernetes API, and destroyed in every case.

Each task is one completion index; the pod runs the spec's command in the
spec's image with ``SQUALL_TASK_INDEX`` set, no network but its own job's pods
(the stack's NetworkPolicy), and what it prints is collected as the task's log.
A NetworkPolicy is only enforced by some CNIs: tasks are reported network
isolated only when the site was registered with the CNI that enforces it
(``--network-policy-cni``), otherwise not, and the launch journal says why.
The job stack's provider is pinned to the site's kubeconfig context, so the
program and the site's watcher talk to the same cluster.
Staged inputs and output files need a volume this version does not manage:
such specs are refused at check time, before anything is created.
"""

from __future__ import annotations

import re
import shlex
from functools import cached_property
from pathlib import Path
from typing import Callable

from squall.errors import Refused
from squall.infra import records
from squall.infra.driver import Engine, StackName
from squall.infra.job_stacks import JobStacks
from squall.sites.base import Capability, Claim, CollectedTask, JobPlan, LiveResource, Reporter, Site, TaskState
from squall.sites.kubernetes_api import JobApi, task_states
from squall.sites.job_stack import task_resources
from squall.store import Store

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
        spec, org = plan.spec, self._settings().org
        if org.cloud != "kubernetes":
            raise Refused(f"site {self.name!r}: {self.org_stack} is a {org.cloud} organisation, not kubernetes")
        problems = []
        if not spec.image:
            problems.append("image: a Kubernetes job runs in a container image; set one")
        if spec.inputs or spec.script:
            problems.append("inputs/script: Kubernetes sites do not stage files in this version")
        if not spec.command:
            problems.append("command: required on Kubernetes sites")
        pool = org.pools[0]
        if spec.resources.gpus > pool.gpus_per_node or spec.resources.cpus > pool.cpus_per_node:
            problems.append(f"resources: more than a node of pool {pool.name} ({pool.cpus_per_node} cpus, "
                            f"{pool.gpus_per_node} GPUs)")
        if problems:
            raise Refused(f"site {self.name!r} cannot run this job: " + "; ".join(problems))

    def max_duration(self, plan: JobPlan) -> float:
        return plan.walltime + 60

    def up(self, plan: JobPlan, claim: Claim) -> None:
        stack = self.job_stacks.name(self.org_stack, plan.job_id)
        claim("stack", str(stack))
        spec = plan.spec
        command = spec.command if isinstance(spec.command, str) else shlex.join(spec.command or [])
        self.job_stacks.create(self.org_stack, plan.job_id, len(plan.tasks), work={
            "image": spec.image, "command": ["sh", "-c", TASK_SCRIPT, "squall-task", command],
            "walltime": plan.walltime, "kube_context": self.context, **task_resources(plan)})

    def stage(self, plan: JobPlan, reporter: Reporter) -> None:
        """Nothing to stage: check() refused inputs."""

    def launch(self, plan: JobPlan) -> dict:
        """The Indexed Job started when the stack created it."""
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
