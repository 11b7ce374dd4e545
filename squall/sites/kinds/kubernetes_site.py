"""The ``kubernetes`` kind, assembled from three parts: the job stack that holds each job's Indexed Job
(``kubernetes_stack``, the provisioner), the Indexed Job watched through the Kubernetes API (``indexed_job``,
the executor) and the job's volume reached through its stager pod (``kubernetes_files``, the transport).

No machine here runs the runtime as an agent (the pods are the job's own), so
the executor and the transport have their own small contracts rather than
the host-based ones of ``executors.contract.Executor`` and ``transports.contract.Transport``; the
provisioner is a ``provisioners.contract.Provisioner`` like every other. Each job's stack is
destroyed in every case.
"""

from __future__ import annotations

import re
from pathlib import Path

from squall.errors import Refused
from squall.infra.driver import StackName
from squall.job_types import CollectedTask, JobPlan, TaskState
from squall.sites.contract import Capability, Claim, LiveResource, Reporter, Site
from squall.sites.executors.kubernetes_job import IndexedJob
from squall.sites.transports.kubernetes_volume import JobVolume, has_files
from squall.sites.provisioners.kubernetes_stack import KubernetesJobStack
from squall.store import Store


class KubernetesSite(Site):
    kind = "kubernetes"
    capabilities = frozenset({Capability.CONTAINERS, Capability.GPUS, Capability.NETWORK_ISOLATION})
    shared_poll = True
    poll_interval = 2.0

    def __init__(self, name: str, provisioner: KubernetesJobStack, executor: IndexedJob, volume: JobVolume):
        super().__init__(name)
        self.provisioner, self.executor, self.volume = provisioner, executor, volume

    def check(self, plan: JobPlan) -> None:
        self.check_processes(plan)
        self.provisioner.check(plan)
        problems = self.executor.check(plan) + self.volume.check(plan)
        if problems:
            raise Refused(f"site {self.name!r} cannot run this job: " + "; ".join(problems))

    def max_duration(self, plan: JobPlan) -> float:
        return self.executor.max_duration(plan)

    def up(self, plan: JobPlan, claim: Claim) -> None:
        self.provisioner.up(plan, claim)

    def stage(self, plan: JobPlan, reporter: Reporter) -> None:
        self.volume.stage(plan, reporter)

    def launch(self, plan: JobPlan) -> dict:
        return self.executor.launch(plan)

    def poll(self, plans: list[JobPlan]) -> dict[str, list[TaskState]]:
        return self.executor.poll(plans)

    def cancel(self, plan: JobPlan) -> None:
        """Deleting the stack deletes the Job and its pods; ``down`` does it (and is safe to repeat)."""
        self.provisioner.down(plan)

    def collect(self, plan: JobPlan, indexes: list[int], reporter: Reporter) -> list[CollectedTask]:
        if has_files(plan):
            return self.volume.collect(plan, indexes)
        return self.executor.collect_logs(plan, indexes)

    def down(self, plan: JobPlan) -> None:
        self.provisioner.down(plan)

    def live_resources(self) -> list[LiveResource]:
        return self.provisioner.live_resources()

    def remove(self, resource: LiveResource) -> None:
        self.provisioner.remove(resource)

    def read_log(self, plan: JobPlan, index: int, stream: str, offset: int) -> bytes | None:
        return self.executor.read_log(plan, index, stream, offset)


def open_kubernetes_site(name: str, home: Path, store: Store, config: dict) -> KubernetesSite:
    from squall.infra.driver import engine_for
    from squall.sites.kubernetes_api import Cluster
    from squall.sites.kubernetes_api import ClusterJobApi

    org_stack, context = StackName.parse(config["org_stack"]), config.get("context")
    cluster = Cluster(store, org_stack, lambda: ClusterJobApi(context), context)
    executor = IndexedJob(name, cluster, config.get("network_policy_cni"))
    volume = JobVolume(name, cluster)
    provisioner = KubernetesJobStack(name, store, org_stack, engine_for(home), context,
                                     lambda plan: {**executor.work(plan), **volume.work(plan)})
    return KubernetesSite(name, provisioner, executor, volume)


def add_kubernetes_site(store: Store, name: str, org_stack: str, context: str | None,
                        network_policy_cni: str | None = None) -> dict:
    """Register a Kubernetes site: which organisation stack's namespace it runs in, which kubeconfig context
    (it must agree with the stack file's ``kubernetes:context``), and which CNI enforces NetworkPolicies."""
    from squall.errors import InvalidInput
    from squall.programs.stack_files import load_stack
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
