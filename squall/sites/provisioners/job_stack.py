"""The ephemeral job stack provisioner: each job of a ``cloud`` site gets its own Pulumi stack of the
organisation, destroyed in every case (the runner calls ``down`` whatever happened)."""

from __future__ import annotations

import time

from squall.errors import Refused, SquallError
from squall.infra import records
from squall.infra.driver import Engine, StackName
from squall.infra.job_stacks import JobStacks
from squall.money.site_limits import SiteLimit, check_job_fits_now
from squall.job_types import JobPlan
from squall.sites.contract import Claim, LiveResource
from squall.sites.provisioners.contract import Provisioner
from squall.store import Store

LIMITS_FRESH_S = 30.0


class JobStackProvisioner(Provisioner):
    def __init__(self, site: str, store: Store, org_stack: StackName, engine: Engine):
        self.site = site
        self.store = store
        self.org_stack = org_stack
        self.job_stacks = JobStacks(store, engine)
        self._limits: tuple[float, tuple[list[SiteLimit], str]] | None = None

    def _org(self):
        from squall.programs.stack_files import load_stack

        return load_stack(str(self.org_stack)).org

    def check(self, plan: JobPlan) -> None:
        """Refused (exit 4) before anything is made: a Kubernetes organisation, no job stacks, no machine
        of the organisation fits one task, or the project's own limits cannot take the job's machines now."""
        from squall.programs.design import job_machine

        org = self._org()
        if org.cloud == "kubernetes":
            raise Refused(f"site {self.site!r}: organisation {org.org} is on Kubernetes; register it as a "
                          "kubernetes site")
        if org.job_stack is None:
            raise Refused(f"site {self.site!r}: organisation {org.org} has no job_stack section: no cloud jobs there")
        job_machine(org, *task_resources(plan).values())
        if plan.spec.resources.nodes > org.job_stack.nodes:
            raise Refused(f"resources.nodes: a task asks {plan.spec.resources.nodes} nodes; organisation {org.org}'s "
                          f"job stacks have at most {org.job_stack.nodes}",
                          hint="ask fewer nodes per task, or raise job_stack.nodes in the organisation")
        check_job_fits_now(self.site, self.site_limits(plan)[0], self.job_demand(plan))

    def site_limits(self, plan: JobPlan | None) -> tuple[list[SiteLimit], str]:
        """The OpenStack project's Nova limits (other clouds' are not read, and that is said). Limits that
        cannot be read refuse nothing: the source says why, and creating the stack would tell more. Read
        once per ``LIMITS_FRESH_S`` (a check and a quote of one command ask twice)."""
        if self._limits is None or time.monotonic() - self._limits[0] > LIMITS_FRESH_S:
            self._limits = (time.monotonic(), self._read_limits())
        return self._limits[1]

    def _read_limits(self) -> tuple[list[SiteLimit], str]:
        org = self._org()
        if org.cloud != "openstack":
            return [], f"{org.cloud}: the account's own limits are not read (OpenStack Nova limits only)"
        from squall.infra.nova_limits import nova_limits
        from squall.infra.orgs import provider_config

        try:
            cloud = provider_config(self.org_stack).values.get("openstack:cloud")
            return nova_limits(cloud), f"OpenStack Nova limits ({cloud or 'OS_* environment'})"
        except SquallError as exc:
            return [], f"OpenStack Nova limits not read: {exc}"

    def job_demand(self, plan: JobPlan) -> dict[str, int]:
        """What the job's machines take from the project's limits, all made at once."""
        from squall.programs.design import job_machine

        org = self._org()
        machine = job_machine(org, *task_resources(plan).values())
        nodes = self.node_count(plan)
        if machine.pool is None:
            cpus, memory_gib = org.job_stack.cpus, org.job_stack.memory_gib
        else:
            pool = next(p for p in org.pools if p.name == machine.pool)
            cpus, memory_gib = pool.cpus_per_node, pool.memory_gib_per_node
        demand = {"machines": nodes}
        if cpus:
            demand["cpus"] = nodes * cpus
        if memory_gib:
            demand["memory_mb"] = nodes * round(memory_gib * 1024)
        return demand

    def price(self, plan: JobPlan):
        """The price of the machine the job's tasks get (unpriced: None)."""
        from squall.money.site_prices import flavour_price
        from squall.programs.design import job_machine

        org = self._org()
        return flavour_price(org, job_machine(org, *task_resources(plan).values()).flavour)

    def node_count(self, plan: JobPlan) -> int:
        """As many nodes as the tasks span, at most the organisation's ``job_stack.nodes``."""
        org = self._org()
        return max(1, min(self._width(plan), org.job_stack.nodes if org.job_stack else 1))

    @staticmethod
    def _width(plan: JobPlan) -> int:
        """Nodes all the tasks would span at once."""
        return len(plan.tasks) * plan.spec.resources.nodes

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
        self.job_stacks.create(self.org_stack, plan.job_id, self._width(plan), task_resources(plan))

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
