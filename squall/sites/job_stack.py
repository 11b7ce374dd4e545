"""The ephemeral job stack provisioner: each job of a ``cloud`` site gets its own Pulumi stack of the
organisation, destroyed in every case (the runner calls ``down`` whatever happened)."""

from __future__ import annotations

from squall.errors import Refused
from squall.infra import records
from squall.infra.driver import Engine, StackName
from squall.infra.job_stacks import JobStacks
from squall.sites.base import Claim, JobPlan, LiveResource
from squall.sites.parts import Provisioner
from squall.store import Store


class JobStackProvisioner(Provisioner):
    def __init__(self, site: str, store: Store, org_stack: StackName, engine: Engine):
        self.site = site
        self.store = store
        self.org_stack = org_stack
        self.job_stacks = JobStacks(store, engine)

    def check(self, plan: JobPlan) -> None:
        from squall.programs.stack_files import load_stack

        if load_stack(str(self.org_stack)).org.cloud == "kubernetes":
            raise Refused(f"site {self.site!r}: jobs on Kubernetes organisations are not run by this version "
                          "(the Indexed Job program exists; its runner does not)")

    def up(self, plan: JobPlan, claim: Claim) -> None:
        stack = self.job_stacks.name(self.org_stack, plan.job_id)
        claim("stack", str(stack))  # the lease exists before the stack does
        self.job_stacks.create(self.org_stack, plan.job_id, len(plan.tasks))

    def down(self, plan: JobPlan) -> None:
        self.job_stacks.destroy(self.job_stacks.name(self.org_stack, plan.job_id), plan.job_id)

    def live_resources(self) -> list[LiveResource]:
        """The job stacks the store knows to be alive."""
        return [LiveResource(self.site, "stack", r.name, r.job_id, store_id=self.store.store_id)
                for r in records.stacks(self.store, "job") if r.org == self.org_stack.org and r.state != "destroyed"]

    def remove(self, resource: LiveResource) -> bool:
        if resource.kind != "stack":
            return False
        self.job_stacks.destroy(StackName.parse(resource.resource), resource.job_id)
        return True
