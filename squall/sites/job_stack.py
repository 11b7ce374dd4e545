"""The ephemeral job stack provisioner: each job of a ``cloud`` site gets its own Pulumi stack of the
organisation, destroyed in every case (the runner calls ``down`` whatever happened)."""

from __future__ import annotations

from squall.errors import Refused, SquallError
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

    def _org(self):
        from squall.programs.stack_files import load_stack

        return load_stack(str(self.org_stack)).org

    def check(self, plan: JobPlan) -> None:
        """Refused (exit 4) before anything is made: a Kubernetes organisation, no job stacks, or no machine
        of the organisation fits one task."""
        from squall.programs.design import job_machine

        org = self._org()
        if org.cloud == "kubernetes":
            raise Refused(f"site {self.site!r}: organisation {org.org} is on Kubernetes; register it as a "
                          "kubernetes site")
        if org.job_stack is None:
            raise Refused(f"site {self.site!r}: organisation {org.org} has no job_stack section: no cloud jobs there")
        job_machine(org, *task_resources(plan).values())

    def price(self, plan: JobPlan):
        """The price of the machine the job's tasks get (unpriced: None)."""
        from squall.money.site_prices import flavour_price
        from squall.programs.design import job_machine

        org = self._org()
        return flavour_price(org, job_machine(org, *task_resources(plan).values()).flavour)

    def node_count(self, plan: JobPlan) -> int:
        """As many nodes as tasks, at most the organisation's ``job_stack.nodes``."""
        org = self._org()
        return max(1, min(len(plan.tasks), org.job_stack.nodes if org.job_stack else 1))

    def has_nodes(self, plan: JobPlan) -> bool:
        record = records.stack(self.store, str(self.job_stacks.name(self.org_stack, plan.job_id)))
        return bool(record and record.state == "up" and record.outputs.get("nodes"))

    def nodes(self, plan: JobPlan) -> dict:
        """The job's nodes as its stack's outputs say: ``addresses``, ``job_user``, ``work_root``."""
        record = records.stack(self.store, str(self.job_stacks.name(self.org_stack, plan.job_id)))
        outputs = record.outputs if record else {}
        if not outputs.get("nodes"):
            raise SquallError(f"site {self.site!r}: job {plan.job_id} has no job stack with nodes "
                              f"(state: {record.state if record else 'never created'})")
        return {"addresses": list(outputs["nodes"]), "job_user": outputs.get("job_user"),
                "work_root": outputs.get("work_root")}

    def up(self, plan: JobPlan, claim: Claim) -> None:
        stack = self.job_stacks.name(self.org_stack, plan.job_id)
        claim("stack", str(stack))  # the lease exists before the stack does
        self.job_stacks.create(self.org_stack, plan.job_id, len(plan.tasks), task_resources(plan))

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


DEFAULT_MEMORY_GIB = 2.0  # a task whose spec names no memory is given this on a cloud machine or pod


def task_resources(plan: JobPlan) -> dict:
    """One task's cpus, memory (GiB) and GPUs, as the job stack's settings name them."""
    res = plan.spec.resources
    memory = res.memory_bytes / (1 << 30) if res.memory_bytes else DEFAULT_MEMORY_GIB
    return {"cpus": res.cpus, "memory_gib": round(memory, 3), "gpus": res.gpus}
