"""The Kubernetes provisioner: each job is an ephemeral job stack of the organisation holding its Indexed Job
(what ``indexed_job`` runs), its NetworkPolicy and, for a job with files, its volume and stager pod (what
``kubernetes_files`` asks for); destroyed in every case. The stack's provider is pinned to the site's
kubeconfig context, so the program and the site's watcher talk to the same cluster."""

from __future__ import annotations

from typing import Callable

from squall.errors import Refused
from squall.infra.driver import Engine, StackName
from squall.job_types import JobPlan
from squall.sites.contract import Claim
from squall.sites.provisioners.job_stack import JobStackProvisioner, task_resources
from squall.store import Store


class KubernetesJobStack(JobStackProvisioner):
    def __init__(self, site: str, store: Store, org_stack: StackName, engine: Engine, context: str | None,
                 work: Callable[[JobPlan], dict]):
        super().__init__(site, store, org_stack, engine)
        self.context, self.work = context, work

    def check(self, plan: JobPlan) -> None:
        cloud = self._org().cloud
        if cloud != "kubernetes":
            raise Refused(f"site {self.site!r}: {self.org_stack} is a {cloud} organisation, not kubernetes")

    def up(self, plan: JobPlan, claim: Claim) -> None:
        claim("stack", str(self.job_stacks.name(self.org_stack, plan.job_id)))  # leased before it exists
        self.job_stacks.create(self.org_stack, plan.job_id, len(plan.tasks), work={
            **self.work(plan), "kube_context": self.context, **task_resources(plan)})
