"""The ``cloud`` site: each job gets an ephemeral job stack, then runs like an HPC job through the
organisation's head node, and the stack is destroyed in every case.

Staging, launch, monitoring, collection and the runtime are the ``hpc`` site's
own (this class only adds the stack around them): the head node is the login
node, reached over SSH with the inventory's login details. The runner calls
``down`` whatever happened (failure, Ctrl-C, exception), and ``down`` destroys
the stack even when removing the job folder on the head node fails.
"""

from __future__ import annotations

from pathlib import Path

from squall.errors import Refused
from squall.infra import records
from squall.infra.driver import Engine, StackName
from squall.infra.job_stacks import JobStacks
from squall.inventory import SiteInventory
from squall.sites.base import Claim, JobPlan, LiveResource
from squall.sites.hpc import HpcSite
from squall.store import Store


class CloudSite(HpcSite):
    kind = "cloud"

    def __init__(self, name: str, home: Path, store: Store, inventory: SiteInventory, engine: Engine):
        super().__init__(name, home, store, inventory)
        self.org_stack = StackName.parse(inventory.vars.squall_org_stack)
        self.job_stacks = JobStacks(store, engine)

    def check(self, plan: JobPlan) -> None:
        cloud = self._org_cloud()
        if cloud == "kubernetes":
            raise Refused(f"site {self.name!r}: jobs on Kubernetes organisations are not run by this version "
                          "(the Indexed Job program exists; its runner does not)")
        super().check(plan)

    def _org_cloud(self) -> str:
        from squall.programs.stack_files import load_stack

        return load_stack(str(self.org_stack)).org.cloud

    def up(self, plan: JobPlan, claim: Claim) -> None:
        stack = self.job_stacks.name(self.org_stack, plan.job_id)
        claim("stack", str(stack))  # the lease exists before the stack does
        self.job_stacks.create(self.org_stack, plan.job_id, len(plan.tasks))
        super().up(plan, claim)

    def down(self, plan: JobPlan) -> None:
        try:
            super().down(plan)
        finally:
            self.job_stacks.destroy(self.job_stacks.name(self.org_stack, plan.job_id), plan.job_id)

    def keep(self, plan: JobPlan, until: float) -> None:
        """The job folder is on the head node: keep it, but the job's nodes are no longer needed."""
        try:
            super().keep(plan, until)
        finally:
            self.job_stacks.destroy(self.job_stacks.name(self.org_stack, plan.job_id), plan.job_id)

    def live_resources(self) -> list[LiveResource]:
        """The head node's job folders and Slurm jobs, and the job stacks the store knows to be alive."""
        stacks = [LiveResource(self.name, "stack", r.name, r.job_id, store_id=self.store.store_id)
                  for r in records.stacks(self.store, "job") if r.org == self.org_stack.org and r.state != "destroyed"]
        return super().live_resources() + stacks

    def remove(self, resource: LiveResource) -> None:
        if resource.kind == "stack":
            self.job_stacks.destroy(StackName.parse(resource.resource), resource.job_id)
        else:
            super().remove(resource)
